"""POST /v1/grade on hand-made graphs: verdicts, score, each kind of root cause and its message, the
tolerance, and every refusal. Expected numbers come from the seed's class; every response is checked
against openapi.yaml."""

import itertools
import math

import orjson
import pytest

from service.contract.examples import EXAMPLE_GRAPH, GRADE_EXAMPLE
from service.core import grading
from tests.support import leaf, op
from tools.reference_value import OPS as SEED_OPS
from tools.reference_value import Value, evaluate_with_seed

PATH = "/v1/grade"


@pytest.fixture
def post(client, conforms):
    """post(body): send a JSON-able body (or bytes), check the answer against the contract."""

    def send(body, path=PATH):
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        response = client.post(path, data=data, content_type="application/json")
        conforms(path, "post", response.status_code, response.content_type, response.data)
        return response

    return send


def seed(nodes, output):
    """{id: (data, grad)} by the seed's class."""
    return evaluate_with_seed(nodes, output)


def graded(post, nodes, submitted, output=None, tolerance=None):
    body = {"nodes": nodes, "submitted": submitted}
    if output is not None:
        body["output"] = output
    if tolerance is not None:
        body["tolerance"] = tolerance
    response = post(body)
    assert response.status_code == 200, response.data
    return response.get_json()


def verdicts(body):
    return {node["id"]: node["verdict"] for node in body["nodes"]}


def score(body):
    return {key: body["score"][key] for key in ("checked", "matched")}


def mistakes(cause):
    return [candidate["mistake"] for candidate in cause["candidates"]]


# --- the example ------------------------------------------------------------------------------


def test_the_seed_example_with_a_grad_of_0_2_has_one_root_cause_accumulation_at_a(post):
    body = graded(post, EXAMPLE_GRAPH["nodes"], [{"id": "a", "grad": 0.2}])
    assert body["passed"] is False
    assert score(body) == {"checked": 1, "matched": 0}
    (cause,) = body["root_causes"]
    reference = seed(EXAMPLE_GRAPH["nodes"], "e")
    assert cause["node"] == "a" and cause["kind"] == "accumulation" and cause["field"] == "grad"
    assert cause["expected"] == reference["a"][1] and cause["submitted"] == 0.2
    assert "a is used by c and d" in cause["message"]
    # With a's grad alone, `=` for `+=` and mul's local gradients as (1, 1) both give 0.2: both are named,
    # the one that shows at a itself first.
    assert mistakes(cause) == ["assigns-instead-of-adding", "mul-local-grads-ones"]
    assert "These numbers fit 2 known mistakes" in cause["message"] and "child.grad +=" in cause["message"]


def test_the_spec_example_grades_as_described(post):
    body = post(GRADE_EXAMPLE).get_json()
    assert [(c["node"], c["kind"]) for c in body["root_causes"]] == [("a", "accumulation")]
    assert score(body) == {"checked": 3, "matched": 2}


def test_a_correct_submission_passes_with_every_field_matched(post):
    nodes = EXAMPLE_GRAPH["nodes"]
    reference = seed(nodes, "e")
    locals_ = {"c": [1.0, 1.0], "d": [2.0, 5.0], "e": [1 / 10.0]}
    submitted = [
        {"id": i, "data": d, "grad": g, **({"local_grads": locals_[i]} if i in locals_ else {})}
        for i, (d, g) in reference.items()
    ]
    body = graded(post, nodes, submitted, tolerance={"rtol": 0, "atol": 0})
    assert body["passed"] is True and body["root_causes"] == []
    assert score(body) == {"checked": 13, "matched": 13}
    assert all(
        v == {"data": "match", "grad": "match", **{"local_grads": v["local_grads"]}} for v in verdicts(body).values()
    )
    assert [n["id"] for n in body["nodes"]] == ["a", "b", "c", "d", "e"]
    assert {n["id"]: n.get("local_grads") for n in body["nodes"]} == {"a": None, "b": None, **locals_}


# --- forward ---------------------------------------------------------------------------------------------


def test_a_wrong_forward_rule_is_the_root_cause_and_what_follows_is_only_marked(post):
    nodes = EXAMPLE_GRAPH["nodes"]
    wrong_d = 5.0 + 2.0  # mul computed as add
    submitted = [
        {"id": "c", "data": 5.0},
        {"id": "d", "data": wrong_d},
        {"id": "e", "data": math.log(wrong_d)},
        {"id": "a", "grad": 0.3},
    ]
    body = graded(post, nodes, submitted)
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"], cause["field"]) == ("d", "forward", "data")
    assert cause["expected"] == 10.0 and cause["submitted"] == wrong_d
    assert "d = mul(c, a)" in cause["message"] and "mul computes a + b" in cause["message"]
    assert mistakes(cause) == ["mul-computes-sum"]
    assert verdicts(body)["e"]["data"] == "mismatch"
    assert verdicts(body)["a"]["grad"] == "mismatch"  # explained: d's data is wrong, so e's local gradient is suspect


def test_a_wrong_leaf_is_a_forward_root_cause(post):
    body = graded(post, EXAMPLE_GRAPH["nodes"], [{"id": "b", "data": 4.0}, {"id": "c", "data": 6.0}])
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"]) == ("b", "forward")
    assert "leaf" in cause["message"]


def test_an_unsubmitted_child_does_not_hide_an_earlier_mismatch(post):
    """c's data is not submitted; d's wrong data is explained by a's, through c."""
    body = graded(post, EXAMPLE_GRAPH["nodes"], [{"id": "a", "data": 2.5}, {"id": "d", "data": 13.75}])
    assert [(c["node"], c["kind"]) for c in body["root_causes"]] == [("a", "forward")]
    assert verdicts(body)["d"]["data"] == "mismatch"


def test_root_causes_come_children_first_whatever_the_request_order(post):
    nodes = [
        op("late", "exp", "early"),
        op("early", "mul", "x", "y"),
        leaf("x", 2.0),
        leaf("y", 3.0),
        op("other", "log", "y"),
        op("out", "add", "late", "other"),
    ]
    submitted = [{"id": "late", "data": 1.0}, {"id": "early", "data": 5.0}]
    body = graded(post, nodes, submitted)
    assert [c["node"] for c in body["root_causes"]] == ["early"]  # late's data is explained by early's
    submitted = [{"id": "other", "data": 7.0}, {"id": "early", "data": 5.0}]
    body = graded(post, nodes, submitted)
    assert [c["node"] for c in body["root_causes"]] == ["early", "other"]


# --- local gradients --------------------------------------------------------------------------------------


def seed_local_grads(name, *data, exponent=None):
    """Per unit of the node's grad, what the seed's backward passes to each listed child."""
    leaves = [Value(x) for x in data]
    out = leaves[0] ** exponent if name == "pow" else SEED_OPS[name](*leaves)
    out.backward()
    return [x.grad for x in leaves]


@pytest.mark.parametrize(
    "name, data",
    [
        ("sub", (2.0, 3.0)),
        ("div", (2.0, 3.0)),
        ("div", (0.7, -0.3)),
        ("neg", (1.5,)),
        ("mul", (2.0, 3.0)),
        ("log", (0.3,)),
    ],
)
def test_reference_local_grads_are_what_the_seed_passes_per_unit_of_grad(post, name, data):
    nodes = [leaf(f"x{k}", x) for k, x in enumerate(data)] + [op("y", name, *(f"x{k}" for k in range(len(data))))]
    body = graded(post, nodes, [])
    assert body["nodes"][-1]["local_grads"] == seed_local_grads(name, *data)
    assert all("local_grads" not in n for n in body["nodes"][:-1])


def test_sub_of_a_node_with_itself_has_a_local_gradient_per_listed_child(post):
    body = graded(post, [leaf("x", 2.0), op("y", "sub", "x", "x")], [])
    assert body["nodes"][1]["local_grads"] == [1.0, -1.0]


def test_a_wrong_local_gradient_is_the_root_cause(post):
    nodes = EXAMPLE_GRAPH["nodes"]
    reference = seed(nodes, "e")
    wrong = 1 / 10.0**2  # log's derivative as 1/x**2
    submitted = [
        {"id": "e", "local_grads": [wrong], "grad": 1},
        {"id": "d", "grad": wrong, "local_grads": [2.0, 5.0]},
        {"id": "a", "grad": 5 * wrong + 2 * wrong},
    ]
    body = graded(post, nodes, submitted)
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"], cause["field"]) == ("e", "local-gradient", "local_grads")
    assert cause["expected"] == [0.1] and cause["submitted"] == [wrong]
    assert "log" in cause["message"]
    assert verdicts(body)["d"]["grad"] == "mismatch" and verdicts(body)["a"]["grad"] == "mismatch"
    assert body["nodes"][0]["grad"] == reference["a"][1]


def test_mul_local_grads_not_swapped_are_named(post):
    body = graded(post, EXAMPLE_GRAPH["nodes"], [{"id": "d", "local_grads": [5.0, 2.0]}])
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"]) == ("d", "local-gradient")
    assert mistakes(cause) == ["mul-local-grads-not-swapped"] and "OTHER factor" in cause["message"]


def test_a_wrong_grad_under_a_user_whose_local_grads_were_not_sent_points_at_that_user(post):
    """d's grad matches, e is d's only user and sent no local_grads: e's derivative rule is the likely mistake."""
    body = graded(post, EXAMPLE_GRAPH["nodes"], [{"id": "e", "grad": 1}, {"id": "d", "grad": 0.01}])
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"], cause["field"]) == ("e", "local-gradient", "local_grads")
    assert cause["submitted"] is None and cause["expected"] == [0.1]


def test_grads_only_a_products_swapped_local_grads_are_placed_at_the_product_that_made_the_wrong_grad(post):
    """A student whose mul keeps its own data as local gradients, graded on grads alone: n1's grad is wrong
    because n2's local gradients are. The first root cause is n2, not n1 (whose own local gradients
    cannot make its own grad), and no message says that a mismatched grad matches."""
    nodes = [
        leaf("x1", 1.263),
        leaf("x2", 0.727),
        op("n1", "mul", "x1", "x2"),
        leaf("x3", -0.516),
        op("n2", "mul", "n1", "x3"),
    ]
    n1_grad = 0.918201  # n1's own data, as a mul without the swap passes it on
    submitted = [
        {"id": "x1", "grad": 1.263 * n1_grad},
        {"id": "x2", "grad": 0.727 * n1_grad},
        {"id": "n1", "grad": n1_grad},
        {"id": "x3", "grad": -0.516},
        {"id": "n2", "grad": 1.0},
    ]
    body = graded(post, nodes, submitted)
    assert verdicts(body)["n1"]["grad"] == "mismatch"
    first = body["root_causes"][0]
    assert (first["node"], first["kind"], first["field"]) == ("n2", "local-gradient", "local_grads")
    assert mistakes(first) == ["mul-local-grads-not-swapped"]
    assert "n1 gets grad 0.918201 instead of -0.516 while n2's grad matches" in first["message"]
    for cause in body["root_causes"]:
        for node_id, verdict in verdicts(body).items():
            if verdict["grad"] == "mismatch":
                assert f"{node_id}'s grad matches" not in cause["message"]


# --- accumulation -----------------------------------------------------------------------------------------


def test_a_square_with_assignment_instead_of_accumulation(post):
    nodes = [leaf("x", 3.0), op("y", "mul", "x", "x")]
    body = graded(post, nodes, [{"id": "x", "grad": 3.0}])
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"], cause["expected"]) == ("x", "accumulation", 6.0)
    assert "x is used by y (child 0) and y (child 1)" in cause["message"]
    assert mistakes(cause) == ["assigns-instead-of-adding", "same-child-counted-once"]


def three_uses(weights=(0.1, 0.2, 0.3)):
    """x used by three products x * w_i, summed: x's contributions are the weights."""
    nodes = [leaf("x", 1.0)] + [leaf(f"w{k}", w) for k, w in enumerate(weights)]
    nodes += [op(f"p{k}", "mul", "x", f"w{k}") for k in range(len(weights))]
    nodes += [op("s", "add", "p0", "p1"), op("t", "add", "s", "p2")]
    return nodes


def test_a_missing_contribution_is_named(post):
    body = graded(post, three_uses(), [{"id": "x", "grad": 0.1 + 0.3}])
    (cause,) = body["root_causes"]
    assert cause["kind"] == "accumulation" and "without p1's" in cause["message"]
    assert mistakes(cause) == ["some-uses-not-added"]


def test_the_sum_in_another_order_is_named_when_bit_exact(post):
    nodes = three_uses()
    reference = seed(nodes, "t")["x"][1]
    other = next(
        total
        for order in itertools.permutations((0.1, 0.2, 0.3))
        if (total := (order[0] + order[1]) + order[2]) != reference
    )
    exact = {"rtol": 0, "atol": 0}
    body = graded(post, nodes, [{"id": "x", "grad": other}], tolerance=exact)
    (cause,) = body["root_causes"]
    assert cause["kind"] == "accumulation" and "another order" in cause["message"]
    assert graded(post, nodes, [{"id": "x", "grad": other}])["passed"] is True  # within the default rtol


def test_local_gradients_without_the_chain_rule_factor_are_named(post):
    nodes = [leaf("x", 2.0), op("y", "exp", "x"), op("z", "mul", "y", "k"), leaf("k", 4.0)]
    body = graded(post, nodes, [{"id": "x", "grad": math.exp(2.0)}, {"id": "y", "grad": 4.0}])
    (cause,) = body["root_causes"]
    assert (cause["node"], cause["kind"]) == ("x", "accumulation")
    assert mistakes(cause) == ["no-chain-rule"] and "`child.grad += local_grad`" in cause["message"]


def test_the_outputs_grad_and_an_unreached_nodes_grad(post):
    nodes = [*EXAMPLE_GRAPH["nodes"], op("side", "exp", "b")]
    body = graded(post, nodes, [{"id": "e", "grad": 2.0}, {"id": "side", "grad": 1.0}], output="e")
    causes = {c["node"]: c for c in body["root_causes"]}
    assert "starts by setting its grad to 1" in causes["e"]["message"]
    assert "does not depend on side" in causes["side"]["message"]
    assert [c["node"] for c in body["root_causes"]] == ["e", "side"]


def test_integer_ids_are_named_in_messages(post):
    nodes = [leaf(1, 3.0), op(2, "mul", 1, 1)]
    (cause,) = graded(post, nodes, [{"id": 1, "grad": 3.0}])["root_causes"]
    assert cause["node"] == 1 and "#1 is used by #2 (child 0) and #2 (child 1)" in cause["message"]


# --- tolerance ---------------------------------------------------------------------------------------------


def test_tolerance_default_exact_and_absolute(post):
    nodes = EXAMPLE_GRAPH["nodes"]
    near = math.nextafter(0.7, 1.0)
    assert graded(post, nodes, [{"id": "a", "grad": near}])["passed"] is True
    assert graded(post, nodes, [{"id": "a", "grad": near}], tolerance={"rtol": 0, "atol": 0})["passed"] is False
    assert graded(post, nodes, [{"id": "a", "grad": 0.7001}], tolerance={"atol": 1e-3})["passed"] is True
    assert graded(post, nodes, [{"id": "a", "grad": 0.7001}], tolerance={"rtol": 1e-4})["passed"] is False
    body = graded(post, nodes, [{"id": "a", "grad": 0.7}], tolerance={"rtol": 0, "atol": 0})
    assert body["passed"] is True and score(body) == {"checked": 1, "matched": 1}


# --- refusals ----------------------------------------------------------------------------------------------


def refused(post, body):
    response = post(body)
    assert response.status_code == 422, response.data
    assert response.content_type == "application/problem+json"
    return response.get_json()["errors"]


@pytest.mark.parametrize(
    "submitted, field, words",
    [
        ([{"id": "nope", "grad": 1.0}], "submitted[0].id", "No node has the id 'nope'"),
        ([{"id": "a"}, {"id": "a", "grad": 1.0}], "submitted[1].id", "Duplicate id: submitted[0]"),
        ([{"id": "d", "local_grads": [1.0]}], "submitted[0].local_grads", "1 local_grads for 2 children"),
        ([{"id": "a", "local_grads": [1.0]}], "submitted[0].local_grads", "is a leaf"),
        ([{"id": "a", "grad": "0.7"}], "submitted[0].grad", "Not a valid number"),
        ([{"id": "a", "grad": True}], "submitted[0].grad", "Not a valid number"),
        ([{"id": "e", "local_grads": [1.0, None]}], "submitted[0].local_grads[1]", "Field may not be null"),
        ([{"id": "a", "gard": 1.0}], "submitted[0].gard", "Unknown field"),
        ([{"grad": 1.0}], "submitted[0].id", "Required, and missing"),
        ([3], "submitted[0]", "Not a JSON object"),
    ],
)
def test_a_submitted_entry_that_does_not_fit_is_refused_by_index_and_field(post, submitted, field, words):
    errors = refused(post, {**EXAMPLE_GRAPH, "submitted": submitted})
    (error,) = [e for e in errors if e["field"] == field]
    assert words in error["message"]


@pytest.mark.parametrize(
    "tolerance, field",
    [({"rtol": -1e-9}, "tolerance.rtol"), ({"atol": -1}, "tolerance.atol"), ({"rtol": "0"}, "tolerance.rtol")],
)
def test_a_bad_tolerance_is_refused(post, tolerance, field):
    errors = refused(post, {**EXAMPLE_GRAPH, "submitted": [], "tolerance": tolerance})
    assert [e["field"] for e in errors] == [field]


def test_non_finite_tolerance_cannot_be_sent(post):
    """The bare token Infinity is read (for a submitted number), and refused by name anywhere else."""
    response = post(b'{"nodes": [{"id": "a", "data": 1}], "submitted": [], "tolerance": {"rtol": Infinity}}')
    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    assert error["field"] == "tolerance.rtol" and "'Infinity'" in error["message"]


def test_an_invalid_graph_is_refused_as_evaluate_refuses_it(post, client):
    graph = {"nodes": [{"id": "x", "op": "value", "data": "2.0"}, {"id": "y", "op": "pow", "children": ["x"]}]}
    errors = refused(post, {**graph, "submitted": [{"id": "x", "data": 2}]})
    assert errors == client.post("/v1/evaluate", json=graph).get_json()["errors"]
    numeric = {"nodes": [leaf("x", -1.0), op("y", "log", "x")], "submitted": []}
    response = post(numeric)
    assert response.status_code == 422 and response.get_json()["type"] == "/problems/numeric-error"


def test_a_local_gradient_beyond_the_doubles_is_refused_though_evaluation_answers(post, client):
    """log at a subnormal x: its data is finite, its derivative 1/x is not. The output does not depend on
    it, so evaluation never differentiates it and answers; grading would have to send that local gradient
    and refuses, naming the node and why (docs/grading.md)."""
    graph = {
        "nodes": [
            leaf("tiny", 4.450147717014407e-309),
            op("l", "log", "tiny"),
            leaf("x", 2.0),
            op("y", "exp", "x"),
        ],
        "output": "y",
    }
    assert client.post("/v1/evaluate", json=graph).status_code == 200
    response = post({**graph, "submitted": [{"id": "y", "grad": 1.0}]})
    assert response.status_code == 422 and response.get_json()["type"] == "/problems/numeric-error"
    (error,) = response.get_json()["errors"]
    assert error["node"] == "l" and error["op"] == "log" and "overflows" in error["message"]


def test_submitted_is_required_and_graph_and_submission_problems_come_together(post):
    assert [e["field"] for e in refused(post, EXAMPLE_GRAPH)] == ["submitted"]
    errors = refused(post, {"nodes": [{"id": "x", "data": "1"}], "submitted": [{"id": "x", "data": "1"}]})
    assert [(e.get("node"), e.get("index"), e["field"]) for e in errors] == [
        ("x", 0, "data"),
        ("x", None, "submitted[0].data"),
    ]


def test_the_spec_shows_what_the_service_answers_to_its_grade_example(post, spec):
    example = spec["paths"]["/v1/grade"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    assert post(GRADE_EXAMPLE).get_json() == example


def test_a_node_used_many_times_lists_ten_uses_and_counts_the_rest(post):
    nodes = [leaf("x", 1.0)] + [op(f"p{k}", "exp", "x") for k in range(12)]
    nodes += [op("s1", "add", "p0", "p1")] + [op(f"s{k}", "add", f"s{k - 1}", f"p{k}") for k in range(2, 12)]
    (cause,) = graded(post, nodes, [{"id": "x", "grad": 1.0}])["root_causes"]
    assert "x is used by p0, p1, p2, p3, p4, p5, p6, p7, p8, p9 and 2 more" in cause["message"]
    assert cause["message"].count(" from p") == 10 and "+ 2 more =" in cause["message"]


def squares_summed(count):
    nodes = [leaf(f"x{k}", 1.0 + k) for k in range(count)] + [
        op(f"y{k}", "mul", f"x{k}", f"x{k}") for k in range(count)
    ]
    nodes += [op("s1", "add", "y0", "y1")] + [op(f"s{k}", "add", f"s{k - 1}", f"y{k}") for k in range(2, count)]
    return nodes, [{"id": f"x{k}", "grad": 1.0 + k} for k in range(count)]


def test_every_known_mistake_is_tried_on_a_graph_of_hundreds_of_nodes(post):
    nodes, submitted = squares_summed(90)
    causes = graded(post, nodes, submitted)["root_causes"]
    assert [c["node"] for c in causes] == [f"x{k}" for k in range(90)]
    assert all(c["expected"] == 2 * (1.0 + k) for k, c in enumerate(causes))
    assert all(mistakes(c) == ["assigns-instead-of-adding", "same-child-counted-once"] for c in causes)


def test_the_first_hundred_root_causes_are_listed_and_the_rest_counted(post, monkeypatch):
    """So that a huge graph wrong everywhere is graded in time linear in its size and answers a bounded
    list; past the size every mistake is tried on, a wrong sum is recognised from its own contributions."""
    monkeypatch.setattr(grading, "MAX_SIMULATED_NODES", 100)
    nodes, submitted = squares_summed(150)
    body = graded(post, nodes, submitted)
    causes = body["root_causes"]
    assert [c["node"] for c in causes] == [f"x{k}" for k in range(100)] and body["root_causes_not_listed"] == 50
    assert all("contribution alone" in c["message"] for c in causes)


def test_a_local_gradient_beyond_the_doubles_is_a_numeric_error_not_a_500(post, client):
    """a / b with a/b finite and a/b² not: /v1/evaluate answers (q's grad is small), a grade cannot state
    q's local gradient for b."""
    nodes = [leaf("a", 1e300), leaf("b", 1e-5), op("q", "div", "a", "b"), leaf("s", 1e-20), op("o", "mul", "q", "s")]
    assert client.post("/v1/evaluate", json={"nodes": nodes}).status_code == 200
    response = post({"nodes": nodes, "submitted": []})
    assert response.status_code == 422
    (error,) = response.get_json()["errors"]
    assert (error["node"], error["op"], error["inputs"]) == ("q", "div", [1e300, 1e-5])


def test_a_million_bad_submitted_local_grads_are_counted_not_listed(client):
    body = {
        "nodes": [{"id": "a", "data": 1.0}, {"id": "c", "op": "neg", "children": ["a"]}],
        "submitted": [{"id": "c", "local_grads": ["x"] * 1_000_000}],
    }
    response = client.post("/v1/grade", json=body)
    assert response.status_code == 422 and len(response.data) < 20_000
    errors = response.get_json()["errors"]
    assert len(errors) == 101
    assert errors[-1]["message"] == "999900 more items are invalid; the first 100 are listed."


# --- what was checked, and numbers that are not finite -----------------------------------------------------


def test_nothing_submitted_is_not_a_pass(post):
    body = graded(post, EXAMPLE_GRAPH["nodes"], [])
    assert body["passed"] is False and score(body) == {"checked": 0, "matched": 0}


def test_required_fields_not_submitted_are_missing_and_fail(post):
    nodes = EXAMPLE_GRAPH["nodes"]
    reference = seed(nodes, "e")
    submitted = [{"id": i, "data": d, "grad": g} for i, (d, g) in reference.items() if i != "b"]
    body = post({"nodes": nodes, "submitted": submitted, "required": ["data", "grad", "local_grads"]}).get_json()
    assert body["passed"] is False
    assert verdicts(body)["b"] == {"data": "missing", "grad": "missing", "local_grads": "not-submitted"}  # a leaf
    assert verdicts(body)["c"]["local_grads"] == "missing"
    assert body["score"]["fields"] == {
        "data": {"checked": 5, "matched": 4, "missing": 1},
        "grad": {"checked": 5, "matched": 4, "missing": 1},
        "local_grads": {"checked": 3, "matched": 0, "missing": 3},
    }
    body = post({"nodes": nodes, "submitted": submitted, "required": ["data"]}).get_json()
    assert body["passed"] is False and verdicts(body)["b"]["data"] == "missing"
    submitted.append({"id": "b", "data": 3.0})
    assert post({"nodes": nodes, "submitted": submitted, "required": ["data"]}).get_json()["passed"] is True


@pytest.mark.parametrize("required", [["data", "data"], ["weights"], "data", [1]])
def test_a_bad_required_list_is_refused(post, required):
    errors = refused(post, {"nodes": EXAMPLE_GRAPH["nodes"], "submitted": [], "required": required})
    assert all(error["field"].startswith("required") for error in errors)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b'"NaN"', b'"Infinity"', b'"-Infinity"'])
def test_a_non_finite_submitted_number_is_a_mismatch_with_a_message(post, token):
    body = post(
        b'{"nodes": [{"id": "x", "data": 2.0}, {"id": "y", "op": "log", "children": ["x"]}], '
        b'"submitted": [{"id": "y", "data": %b}, {"id": "x", "grad": 0.5}]}' % token
    ).get_json()
    assert body["passed"] is False and verdicts(body)["y"]["data"] == "mismatch"
    (cause,) = body["root_causes"]
    assert cause["submitted"] == token.strip(b'"').decode()
    assert "not a number the reference can have" in cause["message"]


def test_a_bare_nan_outside_the_submission_is_refused_by_name(post):
    errors = refused(post, b'{"nodes": [{"id": "x", "data": NaN}], "submitted": []}')
    assert errors == [
        {"node": "x", "index": 0, "field": "data", "message": "Not a valid number: 'NaN'; a JSON number is required."}
    ]


def test_a_nan_in_one_item_of_a_batch_is_that_items_own(post):
    items = [orjson.dumps({**EXAMPLE_GRAPH, "submitted": [{"id": "a", "grad": 0.7}]})] * 499
    items.insert(37, b'{"nodes": %b, "submitted": [{"id": "a", "grad": NaN}]}' % orjson.dumps(EXAMPLE_GRAPH["nodes"]))
    items.insert(41, b'{"nodes": [{"id": "a", "data": NaN}], "submitted": []}')
    response = post(b'{"graphs": [%b]}' % b",".join(items), path="/v1/grade/batch")
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert [r["status"] for r in results].count(200) == 500 and results[41]["status"] == 422
    assert results[37]["grade"]["passed"] is False and results[37]["grade"]["root_causes"][0]["submitted"] == "NaN"
    assert all(r["grade"]["passed"] for k, r in enumerate(results) if k not in (37, 41))


def test_a_big_batchs_server_timing_does_not_grow_with_its_items(client):
    item = {**EXAMPLE_GRAPH, "submitted": [{"id": "a", "grad": 0.2}]}
    response = client.post("/v1/grade/batch", json={"graphs": [item] * 2000})
    assert response.status_code == 200
    timing = response.headers["Server-Timing"]
    phases = [part.split(";")[0] for part in timing.split(", ")]
    assert len(timing) < 200 and phases == ["read", "parse", "validate", "build", "backward", "grade", "write"]
