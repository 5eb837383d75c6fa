"""The engine and the graph builder against the seed's class: bit for bit, by finite differences,
and at depths no recursion could reach."""

import math
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.core.engine import Value, topological_order
from service.core.graphs import GraphError, evaluate
from tests.property import examples
from tests.strategies import graphs
from tools.reference_value import Value as SeedValue
from tools.reference_value import build_topo, evaluate_with_seed

SEED_GRAPH_NODES = [
    {"id": "a", "op": "value", "data": 2.0},
    {"id": "b", "op": "value", "data": 3.0},
    {"id": "c", "op": "add", "children": ["a", "b"]},
    {"id": "d", "op": "mul", "children": ["c", "a"]},
    {"id": "e", "op": "log", "children": ["d"]},
]


def results(nodes, output=None):
    output, values = evaluate(nodes, output)
    return {node["id"]: (value.data, value.grad) for node, value in zip(nodes, values)}


def bits(pair):
    """A pair of numbers as text that tells -0.0 from 0.0 and 1 from 1.0: equal text, equal bits."""
    return repr(pair)


def test_seed_example():
    got = results(SEED_GRAPH_NODES)
    assert got["e"] == (math.log(10.0), 1)
    assert got["a"][1] == pytest.approx(0.7, rel=1e-15)
    assert [got[k][1] for k in "bcd"] == pytest.approx([0.2, 0.2, 0.1], rel=1e-15)
    assert got == evaluate_with_seed(SEED_GRAPH_NODES, "e")


HAND_MADE = {
    "a child twice: a * a": ([{"id": "a", "data": 3.0}, {"id": "sq", "op": "mul", "children": ["a", "a"]}], "sq"),
    "sub, div and neg expand as in the seed": (
        [
            {"id": "a", "data": 1.5},
            {"id": "b", "data": -0.25},
            {"id": "s", "op": "sub", "children": ["a", "b"]},
            {"id": "q", "op": "div", "children": ["s", "b"]},
            {"id": "n", "op": "neg", "children": ["q"]},
            {"id": "out", "op": "add", "children": ["n", "s"]},
        ],
        "out",
    ),
    "pow, exp, relu at 0 and below": (
        [
            {"id": 1, "data": -2.0},
            {"id": 2, "op": "pow", "children": [1], "exponent": 3},
            {"id": 3, "op": "relu", "children": [2]},
            {"id": 4, "op": "exp", "children": [1]},
            {"id": 5, "op": "mul", "children": [3, 4]},
        ],
        5,
    ),
    "recorded nodes: a Value graph built elsewhere": (
        [
            {"id": "x", "data": 0.5},
            {"id": "y", "data": 2.0, "children": ["x", "x"], "local_grads": [0.25, -1.5]},
            {"id": "z", "data": 7.0, "children": ["y", "x"], "local_grads": [3.0, 1e-3]},
        ],
        "z",
    ),
    "many paths into one node: the summation order matters": (
        [{"id": "x", "data": 0.1}]
        + [{"id": f"m{k}", "op": "mul", "children": ["x", "x" if k == 0 else f"m{k - 1}"]} for k in range(6)]
        + [{"id": "s", "op": "add", "children": ["m5", "m3"]}, {"id": "t", "op": "add", "children": ["s", "m1"]}],
        "t",
    ),
    "three contributions into y: only the seed's order gives the seed's last bit": (
        [
            {"id": "x", "data": 0.42},
            {"id": "y", "data": 0.46},
            {"id": "v0", "op": "mul", "children": ["y", "y"]},
            {"id": "v1", "op": "add", "children": ["y", "x"]},
            {"id": "v2", "op": "add", "children": ["y", "x"]},
            {"id": "v3", "op": "add", "children": ["v1", "v0"]},
            {"id": "v4", "op": "mul", "children": ["v2", "v0"]},
        ],
        "v4",
    ),
    "out of order, output used by nobody else and an unreachable node": (
        [
            {"id": "u", "op": "exp", "children": ["a"]},
            {"id": "out", "op": "mul", "children": ["a", "b"]},
            {"id": "b", "data": 4.0},
            {"id": "a", "data": -1.0},
        ],
        "out",
    ),
}


@pytest.mark.parametrize("nodes, output", HAND_MADE.values(), ids=HAND_MADE.keys())
def test_hand_made_graphs_match_the_seed_bit_for_bit(nodes, output):
    expected = evaluate_with_seed(nodes, output)
    assert {k: bits(v) for k, v in results(nodes, output).items()} == {
        k: bits(expected[k]) for k in expected if k in {n["id"] for n in nodes}
    }


def _seed_or_none(nodes, output):
    """The seed's results, or None when the seed fails or leaves the finite reals (complex, inf, nan)."""
    try:
        expected = evaluate_with_seed(nodes, output)
        if all(math.isfinite(x) for pair in expected.values() for x in pair):
            return expected
    except (ArithmeticError, ValueError, TypeError):
        pass
    return None


@settings(max_examples=examples(400), suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_random_graphs_match_the_seed_or_are_refused_exactly_when_it_fails(graph):
    nodes, output = graph
    expected = _seed_or_none(nodes, output)
    if expected is None:
        with pytest.raises(GraphError) as refusal:
            evaluate(nodes, output)
        assert refusal.value.kind == "numeric-error"
        assert refusal.value.faults[0].node in {node["id"] for node in nodes}
    else:
        got = results(nodes, output)
        assert {k: bits(v) for k, v in got.items()} == {k: bits(expected[k]) for k in got}


SMOOTH_OPS = ("add", "mul", "sub", "div", "neg", "exp", "log", "pow")


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(
    graphs(
        ops=SMOOTH_OPS,
        data=st.floats(0.5, 2.0),
        exponents=st.sampled_from([2.0, 3.0, -1.0, 0.5, 1.5]),
        max_ops=8,
        recorded=False,
    )
)
def test_gradients_match_central_finite_differences(graph):
    nodes, output = graph
    base = _seed_or_none(nodes, output)
    assume(base is not None and all(abs(data) < 1e3 and abs(data) > 1e-3 for data, _ in base.values()))
    got = results(nodes, output)
    for leaf in (node for node in nodes if node.get("op") == "value"):
        x, h = leaf["data"], 1e-6 * max(1.0, abs(leaf["data"]))

        def output_at(shifted, leaf=leaf):
            moved = [{**node, "data": shifted} if node is leaf else node for node in nodes]
            return _seed_or_none(moved, output)

        above, below = output_at(x + h), output_at(x - h)
        assume(above is not None and below is not None)
        finite_difference = (above[output][0] - below[output][0]) / (2 * h)
        assert got[leaf["id"]][1] == pytest.approx(finite_difference, rel=1e-4, abs=1e-6)


#: Fifty times Python's recursion limit: deep enough that any recursion would fail, small enough to be
#: quick. The real server is tested a million deep (tests/test_server.py).
DEEP = 50 * sys.getrecursionlimit()


def test_a_deep_chain_runs_backward_without_recursion():
    depth = DEEP
    x = Value(0.5)
    v = x
    for k in range(depth):
        v = v * 1.0 if k % 2 else v + 1e-9
    v.backward()
    assert x.grad == 1.0
    assert len(topological_order(v)) == 2 * depth + 1  # every op made a constant leaf too


def test_topological_order_is_the_seeds_depth_first_post_order():
    a, b = SeedValue(2.0), SeedValue(3.0)
    ours_a, ours_b = Value(2.0), Value(3.0)

    def shape(x, y):
        c = x * y + x
        return (c.relu() + c * y).exp() - x

    seed_out, ours_out = shape(a, b), shape(ours_a, ours_b)
    assert [v.data for v in topological_order(ours_out)] == [v.data for v in build_topo(seed_out)]


def test_a_deep_chain_through_the_graph_builder():
    depth = DEEP
    nodes = [{"id": 0, "op": "value", "data": 1.0}, {"id": "one", "op": "value", "data": 1.0}]
    nodes += [{"id": k, "op": "add", "children": [k - 1, "one"]} for k in range(1, depth)]
    output, values = evaluate(nodes)
    assert output == depth - 1
    assert values[-1].data == float(depth)
    assert values[0].grad == 1.0 and values[1].grad == float(depth - 1)


def test_a_deep_chain_listed_parents_first_is_put_in_order_without_recursion():
    depth = DEEP
    nodes = [{"id": k, "op": "add", "children": [k - 1, "one"]} for k in range(depth - 1, 0, -1)]
    nodes += [{"id": "one", "data": 1.0, "children": [], "local_grads": []}, {"id": 0, "op": "value", "data": 0.0}]
    output, values = evaluate(nodes)
    assert output == depth - 1
    assert [v.data for v in values[:3]] == [depth - 1.0, depth - 2.0, depth - 3.0]
    assert (values[-2].grad, values[-1].grad) == (depth - 1.0, 1.0)
