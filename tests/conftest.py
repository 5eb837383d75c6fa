"""Fixtures: the app and its test client (as in Flask's tutorial), the contract, and the real server.

The app answers on either path: every test that takes `app`, `client` or `make_app` runs twice, once
on the compiled fast path and once on the reference path (as CPython's json module runs its tests with
and without its C accelerator), so that a behaviour that differs between the paths cannot pass unseen.
"""

import orjson
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from service.core import fastpath
from service.http.app import create_app
from tests.support import ROOT
from tools.server import gunicorn_server


@pytest.fixture(params=["fast", "reference"])
def evaluation_path(request):
    """Which path answers: the compiled fast path, or the reference path (VALUEGRAPH_FAST_PATH=0)."""
    if request.param == "fast" and not fastpath.ACTIVE:
        pytest.skip(f"the fast path is not active: {fastpath.WHY_INACTIVE}")
    return request.param


@pytest.fixture
def make_app(evaluation_path):
    """make_app(config): an app for tests, on the path of this run, with `config` on top."""

    def make(config: dict | None = None):
        return create_app({"TESTING": True, "FAST_PATH": evaluation_path == "fast", **(config or {})})

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def spec():
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


@pytest.fixture(scope="session")
def conforms(spec):
    """conforms(path, method, status, content_type, body): assert the response is one the contract allows."""

    def check(path, method, status, content_type, body):
        responses = spec["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path} answered {status}, which the contract does not list"
        media = content_type.split(";")[0].strip()
        content = responses[str(status)]["content"]
        assert media in content, f"{method} {path} {status} came as {media}, the contract says {list(content)}"
        if media.endswith("json"):
            schema = {**content[media]["schema"], "components": spec["components"]}
            OAS30Validator(schema).validate(orjson.loads(body))

    return check


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real server, two workers as on a two-core machine; yields its base URL."""
    with gunicorn_server(tmp_path_factory.mktemp("gunicorn"), WEB_CONCURRENCY="2") as server:
        yield server.base


#: Fixtures that start Docker: a test that takes one belongs to the slow set, never to `make test-fast`.
DOCKER_FIXTURES = {"base_image", "build_image", "image", "nginx_image", "stack", "copy"}


def pytest_collection_modifyitems(config, items):
    unmarked = [
        item.nodeid
        for item in items
        if DOCKER_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("slow")
    ]
    if unmarked:
        raise pytest.UsageError("these tests start Docker but are not marked slow: " + ", ".join(unmarked))
