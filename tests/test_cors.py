"""Optional CORS (VALUEGRAPH_CORS_ORIGINS): off by default; for an allowed origin the preflight is
answered (before authentication) and answers name the origin and expose X-Request-ID and
Server-Timing; another origin gets none of it. On both paths, then once over real gunicorn."""

import pytest
import requests

from service.http.cors import ALLOWED_HEADERS, EXPOSED_HEADERS
from service.runtime.config import ConfigError, from_environment
from tests.support import SEED_GRAPH
from tools.server import gunicorn_server

APP_ORIGIN = "https://app.example"
OTHER_ORIGIN = "https://evil.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-request-id"}
CORS_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Expose-Headers",
)


def names(header_value):
    return {name.strip().lower() for name in header_value.split(",")}


def no_cors_headers(response):
    return not any(name in response.headers for name in CORS_HEADERS)


def test_off_by_default(client):
    preflight = client.options("/v1/evaluate", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert preflight.status_code == 204 and "POST" in preflight.headers["Allow"]
    answer = client.post("/v1/evaluate", json=SEED_GRAPH, headers={"Origin": APP_ORIGIN})
    assert answer.status_code == 200
    assert no_cors_headers(preflight) and no_cors_headers(answer)
    assert "Vary" not in answer.headers


def test_an_allowed_origin_gets_its_preflight_and_readable_answers(make_app):
    client = make_app({"CORS_ORIGINS": (APP_ORIGIN, "http://localhost:3000")}).test_client()
    preflight = client.options("/v1/evaluate", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert preflight.status_code == 204 and preflight.data == b""
    assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert names(preflight.headers["Access-Control-Allow-Methods"]) == names(preflight.headers["Allow"]) >= {"post"}
    assert names(preflight.headers["Access-Control-Allow-Headers"]) >= {"content-type", "authorization", "x-request-id"}
    assert int(preflight.headers["Access-Control-Max-Age"]) > 0
    assert "origin" in names(preflight.headers["Vary"])

    for answer in (
        client.post("/v1/evaluate", json=SEED_GRAPH, headers={"Origin": APP_ORIGIN}),
        client.post("/v1/evaluate", json={"nodes": []}, headers={"Origin": APP_ORIGIN}),  # a problem too
        client.get("/healthz", headers={"Origin": APP_ORIGIN}),
    ):
        assert answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
        assert names(answer.headers["Access-Control-Expose-Headers"]) == {"x-request-id", "server-timing"}
        assert "origin" in names(answer.headers["Vary"])
        assert "X-Request-ID" in answer.headers
    assert client.post("/v1/evaluate", json={"nodes": []}, headers={"Origin": APP_ORIGIN}).status_code == 422


def test_another_origin_gets_no_cors_headers(make_app):
    client = make_app({"CORS_ORIGINS": (APP_ORIGIN,)}).test_client()
    preflight = client.options("/v1/evaluate", headers={"Origin": OTHER_ORIGIN, **PREFLIGHT})
    answer = client.post("/v1/evaluate", json=SEED_GRAPH, headers={"Origin": OTHER_ORIGIN})
    no_origin = client.post("/v1/evaluate", json=SEED_GRAPH)
    assert preflight.status_code == 204 and answer.status_code == 200 and no_origin.status_code == 200
    assert no_cors_headers(preflight) and no_cors_headers(answer) and no_cors_headers(no_origin)
    # The answer still depends on Origin, so a shared cache must not give it to the allowed origin.
    assert "origin" in names(answer.headers["Vary"]) and "origin" in names(no_origin.headers["Vary"])


def test_any_origin(make_app):
    client = make_app({"CORS_ORIGINS": ("*",)}).test_client()
    preflight = client.options("/v1/evaluate", headers={"Origin": OTHER_ORIGIN, **PREFLIGHT})
    answer = client.post("/v1/evaluate", json=SEED_GRAPH, headers={"Origin": OTHER_ORIGIN})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in answer.headers
    assert no_cors_headers(client.post("/v1/evaluate", json=SEED_GRAPH))  # no Origin, no browser


def test_the_preflight_needs_no_token_and_a_refusal_is_readable(make_app):
    """A browser sends no credentials with a preflight: answered before authentication; the request
    itself still needs the token, and its 401 is readable by the page."""
    client = make_app({"CORS_ORIGINS": (APP_ORIGIN,), "API_TOKENS": ("s3cret-token",)}).test_client()
    preflight = client.options("/v1/evaluate", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert preflight.status_code == 204 and preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    refused = client.post("/v1/evaluate", json=SEED_GRAPH, headers={"Origin": APP_ORIGIN})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    answered = client.post(
        "/v1/evaluate", json=SEED_GRAPH, headers={"Origin": APP_ORIGIN, "Authorization": "Bearer s3cret-token"}
    )
    assert answered.status_code == 200 and answered.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    # A plain OPTIONS (not a preflight) and a preflight from another origin are not let past authentication.
    assert client.options("/v1/evaluate", headers={"Origin": APP_ORIGIN}).status_code == 401
    assert client.options("/v1/evaluate", headers={"Origin": OTHER_ORIGIN, **PREFLIGHT}).status_code == 401


def test_a_preflight_for_an_unknown_path_is_not_answered(make_app):
    client = make_app({"CORS_ORIGINS": (APP_ORIGIN,)}).test_client()
    response = client.options("/no/such/path", headers={"Origin": APP_ORIGIN, **PREFLIGHT})
    assert response.status_code == 404 and "Access-Control-Allow-Methods" not in response.headers


@pytest.mark.parametrize(
    "raw, parsed",
    [
        ("https://app.example", ("https://app.example",)),
        (" https://App.Example , http://localhost:3000,", ("https://app.example", "http://localhost:3000")),
        ("*", ("*",)),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
    ],
)
def test_the_setting_reads_exact_origins(raw, parsed):
    assert from_environment({"VALUEGRAPH_CORS_ORIGINS": raw})["CORS_ORIGINS"] == parsed


@pytest.mark.parametrize(
    "raw", ["https://app.example/", "app.example", "https://app.example/path", "*, https://a.b", ","]
)
def test_the_setting_refuses_what_is_not_an_origin(raw):
    with pytest.raises(ConfigError, match="VALUEGRAPH_CORS_ORIGINS"):
        from_environment({"VALUEGRAPH_CORS_ORIGINS": raw})


def test_off_when_unset():
    assert from_environment({})["CORS_ORIGINS"] == ()


@pytest.mark.slow
def test_cors_over_real_gunicorn(tmp_path):
    """The same through the real server and config: the variable read at start, the preflight and
    the exposed headers on the wire."""
    with gunicorn_server(tmp_path, VALUEGRAPH_CORS_ORIGINS=APP_ORIGIN) as server:
        preflight = requests.options(
            f"{server.base}/v1/evaluate", headers={"Origin": APP_ORIGIN, **PREFLIGHT}, timeout=30
        )
        answer = requests.post(
            f"{server.base}/v1/evaluate", json=SEED_GRAPH, headers={"Origin": APP_ORIGIN}, timeout=30
        )
        other = requests.post(
            f"{server.base}/v1/evaluate", json=SEED_GRAPH, headers={"Origin": OTHER_ORIGIN}, timeout=30
        )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert names(preflight.headers["Access-Control-Allow-Headers"]) == names(ALLOWED_HEADERS)
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert names(answer.headers["Access-Control-Expose-Headers"]) == names(EXPOSED_HEADERS)
    assert {"x-request-id", "server-timing"} <= {name.lower() for name in answer.headers}
    assert other.status_code == 200 and no_cors_headers(other)
