"""Every answer is the service's, whatever the request: no redirect built from the client's Host, no route
the contract does not document, JSON in UTF-8 only. (What only the real server sees, its framing and
its headers, is in tests/test_gunicorn.py.)"""

import orjson
import pytest

from tests.support import SEED_GRAPH

BODY = orjson.dumps(SEED_GRAPH)


def sent_to_evil_host(client, method, path):
    """The path as the server reads it from the request line (the test client would take `//healthz`
    for a host and a path)."""
    response = client.open(
        "/",
        method=method,
        data=BODY,
        content_type="application/json",
        headers={"Host": "evil.example"},
        environ_overrides={"PATH_INFO": path, "RAW_URI": path, "REQUEST_URI": path},
    )
    assert "Location" not in response.headers and b"evil.example" not in response.data
    return response


@pytest.mark.parametrize("method, path", [("POST", "/v1//evaluate"), ("GET", "/openapi.json//")])
def test_a_path_with_repeated_slashes_is_a_404_problem_never_a_redirect(client, method, path):
    response = sent_to_evil_host(client, method, path)
    assert response.status_code == 404, response.data
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("method, path", [("POST", "//v1/evaluate"), ("GET", "//healthz")])
def test_leading_slashes_are_one_slash_never_a_redirect(client, method, path):
    """werkzeug's routing reads a path from its first non-slash character, as nginx merges slashes."""
    response = sent_to_evil_host(client, method, path)
    assert response.status_code == 200
    assert response.data == sent_to_evil_host(client, method, path[1:]).data


@pytest.mark.parametrize("method, path", [("POST", "/v1/evaluate/"), ("GET", "/healthz/")])
def test_a_trailing_slash_is_the_same_route_never_a_redirect(client, method, path):
    response = sent_to_evil_host(client, method, path)
    assert response.status_code == 200
    assert response.data == sent_to_evil_host(client, method, path.rstrip("/")).data


def test_flasks_static_route_is_gone(app):
    assert "static" not in app.view_functions
    assert not any(rule.rule.startswith("/static") for rule in app.url_map.iter_rules())
    assert app.test_client().get("/static/app.js").status_code == 404


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", "utf-16", "ascii"])
def test_a_charset_other_than_utf_8_is_a_415_problem_that_says_json_is_utf_8(client, charset):
    body = '{"nodes": [{"id": "é", "op": "value", "data": 1.0}]}'.encode("latin-1")
    response = client.post("/v1/evaluate", data=body, content_type=f"application/json; charset={charset}")
    assert response.status_code == 415
    problem = response.get_json()
    assert problem["type"] == "about:blank" and problem["title"] == "Unsupported Media Type"
    assert "UTF-8" in problem["detail"] and charset in problem["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", 'application/json; charset="UTF-8"'])
def test_utf_8_said_aloud_is_served(client, content_type):
    assert client.post("/v1/evaluate", data=BODY, content_type=content_type).status_code == 200
