"""POST /v1/evaluate through Flask's test client: the answers, and every error the contract names.
Every response is checked against openapi.yaml."""

import gc
import math
import threading

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core import fastpath
from service.core import graphs as graph_module
from service.http.app import create_app
from tests.property import examples
from tests.strategies import graphs
from tests.support import SEED_GRAPH, leaf, op
from tools.reference_value import evaluate_with_seed

PATH = "/v1/evaluate"


@pytest.fixture
def post(client, conforms):
    """post(body, content_type): send bytes (or a JSON-able body), check the answer against the contract."""

    def send(body, content_type="application/json", test_client=client):
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        response = test_client.post(PATH, data=data, content_type=content_type)
        conforms(PATH, "post", response.status_code, response.content_type, response.data)
        return response

    return send


def test_the_seeds_example(post):
    response = post(SEED_GRAPH)
    assert response.status_code == 200 and response.content_type == "application/json"
    body = response.get_json()
    assert body["output"] == "e"
    assert [node["id"] for node in body["nodes"]] == ["a", "b", "c", "d", "e"]
    got = {node["id"]: (node["data"], node["grad"]) for node in body["nodes"]}
    assert got["e"] == (math.log(10), 1)
    assert [got[k][1] for k in "abcd"] == pytest.approx([0.7, 0.2, 0.2, 0.1], rel=1e-15)
    assert got == evaluate_with_seed(SEED_GRAPH["nodes"], "e")


def test_ids_order_and_unreached_nodes_come_back_as_sent(post):
    nodes = [op(7, "mul", "x", "z"), leaf("y", 1.0), leaf("x", 3), op("side", "exp", "x"), leaf("z", 2.0)]
    body = post({"nodes": nodes, "output": 7}).get_json()
    assert body["output"] == 7
    assert [node["id"] for node in body["nodes"]] == [7, "y", "x", "side", "z"]
    results = {node["id"]: node for node in body["nodes"]}
    assert results[7]["data"] == 6.0 and results["x"]["grad"] == 2.0 and results["z"]["grad"] == 3.0
    assert results["side"] == {"id": "side", "data": math.exp(3), "grad": 0}
    assert results["y"]["grad"] == 0


def test_recorded_nodes_are_differentiated_as_recorded(post):
    nodes = [leaf("x", 0.5), {"id": "y", "data": 100.0, "children": ["x", "x"], "local_grads": [2.0, 3.0]}]
    body = post({"nodes": nodes}).get_json()
    assert body["nodes"] == [{"id": "x", "data": 0.5, "grad": 5.0}, {"id": "y", "data": 100.0, "grad": 1}]


def test_a_key_repeated_in_one_object_counts_as_its_last(post):
    """As docs/contract.md says: RFC 8259 leaves repeated keys to the receiver; the last one counts."""
    body = (
        b'{"nodes": [{"id": "x", "data": 1.0, "data": 2.5}, {"id": "y", "op": "exp", "op": "neg", "children": ["x"]}]}'
    )
    assert post(body).get_json()["nodes"] == [
        {"id": "x", "data": 2.5, "grad": -1.0},
        {"id": "y", "data": -2.5, "grad": 1},
    ]


def test_default_output_is_the_one_node_nobody_uses(post):
    nodes = [leaf("a", 1.0), op("b", "neg", "a"), op("c", "relu", "b")]
    assert post({"nodes": nodes}).get_json()["output"] == "c"


@pytest.mark.parametrize(
    "body, detail",
    [
        (b"{", "unexpected end of data"),
        (b"", "Input is a zero-length, empty document"),
        (b'{"nodes": [{"id": "a", "data": 1.0}], "x": "\xff"}', "not valid UTF-8"),
        (b'{"nodes": [{"id": "a", "data": NaN}]}', "unexpected character"),
        (b'{"nodes": [{"id": "a", "data": Infinity}]}', "unexpected character"),
        (b'{"nodes": [{"id": "a", "data": 1e400}]}', "number is infinity"),
        (b"[" * 2000 + b"]" * 2000, "depth limit exceeded"),
    ],
    ids=["syntax", "empty", "utf-8", "nan", "infinity", "too large", "too deep"],
)
def test_bodies_that_are_not_json_are_400(post, body, detail):
    response = post(body)
    assert response.status_code == 400
    problem = response.get_json()
    assert problem["type"] == "/problems/invalid-json" and problem["status"] == 400
    assert detail in problem["detail"]


def test_a_body_over_the_limit_is_413(post, conforms, make_app):
    small = make_app({"MAX_CONTENT_LENGTH": 100}).test_client()
    response = post({"nodes": [leaf(f"n{k}", 1.0) for k in range(10)]}, test_client=small)
    assert response.status_code == 413
    assert response.get_json()["detail"] == "The body is over the limit of 100 bytes (VALUEGRAPH_MAX_BODY_BYTES)."


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_body_that_is_not_application_json_is_415(post, content_type):
    response = post(SEED_GRAPH, content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.get_json()["detail"]


def test_get_on_the_endpoint_is_405_with_allow(client, conforms):
    response = client.get(PATH)
    conforms(PATH, "post", response.status_code, response.content_type, response.data)
    assert response.status_code == 405 and "POST" in response.headers["Allow"]
    assert response.content_type == "application/problem+json"


def test_an_unknown_path_is_404_problem_json(client):
    response = client.get("/v2/nothing")
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    assert response.get_json()["type"] == "about:blank"


# (body, the error expected first: (node, field, words in the message))
INVALID_GRAPHS = {
    "no nodes field": ({"output": "a"}, (None, "nodes", "Required, and missing")),
    "nodes not a list": ({"nodes": {"a": 1}}, (None, "nodes", "Not a valid list")),
    "no nodes at all": ({"nodes": []}, (None, "nodes", "Shorter than minimum length 1")),
    "not an object": ([SEED_GRAPH], (None, None, "Not a JSON object")),
    "unknown top-level field": ({**SEED_GRAPH, "loss": "e"}, (None, "loss", "Unknown field")),
    "node not an object": ({"nodes": [leaf("a", 1.0), "b"]}, (None, None, "Not a valid node")),
    "missing data": ({"nodes": [{"id": "a", "op": "value"}]}, ("a", "data", "Required, and missing")),
    "missing id": ({"nodes": [{"data": 1.0}]}, (None, "id", "Required, and missing")),
    "unknown node field": ({"nodes": [{**leaf("a", 1.0), "grad": 0}]}, ("a", "grad", "Unknown field")),
    "string for a number": ({"nodes": [leaf("a", "2.0")]}, ("a", "data", "Not a valid number: '2.0';")),
    "true for a number": ({"nodes": [leaf("a", True)]}, ("a", "data", "Not a valid number: true;")),
    "boolean id": ({"nodes": [leaf(True, 1.0)]}, (None, "id", "Not a valid id: true;")),
    "empty id": ({"nodes": [leaf("", 1.0)]}, (None, "id", "Not a valid id: '';")),
    "id of 257 characters": ({"nodes": [leaf("x" * 257, 1.0)]}, (None, "id", f"Not a valid id: {'x' * 40!r}...;")),
    "unknown op": (
        {"nodes": [leaf("a", 1.0), op("b", "tanh", "a")]},
        ("b", "op", "Unknown op 'tanh'; one of: add, mul"),
    ),
    "op not a string": (
        {"nodes": [leaf("a", 1.0), op("b", ["add"], "a")]},
        ("b", "op", "Not a valid op: a list of 1 items"),
    ),
    "two children for neg": (
        {"nodes": [leaf("a", 1.0), op("b", "neg", "a", "a")]},
        ("b", "children", "neg takes 1 children, not 2"),
    ),
    "one child for add": (
        {"nodes": [leaf("a", 1.0), op("b", "add", "a")]},
        ("b", "children", "add takes 2 children, not 1"),
    ),
    "child id of the wrong type": (
        {"nodes": [leaf("a", 1.0), op("b", "exp", 1.5)]},
        ("b", "children[0]", "Not a valid id: 1.5;"),
    ),
    "pow without exponent": (
        {"nodes": [leaf("a", 1.0), op("b", "pow", "a")]},
        ("b", "exponent", "pow requires an exponent"),
    ),
    "exponent on exp": (
        {"nodes": [leaf("a", 1.0), op("b", "exp", "a", exponent=2)]},
        ("b", "exponent", "Only pow takes an exponent"),
    ),
    "local_grads short": (
        {"nodes": [leaf("a", 1.0), {"id": "r", "data": 1.0, "children": ["a", "a"], "local_grads": [1.0]}]},
        ("r", "local_grads", "1 local_grads for 2 children"),
    ),
    "output id of the wrong type": ({**SEED_GRAPH, "output": 2.5}, (None, "output", "Not a valid id: 2.5;")),
    "duplicate id": (
        {"nodes": [leaf("a", 1.0), leaf("a", 2.0), op("s", "add", "a", "a")]},
        ("a", "id", "Duplicate id: node 0 has it too"),
    ),
    "duplicate id before a numeric error": (
        {"nodes": [leaf("a", 1.0), leaf("a", -1.0), op("l", "log", "a")]},
        ("a", "id", "Duplicate id: node 0 has it too"),
    ),
    "duplicate id listed after a numeric error": (
        {"nodes": [op("l", "log", "a"), leaf("a", -1.0), leaf("a", 1.0)]},
        ("a", "id", "Duplicate id: node 1 has it too"),
    ),
    "duplicate id after a numeric error in dependency order": (
        {"nodes": [leaf("a", -1.0), op("l", "log", "a"), leaf("a", 1.0)]},
        ("a", "id", "Duplicate id: node 0 has it too"),
    ),
    "child names no node": (
        {"nodes": [leaf("a", 1.0), op("s", "add", "a", "b")]},
        ("s", "children[1]", "No node has the id 'b'"),
    ),
    "cycle": (
        {"nodes": [leaf("x", 1.0), op("p", "add", "x", "q"), op("q", "mul", "p", "x"), op("out", "exp", "q")]},
        ("p", "children", "This node depends on itself: 'p' -> 'q' -> 'p'"),
    ),
    "self loop": ({"nodes": [op("s", "neg", "s")]}, ("s", "children", "'s' -> 's'")),
    "output not a node": ({**SEED_GRAPH, "output": "z"}, (None, "output", "No node has the id 'z'")),
    "several sinks, no output": (
        {"nodes": [leaf("a", 1.0), op("b", "exp", "a"), op("c", "log", "a")]},
        (None, "output", "2 nodes are used by no other node: 'b', 'c'"),
    ),
}


@pytest.mark.parametrize("body, expected", INVALID_GRAPHS.values(), ids=INVALID_GRAPHS.keys())
def test_invalid_graphs_are_422_naming_node_and_field(post, body, expected):
    response = post(body)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"] == "/problems/invalid-graph"
    node, field, words = expected
    first = problem["errors"][0]
    assert (first.get("node"), first["field"]) == (node, field), problem
    assert words in first["message"], problem


def test_every_invalid_node_is_named(post):
    nodes = [leaf("a", "1"), leaf("b", 2.0), {"id": "c", "op": "exp"}, leaf(4, None)]
    errors = post({"nodes": nodes}).get_json()["errors"]
    assert [(e.get("node"), e["index"], e["field"]) for e in errors] == [
        ("a", 0, "data"),
        ("c", 2, "children"),
        (4, 3, "data"),
    ]


def test_more_nodes_than_the_limit_is_422(conforms, make_app):
    client = make_app({"MAX_NODES": 3}).test_client()
    response = client.post(PATH, json={"nodes": [leaf(k, 1.0) for k in range(4)]})
    conforms(PATH, "post", response.status_code, response.content_type, response.data)
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"field": "nodes", "message": "A graph may have at most 3 nodes; this one has 4."}
    ]


# (nodes, the node named, words in the message)
NUMERIC_ERRORS = {
    "log of a negative number": (
        [leaf("x", -2.0), op("l", "log", "x")],
        "l",
        "log(-2.0): log is defined only for numbers > 0",
    ),
    "log of zero": ([leaf("x", 0.0), op("l", "log", "x")], "l", "log(0.0)"),
    "exp overflow": ([leaf("x", 800.0), op("e", "exp", "x")], "e", "exp(800.0) overflows"),
    "0 to a negative power": ([leaf("x", 0.0), op("p", "pow", "x", exponent=-1)], "p", "0 to the negative power -1"),
    "negative to a fractional power": (
        [leaf("x", -8.0), op("p", "pow", "x", exponent=1 / 3)],
        "p",
        "not a real number",
    ),
    "the derivative of sqrt at 0": (
        [leaf("x", 0.0), op("p", "pow", "x", exponent=0.5)],
        "p",
        "The derivative of x ** 0.5 at 0",
    ),
    "division by zero": ([leaf("x", 1.0), leaf("y", 0.0), op("q", "div", "x", "y")], "q", "Division by zero"),
    "product overflow": (
        [leaf("x", 1e200), op("m", "mul", "x", "x")],
        "m",
        "mul(1e+200, 1e+200) or its local gradient overflows",
    ),
    "a finite quotient whose local gradient overflows": (
        [leaf("x", 1e-200), leaf("y", 1e-200), op("q", "div", "x", "y")],
        "q",
        "div(1e-200, 1e-200) or its local gradient overflows",
    ),
    "a local gradient that overflows": (
        [leaf("x", 5e-324), op("l", "log", "x")],
        "l",
        "The derivative of log at 5e-324, 1/x, overflows",
    ),
    "a gradient that overflows": (
        [
            leaf("x", 1.0),
            {"id": "y", "data": 1.0, "children": ["x"], "local_grads": [1e300]},
            {"id": "z", "data": 1.0, "children": ["y"], "local_grads": [1e300]},
        ],
        "x",
        "overflows (inf)",
    ),
}


@pytest.mark.parametrize("nodes, node, words", NUMERIC_ERRORS.values(), ids=NUMERIC_ERRORS.keys())
def test_numeric_trouble_is_422_naming_node_op_and_input(post, nodes, node, words):
    response = post({"nodes": nodes})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"] == "/problems/numeric-error"
    error = problem["errors"][0]
    assert error["node"] == node and words in error["message"], problem
    named = next(n for n in nodes if n["id"] == node)
    assert error["op"] == named.get("op", "value")


def test_healthz_and_readyz(app, client, conforms):
    for path, status in [("/healthz", "ok"), ("/readyz", "ready")]:
        response = client.get(path)
        conforms(path, "get", response.status_code, response.content_type, response.data)
        assert response.get_json() == {
            "status": status,
            **({"path": fastpath.path(app.config["FAST_PATH"])} if path == "/readyz" else {}),
        }


def test_the_cyclic_gc_is_paused_while_evaluating_and_only_then(post, monkeypatch):
    seen = []
    evaluate = graph_module.evaluate

    def watched(*args):
        seen.append(gc.isenabled())
        return evaluate(*args)

    monkeypatch.setattr(graph_module, "evaluate", watched)
    monkeypatch.setattr(
        fastpath, "evaluate", lambda *args: None
    )  # the reference path, where graph_module.evaluate runs
    assert post(SEED_GRAPH).status_code == 200
    assert post({"nodes": [leaf("x", -1.0), op("y", "log", "x")]}).status_code == 422
    assert seen == [False, False] and gc.isenabled()


def test_an_unexpected_failure_is_a_500_problem_not_a_page(client, monkeypatch):
    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(graph_module, "evaluate", broken)
    monkeypatch.setattr(fastpath, "evaluate", lambda *args: None)
    response = client.post(PATH, json=SEED_GRAPH)
    assert response.status_code == 500 and response.content_type == "application/problem+json"
    body = response.get_json()
    assert body.pop("request_id") == response.headers["X-Request-ID"]
    assert body == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "The server failed; the error is logged.",
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "op", "data", "children", "exponent", "local_grads", "nodes", "output", "x"]),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=examples(300), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        graphs(), json_values.map(lambda value: (value, None)), st.binary(max_size=40).map(lambda raw: (raw, None))
    )
)
def test_no_input_gets_a_500_or_an_answer_outside_the_contract(post, case):
    body, output = case
    if isinstance(body, list) and output is not None:  # a random graph
        body = {"nodes": body, "output": output}
    response = post(body)  # post checks the answer against the contract
    assert response.status_code in (200, 400, 422)


@pytest.mark.parametrize(
    "node, field",
    [
        ({"id": "s", "op": "add", "children": [True] * 5000}, "children"),
        ({"id": "r", "data": 1.0, "children": ["a"] * 5000, "local_grads": [None] * 5000}, "local_grads"),
    ],
    ids=["children", "local_grads"],
)
def test_a_list_of_thousands_of_bad_items_explains_the_first_hundred(post, node, field):
    errors = post({"nodes": [leaf("a", 1.0), node]}).get_json()["errors"]
    items = [entry for entry in errors if entry["field"].startswith(f"{field}[")]
    assert [entry["field"] for entry in items] == [f"{field}[{k}]" for k in range(100)]
    assert {
        "node": node["id"],
        "index": 1,
        "field": field,
        "message": "4900 more items are invalid; the first 100 are listed.",
    } in errors


def test_thousands_of_unknown_keys_are_counted_not_listed(post):
    node = {**leaf("a", 1.0), **{f"k{k}": 0 for k in range(3000)}}
    errors = post({"nodes": [node]}).get_json()["errors"]
    assert len(errors) == 101
    assert errors[-1]["message"] == "2900 more unknown fields; the first 100 are listed."


def test_thousands_of_missing_children_are_counted_not_listed(post):
    nodes = [leaf("a", 1.0), *(op(f"s{k}", "add", "a", f"missing{k}") for k in range(300))]
    errors = post({"nodes": nodes, "output": "a"}).get_json()["errors"]
    assert [entry["field"] for entry in errors[:100]] == ["children[1]"] * 100
    assert errors[100] == {"field": None, "message": "200 more like these; the first 100 are listed."}
    assert len(errors) == 101


def test_a_cycle_of_thousands_of_nodes_is_shown_by_its_first_hundred(post):
    n = 5000
    nodes = [op(k, "neg", (k + 1) % n) for k in range(n)]
    (error,) = post({"nodes": nodes}).get_json()["errors"]
    assert error["cycle"] == list(range(100))
    assert error["message"].startswith("This node depends on itself through a cycle of 5000 nodes: 0 -> 1 -> 2")
    assert error["message"].endswith("-> 99 -> ... (the first 100 shown).")


def test_thousands_of_duplicate_ids_are_counted_not_listed(post):
    errors = post({"nodes": [leaf("a", 1.0)] * 3000}).get_json()["errors"]
    assert [entry["index"] for entry in errors[:100]] == list(range(1, 101))
    assert errors[100] == {"field": None, "message": "2899 more like these; the first 100 are listed."}


def chain(length):
    return {"nodes": [leaf(0, 1.0), *(op(k, "exp", k - 1) for k in range(1, length))], "output": length - 1}


def test_a_graph_past_the_deadline_is_504_and_the_app_goes_on_serving(conforms):
    app = create_app({"TESTING": True, "DEADLINE_SECONDS": 0.05, "FAST_PATH": False})  # the C path is not timed
    client = app.test_client()
    big = {"nodes": [leaf(0, 0.0), leaf("k", 1e-9), *(op(k, "add", k - 1, "k") for k in range(1, 300_000))]}
    response = client.post(PATH, json=big)
    conforms(PATH, "post", response.status_code, response.content_type, response.data)
    problem = response.get_json()
    assert response.status_code == 504 and problem["type"] == "/problems/deadline-exceeded"
    assert "VALUEGRAPH_DEADLINE_SECONDS" in problem["detail"] and "0.05 seconds" in problem["detail"]
    assert client.post(PATH, json=SEED_GRAPH).status_code == 200


def test_a_body_that_can_never_fit_the_memory_budget_is_413_naming_it(conforms, make_app):
    client = make_app({"MEMORY_BUDGET_BYTES": 30 * 1000}).test_client()
    response = client.post(PATH, json={"nodes": [leaf(k, 1.0) for k in range(100)]})
    conforms(PATH, "post", response.status_code, response.content_type, response.data)
    problem = response.get_json()
    assert response.status_code == 413 and problem["type"] == "/problems/over-memory-budget"
    assert "VALUEGRAPH_MEMORY_BUDGET_BYTES" in problem["detail"]
    assert client.post(PATH, json=SEED_GRAPH).status_code == 200


def test_a_body_that_does_not_fit_beside_those_in_progress_waits_then_gets_503(conforms, make_app):
    app = make_app({"MEMORY_BUDGET_BYTES": 30 * 10_000, "ADMISSION_WAIT_SECONDS": 0.05})
    budget = app.extensions["valuegraph.memory_budget"]
    with budget.admit(budget.budget - 1_000):  # the seed example needs more than 1,000 B
        response = app.test_client().post(PATH, json=SEED_GRAPH)
    conforms(PATH, "post", response.status_code, response.content_type, response.data)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["type"] == "/problems/over-memory-budget"
    assert budget.admitted == 0
    assert app.test_client().post(PATH, json=SEED_GRAPH).status_code == 200


def test_a_request_waiting_for_the_budget_is_admitted_when_another_finishes(make_app):
    app = make_app({"MEMORY_BUDGET_BYTES": 30 * 10_000, "ADMISSION_WAIT_SECONDS": 10})
    budget = app.extensions["valuegraph.memory_budget"]
    holding = budget.admit(budget.budget - 1_000)  # the seed example needs more than 1,000 B
    holding.__enter__()
    threading.Timer(0.1, holding.__exit__, (None, None, None)).start()
    assert app.test_client().post(PATH, json=SEED_GRAPH).status_code == 200
    assert budget.admitted == 0


def test_a_refusal_explains_nodes_until_a_hundred_problems_and_counts_the_rest(post):
    noisy = {"id": "n" * 256, "data": "x", **{f"k{j}": 0 for j in range(50)}}
    errors = post({"nodes": [{**noisy, "id": f"{k}" * 3} for k in range(30)]}).get_json()["errors"]
    assert len(errors) == 2 * 51 + 1
    assert errors[-1] == {"field": "nodes", "message": "28 more nodes are invalid; the first 2 are listed."}


def test_a_grad_past_64_bits_is_written_exactly_not_a_500(post):
    doublings = [leaf(0, 1.0), *(op(k, "add", k - 1, k - 1) for k in range(1, 70))]
    for app_config in ({"TESTING": True}, {"TESTING": True, "FAST_PATH": False}):
        client = create_app(app_config).test_client()
        response = client.post(PATH, json={"nodes": doublings})
        assert response.status_code == 200
        assert b'{"id":0,"data":1.0,"grad":590295810358705651712}' in response.data
        assert orjson.loads(response.data.replace(b"590295810358705651712", b"0"))  # the rest is orjson's JSON
    assert evaluate_with_seed(doublings, 69)[0][1] == 2**69


def test_a_grad_past_the_doubles_is_a_numeric_error_not_a_500(post):
    """The reference class's int grads grow without bound through adds (data 0.0 stays finite); past
    the largest double, JSON cannot carry them."""
    doublings = [leaf(0, 0.0), *(op(k, "add", k - 1, k - 1) for k in range(1, 1100))]
    response = post({"nodes": doublings})
    problem = response.get_json()
    assert (response.status_code, problem["type"]) == (422, "/problems/numeric-error")
    (error,) = problem["errors"]
    assert error["node"] == 1099 - 1024 and "overflows (an integer of 1025 bits)" in error["message"]


def test_a_body_holds_only_its_own_size_of_the_budget_while_it_arrives(monkeypatch, make_app):
    """A slow client, whose body takes long to arrive, must not hold 30 bytes a byte of the budget."""
    from service.http import answer

    app = make_app()
    budget = app.extensions["valuegraph.memory_budget"]
    held_while_reading, read = [], answer.read_body

    def watched(length):
        held_while_reading.append(budget.admitted)
        return read(length)

    monkeypatch.setattr(answer, "read_body", watched)
    body = orjson.dumps(SEED_GRAPH)
    assert app.test_client().post(PATH, data=body, content_type="application/json").status_code == 200
    assert held_while_reading == [len(body)]
    assert budget.admitted == 0


def test_a_content_length_over_the_body_limit_is_the_body_limits_413(make_app):
    client = make_app({"MAX_CONTENT_LENGTH": 1000, "MEMORY_BUDGET_BYTES": 100}).test_client()
    response = client.post(PATH, data=b"x" * 2000, content_type="application/json")
    assert response.status_code == 413 and "VALUEGRAPH_MAX_BODY_BYTES" in response.get_json()["detail"]
