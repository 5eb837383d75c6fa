"""Fixtures: the app and its test client (as in Flask's tutorial), the contract, and the real server."""

import orjson
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from service import create_app
from tests.support import ROOT, gunicorn_server


@pytest.fixture
def app():
    return create_app({"TESTING": True})


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
