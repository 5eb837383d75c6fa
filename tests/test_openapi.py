"""openapi.yaml is the schemas' own output, and valid OpenAPI 3."""

import yaml
from openapi_spec_validator import validate

from schemas.openapi import build_spec
from tests.support import ROOT


def test_committed_openapi_yaml_is_what_the_schemas_generate():
    committed = (ROOT / "openapi.yaml").read_text()
    assert committed == build_spec().to_yaml(), "openapi.yaml is stale: run `make openapi` and commit it"


def test_openapi_yaml_is_valid_openapi_3():
    validate(yaml.safe_load((ROOT / "openapi.yaml").read_text()))


def test_the_service_serves_the_committed_contract(client, spec):
    assert yaml.safe_load(client.get("/openapi.yaml").data) == spec
    assert client.get("/openapi.json").get_json() == spec
