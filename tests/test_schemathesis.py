"""schemathesis's CLI, `schemathesis run --checks all`, against the real gunicorn (the session's
`live_server`), from the committed openapi.yaml, as a user of the contract would run it.

It runs every phase (the spec's example, coverage, fuzzing; stateful finds no links to follow) in both
modes (requests valid and invalid by the schema), with every check schemathesis has: not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection, positive_data_acceptance, missing_required_header,
unsupported_method, allow_header_conformance, and the stateful and auth checks (use_after_free,
ensure_resource_availability, ignored_auth, object_level_authorization), which find nothing to act on
here. None is left out. max_response_time runs only with a limit, and speed is not a test's business.

One failure is expected, and checked case by case: positive_data_acceptance (ST202, "a request the
schema accepts gets a 2xx") on graphs that break only a rule the spec states in its text because JSON
Schema cannot (unique ids, children and output that name nodes, no cycle, one output, one local_grad
per child, finite results). Such a case passes here only when the service answered it 422 with a graph
problem and the marshmallow schemas load it: every node-level rule held, so it broke a graph-level one.
Likewise for POST /v1/expression, whose formula is any string to the schema and valid only by the rules
the spec states in its text: a 422 invalid-expression or numeric-error for a request the schema loads.
Any other failure of any check fails the test. schemathesis.toml (read from the project's root) has it
check GET /openapi.yaml's body as the YAML text the spec declares. Bounded: 100 examples per
operation and phase, a fixed seed, a few seconds in all.
"""

import base64
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from marshmallow import ValidationError

from service.contract.expression import ExpressionRequestSchema
from service.contract.grade import GradeRequestSchema
from service.contract.graph import GraphRequestSchema
from service.runtime.config import MAX_NODES
from tests.support import ROOT

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
GRAPH_PROBLEMS = {"/problems/invalid-graph", "/problems/numeric-error"}
EXPRESSION_PROBLEMS = {"/problems/invalid-expression", "/problems/numeric-error"}


@pytest.fixture(scope="module")
def run(live_server, tmp_path_factory):
    """The CLI's exit code, its output, and its events (ndjson report) from one run."""
    reports = tmp_path_factory.mktemp("schemathesis")
    result = subprocess.run(
        [
            *(str(SCHEMATHESIS), "run", "openapi.yaml", "--url", live_server, "--checks", "all"),
            *("--max-examples", "100", "--seed", "20261126", "--continue-on-failure"),
            *("--generation-database", "none", "--request-timeout", "30", "--no-color"),
            *("--report", "ndjson", "--report-dir", str(reports)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (report,) = reports.glob("*.ndjson")
    events = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    return result.returncode, result.stdout + result.stderr, events


def checked_cases(events):
    """(case, check name, passed, response) for every check run on every case."""
    for event in events:
        recorder = event.get("ScenarioFinished", {}).get("recorder", {})
        for case_id, checks in recorder.get("checks", {}).items():
            case, interaction = recorder["cases"][case_id]["value"], recorder["interactions"][case_id]
            for check in checks:
                yield case, check["name"], check["status"] == "success", interaction["response"]


def breaks_only_graph_level_rules(case, response) -> bool:
    body = orjson.loads(base64.b64decode(response["content"]["$base64"]))
    if case["path"] == "/v1/expression":
        return breaks_only_expression_rules(case, response, body)
    schema = {
        "/v1/evaluate": GraphRequestSchema,
        "/v1/render": GraphRequestSchema,
        "/v1/grade": GradeRequestSchema,
    }.get(case["path"])
    if schema is None or response["status_code"] != 422 or body.get("type") not in GRAPH_PROBLEMS:
        return False
    try:
        schema(max_nodes=MAX_NODES.default).load(with_one_local_grad_per_child(case["body"]))
    except ValidationError:
        return False
    return True


def breaks_only_expression_rules(case, response, body) -> bool:
    """An expression the schema takes (any string) that the spec's text refuses: not Python's syntax,
    outside the whitelist, names that are not inputs, or a value that leaves the finite doubles."""
    if response["status_code"] != 422 or body.get("type") not in EXPRESSION_PROBLEMS:
        return False
    try:
        ExpressionRequestSchema().load(case["body"])
    except ValidationError:
        return False
    return True


def with_one_local_grad_per_child(request):
    """The request with each recorded node's local_grads cut or padded to one per child: that rule
    binds two lists' lengths, which JSON Schema cannot state, so it is the spec's text that states it."""
    nodes = [
        {**node, "local_grads": (node["local_grads"] + [1.0] * len(node["children"]))[: len(node["children"])]}
        if isinstance(node, dict)
        and isinstance(node.get("children"), list)
        and isinstance(node.get("local_grads"), list)
        else node
        for node in request["nodes"]
    ]
    return {**request, "nodes": nodes}


def test_the_cli_ran_every_operation_with_every_check(run, spec):
    exit_code, output, events = run
    assert exit_code in (0, 1), output
    assert not [event for event in events if {"NonFatalError", "FatalError"} & event.keys()], output
    (loaded,) = [event["LoadingFinished"] for event in events if "LoadingFinished" in event]
    documented = {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item}
    assert loaded["statistic"]["operations"]["selected"] == len(documented)
    assert documented <= {f"{case['method']} {case['path']}" for case, *_ in checked_cases(events)}
    ran = {name for _, name, *_ in checked_cases(events)}
    assert {"positive_data_acceptance", "negative_data_rejection", "response_schema_conformance"} <= ran
    assert {"unsupported_method", "allow_header_conformance", "missing_required_header"} <= ran


def test_every_check_passes_save_on_graphs_that_break_only_graph_level_rules(run):
    exit_code, output, events = run
    failures = [(case, name, response) for case, name, passed, response in checked_cases(events) if not passed]
    unexpected = [
        (name, case.get("body"), response["status_code"])
        for case, name, response in failures
        if name != "positive_data_acceptance" or not breaks_only_graph_level_rules(case, response)
    ]
    assert not unexpected, output
    assert exit_code == (1 if failures else 0), output
