"""openapi.yaml is the schemas' own output, valid OpenAPI 3, as strict as the service, and complete:
every route, method and status the app can answer is in it."""

import ast
import inspect
import math
import re
import textwrap

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from service.contract.graph import Node
from service.core.ops import OPS
from service.runtime.config import MAX_BODY_BYTES, MAX_NODES
from tests.property import examples
from tests.support import ROOT
from tools.openapi import build_spec, node_shape_names

AUTOMATIC_METHODS = {"HEAD"}
"""Flask answers these for every route by itself, from the route's GET and its methods; they have no body of ours."""


def test_committed_openapi_yaml_is_what_the_schemas_generate():
    committed = (ROOT / "openapi.yaml").read_text()
    assert committed == build_spec().to_yaml(), "openapi.yaml is stale: run `make openapi` and commit it"


def test_openapi_yaml_is_valid_openapi_3():
    validate(yaml.safe_load((ROOT / "openapi.yaml").read_text()))


def test_the_service_serves_the_committed_contract(client, spec):
    assert yaml.safe_load(client.get("/openapi.yaml").data) == spec
    assert client.get("/openapi.json").get_json() == spec


def test_the_limits_in_the_text_are_the_settings_defaults(spec):
    text = spec["info"]["description"]
    for setting in (MAX_BODY_BYTES, MAX_NODES):
        assert f"`{setting.variable}` (default {setting.default}" in text


# Routes and statuses: what the app can answer, found in the app and its code, must be in the spec.


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_route_and_method_of_the_app_is_in_the_spec_and_no_other(app, spec):
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - AUTOMATIC_METHODS
    }
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert served == documented


def literal_statuses(function) -> set[int]:
    """The statuses a function (a lambda too), and the functions of its module it calls, answer
    literally: `Problem(NNN, ...)` raised or built, and `return body, NNN`."""
    module = ast.parse(inspect.getsource(inspect.getmodule(function)))
    functions = {node.name: node for node in ast.walk(module) if isinstance(node, ast.FunctionDef)}
    statuses, seen, pending = set(), set(), [ast.parse(textwrap.dedent(inspect.getsource(function)))]
    while pending:
        for node in ast.walk(pending.pop()):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in functions.keys() - seen:
                seen.add(node.func.id)
                pending.append(functions[node.func.id])
            statuses |= problem_status(node) | returned_status(node)
    return statuses


def error_handlers(app) -> dict[type, object]:
    return {kind: handler for by_kind in app.error_handler_spec[None].values() for kind, handler in by_kind.items()}


def problem_status(node: ast.AST) -> set[int]:
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Problem"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return {node.args[0].value}
    return set()


def returned_status(node: ast.AST) -> set[int]:
    if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) >= 2:
        status = node.value.elts[1]
        if isinstance(status, ast.Constant) and isinstance(status.value, int):
            return {status.value}
    return set()


def test_every_status_a_route_answers_in_its_code_is_in_its_operation(app, spec):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        statuses = literal_statuses(inspect.unwrap(app.view_functions[rule.endpoint]))
        for method in rule.methods - AUTOMATIC_METHODS - {"OPTIONS"}:  # OPTIONS never reaches the view
            documented = {int(status) for status in spec["paths"][openapi_path(rule.rule)][method.lower()]["responses"]}
            assert statuses <= documented, f"{method} {rule.rule} can answer {statuses - documented}, not in the spec"


def test_every_problem_status_in_the_code_is_in_the_spec(spec):
    """A Problem built anywhere in the service, whichever route it reaches, is listed by some operation."""
    package = ROOT / "service"
    raised = {
        status
        for path in package.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        for status in problem_status(node)
    }
    documented = {int(status) for item in spec["paths"].values() for op in item.values() for status in op["responses"]}
    assert raised, "no Problem(NNN, ...) found: the scan no longer sees how the service builds its errors"
    assert raised <= documented


def test_every_operation_lists_the_answers_any_route_can_give(app, spec):
    """Any other method on a path is a 405 with Allow; the handler of any exception answers 500."""
    any_route = {405} | literal_statuses(error_handlers(app)[Exception])
    assert 500 in any_route
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method == "options":  # every path takes OPTIONS: it cannot be a 405
                assert "Allow" in operation["responses"]["204"]["headers"] and "500" in operation["responses"]
                continue
            assert {str(status) for status in any_route} <= set(operation["responses"]), f"{method} {path}"
            assert "Allow" in operation["responses"]["405"]["headers"]


def test_what_the_error_handlers_answer_is_listed_by_every_operation_that_takes_a_body(app, spec):
    """The app's own exceptions (an invalid graph, a numeric error, the memory budget, the deadline)
    come from handling a request's body: every operation that takes one lists their statuses."""
    handled = {
        status
        for kind, handler in error_handlers(app).items()
        if kind is not Exception
        for status in literal_statuses(handler)
    }
    assert 422 in handled, "no handler answers 422: the scan no longer sees how the errors are shaped"
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if "requestBody" in operation:
                documented = {int(status) for status in operation["responses"]}
                assert handled <= documented, f"{method} {path} can answer {handled - documented}, not in the spec"


def problem_validator(spec):
    return OAS30Validator({"$ref": "#/components/schemas/Problem", "components": spec["components"]})


def test_an_unknown_path_answers_the_documented_404(client, spec):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.mimetype in spec["components"]["responses"]["NotFound"]["content"]
    problem_validator(spec).validate(response.get_json())


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.yaml", "/openapi.json", "/v1/evaluate"])
def test_a_method_a_path_does_not_take_answers_405_with_allow(client, spec, path):
    method = "put"
    assert method not in spec["paths"][path]
    response = client.open(path, method=method.upper())
    assert response.status_code == 405
    allowed = {name.strip() for name in response.headers["Allow"].split(",")} - AUTOMATIC_METHODS
    assert allowed == {name.upper() for name in spec["paths"][path]}
    problem_validator(spec).validate(response.get_json())


def test_readyz_answers_the_documented_503_when_the_engine_check_fails(client, spec, monkeypatch):
    from service.http.routes import meta

    monkeypatch.setattr(meta.graphs, "evaluate", lambda nodes, output=None: (None, [Wrong()] * 3))
    response = client.get("/readyz")
    assert response.status_code == 503
    schema = spec["paths"]["/readyz"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": spec["components"]}).validate(response.get_json())


class Wrong:
    data = grad = math.nan


# The node shapes: exclusive, and refusing every node the service refuses for a reason JSON Schema can state.


@pytest.fixture(scope="module")
def shape_validators(spec):
    return {
        name: OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})
        for name in node_shape_names()
    }


def matching_shapes(validators, node):
    return [name for name, validator in validators.items() if validator.is_valid(node)]


def test_the_request_lists_every_shape_once(spec):
    items = spec["components"]["schemas"]["GraphRequest"]["properties"]["nodes"]["items"]["oneOf"]
    assert [item["$ref"].rsplit("/", 1)[1] for item in items] == node_shape_names()
    assert len(node_shape_names()) == len(OPS) + 2


ids = st.one_of(st.text(min_size=1, max_size=3), st.integers(-(2**63), 2**64 - 1))
finite = st.floats(allow_nan=False, allow_infinity=False)
wrong_values = st.one_of(st.none(), st.booleans(), st.text(max_size=2), st.lists(ids, max_size=3), finite, ids)


@st.composite
def nodes_near_each_shape(draw):
    """A valid node of any shape (one per op, a leaf with or without op, a recorded node), then
    maybe one key removed, added or given a value of another kind."""
    shape = draw(st.sampled_from([*OPS, "leaf", "bare leaf", "recorded"]))
    node = {"id": draw(ids)}
    if shape in OPS:
        node |= {"op": shape, "children": draw(st.lists(ids, min_size=OPS[shape].arity, max_size=OPS[shape].arity))}
        if OPS[shape].takes_exponent:
            node["exponent"] = draw(finite)
    elif shape == "recorded":
        children = draw(st.lists(ids, max_size=3))
        node |= {"data": draw(finite), "children": children, "local_grads": [draw(finite) for _ in children]}
    else:
        node |= {"data": draw(finite)} | ({"op": "value"} if shape == "leaf" else {})
    if draw(st.booleans()):
        key = draw(st.sampled_from(["id", "op", "data", "children", "local_grads", "exponent", "extra"]))
        if key in node and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(st.one_of(wrong_values, st.sampled_from([*OPS, "value", "tanh"])))
    return node


def service_accepts(node) -> bool:
    try:
        Node().deserialize(node)
        return True
    except ValidationError:
        return False


def breaks_only_the_one_local_grad_per_child_rule(node) -> bool:
    return (
        isinstance(node.get("children"), list)
        and isinstance(node.get("local_grads"), list)
        and len(node["children"]) != len(node["local_grads"])
        and service_accepts({**node, "local_grads": [1.0] * len(node["children"])})
    )


@pytest.mark.slow
@settings(max_examples=examples(1000), deadline=None)
@given(nodes_near_each_shape())
def test_the_spec_accepts_a_node_exactly_when_the_service_does(shape_validators, node):
    """Every node-level rule is in the schema, save one JSON Schema cannot state (the spec's text has it)."""
    shapes = matching_shapes(shape_validators, node)
    assert len(shapes) <= 1, f"{node} matches {shapes}: the shapes overlap"
    if service_accepts(node):
        assert shapes, f"the spec refuses {node}, which the service accepts"
    elif shapes:
        assert breaks_only_the_one_local_grad_per_child_rule(node), f"the spec accepts {node} as {shapes}"


def test_the_rules_json_schema_cannot_state_are_in_the_text(spec):
    text = " ".join(textwrap.dedent(spec["info"]["description"]).split())
    for rule in [
        "ids are unique",
        "is the id of a node",
        "no cycle",
        "without `output`",
        "one `local_grads` entry per child",
    ]:
        assert rule in text
