"""schemathesis against the running gunicorn (the session's `live_server`), from the committed openapi.yaml.

Every operation gets requests generated in all of schemathesis's phases (the spec's example, coverage,
fuzzing) and both modes (valid and invalid by the schema). Every response must not be a 5xx and must
conform to the contract: a documented status code, its content type, its schema and its headers; a
request the schema refuses must get a 4xx. Bounded: 100 fuzzed examples per operation, a few seconds in all.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ROOT

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case, live_server):
    case.call_and_validate(base_url=live_server, checks=CHECKS, timeout=60)
