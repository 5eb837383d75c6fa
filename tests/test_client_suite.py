"""The graph suites (valuegraph.suite): the same for the same variant, every graph a valid request that the
service and the reference class evaluate alike, and between them every op, exponent and backward rule
the issue lists: relu at exactly 0, nodes used two and three times, x op x, chains hundreds deep,
composites."""

import math
from collections import Counter

import pytest

import valuegraph
from tools import reference_value as seed_value
from valuegraph.suites import CHAIN_DEPTH, EXPONENTS, KINDS


@pytest.fixture(scope="module")
def graphs():
    return valuegraph.suite(60, variant=4)


def test_the_same_variant_gives_the_same_suite_and_another_variant_another():
    assert valuegraph.suite(40, variant=4) == valuegraph.suite(40, variant=4)
    assert valuegraph.suite(40, variant=4) != valuegraph.suite(40, variant=5)
    assert list(valuegraph.suite(12, variant=4).items()) == list(valuegraph.suite(40, variant=4).items())[:12]
    assert valuegraph.suite(0) == {}


def test_names_say_what_each_graph_exercises(graphs):
    names = list(graphs)
    assert len(set(names)) == 60
    assert [name.rsplit(" (graph", 1)[0] for name in names[: len(KINDS)]] == [kind for kind, _ in KINDS]
    assert all(name.endswith(f"(graph {i + 1})") for i, name in enumerate(names))


def test_every_graph_is_valid_and_the_service_and_the_reference_class_agree(client, graphs):
    for name, graph in graphs.items():
        response = client.post("/v1/evaluate", json=graph)
        assert response.status_code == 200, (name, response.get_json())
        answer = response.get_json()
        local = seed_value.evaluate_with_seed(graph["nodes"], graph["output"])
        for node in answer["nodes"]:
            data, grad = local[node["id"]]
            assert (float(node["data"]).hex(), float(node["grad"]).hex()) == (float(data).hex(), float(grad).hex())


def evaluated(graph):
    """{id: data} by the reference class."""
    return {
        node_id: data for node_id, (data, _) in seed_value.evaluate_with_seed(graph["nodes"], graph["output"]).items()
    }


def test_every_op_and_exponent_is_defined_with_room_to_spare(graphs):
    ops, exponents = Counter(), Counter()
    for graph in graphs.values():
        data = evaluated(graph)
        for node in graph["nodes"]:
            op = node.get("op", "value")
            ops[op] += 1
            inputs = [data[child] for child in node.get("children", ())]
            if op == "pow":
                exponents[node["exponent"]] += 1
                if node["exponent"] < 0:
                    assert abs(inputs[0]) >= 0.25
                if not float(node["exponent"]).is_integer():
                    assert inputs[0] >= 0.25
            if op == "log":
                assert inputs[0] >= 0.001  # a softmax's probability; else >= 0.25
            if op == "div":
                assert abs(inputs[1]) >= 0.25
            assert math.isfinite(data[node["id"]]) and abs(data[node["id"]]) < 1000
    assert set(ops) == {"value", "add", "mul", "sub", "div", "neg", "pow", "log", "exp", "relu"}
    assert set(exponents) == set(EXPONENTS)


def test_every_backward_rule_the_issue_lists_is_exercised():
    graphs = valuegraph.suite(len(KINDS), variant=9)
    relu_at_zero = same_child = 0
    same_child_ops, uses, depths = set(), Counter(), []
    for graph in graphs.values():
        data = evaluated(graph)
        children = {node["id"]: node.get("children", []) for node in graph["nodes"]}
        for node in graph["nodes"]:
            kids = node.get("children", [])
            uses.update(Counter(Counter(kids).keys()))
            if node.get("op") == "relu" and data[kids[0]] == 0.0:
                relu_at_zero += 1
            if len(kids) == 2 and kids[0] == kids[1]:
                same_child += 1
                same_child_ops.add(node["op"])
        depths.append(longest_path(children, graph["output"]))
    per_graph_uses = Counter()
    for graph in graphs.values():
        users = Counter(child for node in graph["nodes"] for child in set(node.get("children", [])))
        per_graph_uses.update(users.values())
    assert relu_at_zero >= 3
    assert same_child_ops == {"add", "mul", "sub", "div"}
    assert per_graph_uses[2] and per_graph_uses[3] and max(per_graph_uses) == CHAIN_DEPTH // 10
    assert max(depths) > CHAIN_DEPTH
    composite = [graph for name, graph in graphs.items() if name.startswith("sub, div and neg")]
    assert {node.get("op") for node in composite[0]["nodes"]} >= {"sub", "div", "neg"}


def longest_path(children, output):
    """The number of nodes on the longest path from `output` to a leaf (iteratively: chains are deep)."""
    depth, stack = {}, [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if node in depth:
            continue
        if expanded:
            depth[node] = 1 + max((depth[child] for child in children[node]), default=0)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in children[node] if child not in depth)
    return depth[output]


def test_a_negative_count_is_refused():
    with pytest.raises(ValueError, match="0 graphs or more"):
        valuegraph.suite(-1)
