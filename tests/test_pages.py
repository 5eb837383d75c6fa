"""The pages for people and their assets, through the app: what they link to exists and comes from this
service only, they are open without a token, their headers keep the browser to this origin, and a
browser's cached copy is revalidated cheaply. tests/test_pages_browser.py opens them in a real browser."""

import hashlib
import html
import re
from html.parser import HTMLParser

import pytest

from service.http.problem_types import PROBLEM_TYPES
from service.http.routes.assets import ASSETS, SWAGGER_UI

PAGES = ["/", "/docs", "/playground", "/problems", *(problem.uri for problem in PROBLEM_TYPES.values())]


class Links(HTMLParser):
    """What a page links to or loads, and whether it holds inline script or style."""

    def __init__(self):
        super().__init__()
        self.links, self.loads, self.inline = [], [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline.append(f"<{tag} {attrs}>")
        if tag == "style" or (tag == "script" and "src" not in attributes):
            self.inline.append(tag)
        if tag == "a" and "href" in attributes:
            self.links.append(attributes["href"])
        if tag in ("script", "img") and "src" in attributes:
            self.loads.append(attributes["src"])
        if tag == "link" and "href" in attributes:
            self.loads.append(attributes["href"])


def parsed(html: bytes) -> Links:
    links = Links()
    links.feed(html.decode())
    return links


@pytest.mark.parametrize("path", PAGES)
def test_a_page_is_html_that_loads_only_this_services_assets(client, conforms, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    spec_path = "/problems/{name}" if path.startswith("/problems/") else path
    conforms(spec_path, "get", 200, response.content_type, response.data)
    page = parsed(response.data)
    assert page.loads and all(url.startswith("/assets/") for url in page.loads)
    assert not page.inline
    for url in page.loads:
        assert client.get(url).status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_every_link_of_a_page_answers(client, path):
    for url in parsed(client.get(path).data).links:
        assert url.startswith("/"), f"{path} links to another site: {url}"
        assert client.get(url).status_code in (200, 302), f"{path} links to {url}"


@pytest.mark.parametrize("path", PAGES)
def test_a_page_keeps_the_browser_to_this_origin_and_is_revalidated(client, path):
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    images = "img-src 'self' data:;" if path == "/docs" else "img-src 'self';"
    assert images in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.cache_control.no_cache
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


@pytest.mark.parametrize("name", ASSETS)
def test_an_asset_is_served_with_its_type_a_version_and_a_long_cache(client, conforms, name):
    response = client.get(f"/assets/{name}")
    asset = ASSETS[name]
    assert response.status_code == 200
    assert response.mimetype == asset.media_type
    conforms(f"/assets/{name}", "get", 200, response.content_type, response.data)
    assert response.data == asset.source.read_bytes()
    assert response.headers["ETag"] == f'"{hashlib.sha256(response.data).hexdigest()}"'
    assert response.cache_control.public and response.cache_control.max_age >= 3600
    again = client.get(f"/assets/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_the_pages_link_each_asset_with_the_start_of_its_digest(client):
    loads = {url for path in PAGES for url in parsed(client.get(path).data).loads}
    for name, asset in ASSETS.items():
        assert f"/assets/{name}?v={asset.digest[:12]}" in loads


def test_swagger_ui_comes_from_the_installed_package(client):
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/assets/{name}").data == (SWAGGER_UI / name).read_bytes()


def test_the_services_own_scripts_name_no_other_site(client):
    for name in ("playground.js", "docs.js", "origin.js"):
        text = client.get(f"/assets/{name}").data.decode()
        assert not re.search(r"https?://", text), name


def test_an_unknown_asset_or_problem_type_is_a_404_problem(client, conforms):
    assert client.get("/assets/nothing.js").status_code == 404
    response = client.get("/problems/no-such-problem")
    assert response.status_code == 404
    conforms("/problems/{name}", "get", 404, response.content_type, response.data)
    assert "/problems" in response.get_json()["detail"]


def test_redoc_redirects_to_the_docs(client):
    response = client.get("/redoc")
    assert response.status_code == 302
    assert response.headers["Location"] == "/docs"


def test_the_landing_page_links_the_docs_the_contract_health_and_the_playground(client, spec):
    page = client.get("/")
    links = set(parsed(page.data).links)
    assert {"/docs", "/playground", "/openapi.yaml", "/openapi.json", "/healthz", "/readyz"} <= links
    assert {problem.uri for problem in PROBLEM_TYPES.values()} <= links
    for path in spec["paths"]:
        if path.startswith("/v1/"):
            assert f"POST {path}".encode() in page.data


def test_the_landing_pages_example_is_the_services_answer(client):
    """The curl command and the answer the landing page shows: the same bytes as POSTing it."""
    text = client.get("/").get_data(as_text=True)
    command, answer = re.findall(r'<pre class="code[^"]*"><code>(.*?)</code></pre>', text, re.S)[:2]
    body = html.unescape(command).split("-d '", 1)[1].rstrip("'")
    response = client.post("/v1/evaluate", data=body, content_type="application/json")
    assert response.data.decode() == html.unescape(answer)


def test_each_problem_page_says_when_what_to_do_and_shows_its_example(client):
    for problem in PROBLEM_TYPES.values():
        text = client.get(problem.uri).get_data(as_text=True)
        assert problem.title in text
        assert "When it happens" in text and "What to do" in text
        assert f"&#34;type&#34;: &#34;{problem.uri}&#34;" in text


def test_the_pages_are_open_without_a_token_and_the_api_is_not(make_app):
    client = make_app({"API_TOKENS": ("secret",)}).test_client()
    for path in [*PAGES, *(f"/assets/{name}" for name in ASSETS)]:
        assert client.get(path).status_code == 200, path
    assert client.get("/redoc").status_code == 302
    assert client.post("/v1/expression", json={"expression": "a", "inputs": {"a": 1.0}}).status_code == 401
    authorized = {"Authorization": "Bearer secret"}
    assert (
        client.post("/v1/expression", json={"expression": "a", "inputs": {"a": 1.0}}, headers=authorized).status_code
        == 200
    )


def test_the_playground_says_where_its_token_goes(client):
    text = client.get("/playground").get_data(as_text=True)
    assert 'id="token" type="password"' in text
    assert "never stored" in text and "Authorization: Bearer" in text


@pytest.mark.parametrize("path", ["/", "/problems/numeric-error"])
def test_a_page_never_repeats_the_host_the_client_named(client, path):
    """The curl commands show the default address, which the browser's script replaces with its own."""
    text = client.get(path, headers={"Host": "evil.example"}).get_data(as_text=True)
    assert "evil.example" not in text
    assert '<span class="origin">http://localhost:8000</span>' in text
