"""Grading submissions made by deliberately broken copies of the seed's class (tests/seed_value.py with
one literal edit: a wrong forward rule, a wrong local gradient, `=` for `+=`): on random graphs the
FIRST root cause must name exactly the broken op's node, or the node whose contributions were lost.

Tolerance is bit-exact here, so that "match" means the broken copy did the seed's arithmetic.
"""

import inspect
import math
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from service.core import graphs as graph_module
from service.core.grading import Tolerance
from service.core.ops import OPS
from tests.strategies import graphs
from tests.support import grade_or_reject
from tools import reference_value as seed_value

EXACT = Tolerance(rtol=0.0, atol=0.0)

FORWARD_MUTATIONS = {
    "mul computes a + b": ("Value(self.data * other.data,", "Value(self.data + other.data,"),
    "log is log10": ("Value(math.log(self.data),", "Value(math.log10(self.data),"),
    "relu lets negatives through": ("Value(max(0, self.data),", "Value(abs(self.data),"),
}
LOCAL_MUTATIONS = {
    "log's derivative as 1/x**2": ("(1 / self.data,)", "(1 / self.data**2,)"),
    "mul's local grads not swapped": ("(other.data, self.data))", "(self.data, other.data))"),
    "pow's derivative keeps the exponent": ("(other * self.data ** (other - 1),)", "(other * self.data**other,)"),
    "exp's derivative as its input": ("(math.exp(self.data),))", "(self.data,))"),
}
ASSIGNMENT = ("child.grad += local_grad * v.grad", "child.grad = local_grad * v.grad")

#: Leaves away from 0, both signs: log needs positive inputs, relu's mutation negative ones.
SIGNED = st.one_of(st.floats(0.25, 3), st.floats(-3, -0.25))

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))


def broken_copy(old, new):
    """The seed's module with `old` replaced by `new` (exactly once): a student's class with one mistake."""
    source = inspect.getsource(seed_value)
    assert source.count(old) == 1, old
    namespace = {"__name__": "broken_seed_value"}
    exec(compile(source.replace(old, new), "<broken seed_value>", "exec"), namespace)
    return SimpleNamespace(**namespace)


def build(module, node, children):
    """The node built by `module`'s class from its children's Values, as a student's code would."""
    op = node.get("op", "value")
    if op == "value":
        if "local_grads" in node:
            return module.Value(float(node["data"]), tuple(children), tuple(map(float, node["local_grads"])))
        return module.Value(float(node["data"]))
    if op == "pow":
        return children[0] ** float(node["exponent"])
    return module.OPS[op](*children)


def per_unit_local_grads(module, node, children_data):
    """What `module`'s backward passes to each listed child per unit of the node's grad."""
    if "op" not in node:
        return [float(g) for g in node["local_grads"]]
    leaves = [module.Value(x) for x in children_data]
    build(module, node, leaves).backward()
    return [leaf.grad for leaf in leaves]


def finite(*numbers):
    return all(isinstance(x, float | int) and math.isfinite(x) for x in numbers)


def submission(module, nodes, output):
    """Every node's data, grad and local_grads as `module`'s class computes them; None when it fails."""
    values = {}
    try:
        for node in nodes:  # children first: the strategies below do not shuffle
            values[node["id"]] = build(module, node, [values[c] for c in node.get("children", ())])
        values[output].backward()
        entries = []
        for node in nodes:
            v = values[node["id"]]
            entry = {"id": node["id"], "data": v.data, "grad": v.grad}
            if node.get("children"):
                entry["local_grads"] = per_unit_local_grads(module, node, [values[c].data for c in node["children"]])
            if not finite(entry["data"], entry["grad"], *entry.get("local_grads", ())):
                return None
            entries.append(entry)
        return entries
    except (ArithmeticError, ValueError, TypeError):
        return None


def reference(nodes, output):
    try:
        return graph_module.evaluate(nodes, output)
    except graph_module.GraphError:
        return None


def graded(module, nodes, output):
    """(the grade body, the reference Values), or reject the example if either side cannot evaluate it."""
    evaluated = reference(nodes, output)
    assume(evaluated is not None)
    submitted = submission(module, nodes, output)
    assume(submitted is not None)
    output, values = evaluated
    return grade_or_reject(nodes, output, values, submitted, EXACT), values


def first_broken_node(module, nodes, values, body):
    """(id, kind) of the first node, children first, that `module` builds wrong from the RIGHT children:
    its forward rule (kind forward) or its local gradients (kind local-gradient)."""
    position = {node["id"]: i for i, node in enumerate(nodes)}
    for node, result in zip(nodes, body["nodes"]):
        if node.get("op", "value") == "value":
            continue
        children_data = [values[position[c]].data for c in node["children"]]
        try:
            data = build(module, node, [module.Value(x) for x in children_data]).data
            local_grads = per_unit_local_grads(module, node, children_data)
        except (ArithmeticError, ValueError, TypeError):
            return node["id"], "forward"
        if not EXACT.matches(data, result["data"]):
            return node["id"], "forward"
        if not EXACT.all_match(local_grads, result["local_grads"]):
            return node["id"], "local-gradient"
    return None


def check_first_root_cause_is_the_broken_node(module, case):
    nodes, output = case
    body, values = graded(module, nodes, output)
    expected = first_broken_node(module, nodes, values, body)
    if expected is None:
        assert body["passed"] and body["root_causes"] == []
        return False
    assert body["root_causes"], expected
    first = body["root_causes"][0]
    assert (first["node"], first["kind"]) == expected, body["root_causes"]
    return True


def one_op(name, *children, **extra):
    """A graph of one op over a negative and a positive leaf: each mutation above shows on one of them,
    whatever hypothesis draws besides."""
    leaves = [{"id": "x", "op": "value", "data": -1.5}, {"id": "y", "op": "value", "data": 2.0}]
    return [*leaves, {"id": "out", "op": name, "children": list(children), **extra}], "out"


OPS_SHOWING_EACH_MUTATION = [
    one_op("mul", "x", "y"),
    one_op("log", "y"),
    one_op("relu", "x"),
    one_op("pow", "y", exponent=3.0),
    one_op("exp", "x"),
    one_op("add", "x", "y"),
    one_op("div", "x", "y"),
    one_op("sub", "x", "y"),
]


def with_each_op(test):
    """The property test run first on OPS_SHOWING_EACH_MUTATION, then on what hypothesis draws."""
    for case in OPS_SHOWING_EACH_MUTATION:
        test = example(case)(test)
    return test


@pytest.mark.slow
@pytest.mark.parametrize("mutation", list(FORWARD_MUTATIONS) + list(LOCAL_MUTATIONS))
def test_a_broken_rule_is_the_first_root_cause(mutation):
    old, new = {**FORWARD_MUTATIONS, **LOCAL_MUTATIONS}[mutation]
    module = broken_copy(old, new)
    found = []

    @SETTINGS
    @given(graphs(data=SIGNED, shuffle=False, max_ops=10))
    @with_each_op
    def check(case):
        if check_first_root_cause_is_the_broken_node(module, case):
            found.append(case)

    check()
    assert found, f"no example exercised the mutation {mutation!r}"


@st.composite
def one_node_used_twice(draw, ops=tuple(OPS)):
    """(nodes, output, shared): a tree over leaves (every node used at most once) topped by a two-child
    node that uses the tree's root and one more node, `shared`, again: `shared` alone is used twice."""
    nodes = [{"id": f"x{k}", "op": "value", "data": draw(st.floats(0.25, 3))} for k in range(draw(st.integers(2, 5)))]
    pool = [node["id"] for node in nodes]
    used = []
    for k in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from(ops))
        if len(pool) < OPS[name].arity:
            break
        children = [pool.pop(draw(st.integers(0, len(pool) - 1))) for _ in range(OPS[name].arity)]
        node = {"id": f"n{k}", "op": name, "children": children}
        if name == "pow":
            node["exponent"] = draw(st.sampled_from([2.0, 3.0, -1.0, 0.5]))
        nodes.append(node)
        used += children
        pool.append(node["id"])
    root = nodes[-1]["id"]
    shared = draw(st.sampled_from([*used, root]))
    top = draw(st.sampled_from([name for name, op in OPS.items() if op.arity == 2]))
    nodes.append({"id": "top", "op": top, "children": [root, shared]})
    return nodes, "top", shared


@pytest.mark.slow
def test_assignment_instead_of_accumulation_is_found_at_the_node_used_twice():
    module = broken_copy(*ASSIGNMENT)
    found = []

    @SETTINGS
    @given(one_node_used_twice())
    def check(case):
        nodes, output, shared = case
        body, _ = graded(module, nodes, output)
        if body["passed"]:
            return
        first = body["root_causes"][0]
        assert (first["node"], first["kind"]) == (shared, "accumulation"), body["root_causes"]
        assert "assigns-instead-of-adding" in [c["mistake"] for c in first["candidates"]]
        found.append(case)

    check()
    assert found


@pytest.mark.slow
def test_assignment_instead_of_accumulation_on_random_graphs():
    """Wherever the first root cause is, it is a node used more than once that kept one contribution."""
    module = broken_copy(*ASSIGNMENT)
    found = []

    @SETTINGS
    @given(graphs(data=SIGNED, shuffle=False, max_ops=10))
    def check(case):
        nodes, output = case
        body, _ = graded(module, nodes, output)
        if body["passed"]:
            return
        assert all(c["kind"] == "accumulation" for c in body["root_causes"])
        assert "assigns-instead-of-adding" in [c["mistake"] for c in body["root_causes"][0]["candidates"]]
        found.append(case)

    check()
    assert found


@pytest.mark.slow
@SETTINGS
@given(graphs(), st.data())
def test_any_mismatch_has_a_root_cause_at_a_mismatched_or_unsent_field(case, data):
    """A submission with some fields perturbed: it passes exactly when no root cause is named, each root
    cause sits on a mismatched field (or, inferred, on local gradients that were not sent), children first."""
    nodes, output = case
    evaluated = reference(nodes, output)
    assume(evaluated is not None)
    output, values = evaluated
    position = {node["id"]: i for i, node in enumerate(nodes)}
    submitted = []
    for node, value in zip(nodes, values):
        entry = {"id": node["id"]}
        for field in data.draw(st.sets(st.sampled_from(["data", "grad"]))):
            entry[field] = getattr(value, field) + data.draw(st.sampled_from([0.0, 0.0, 1.0, -0.5]))
        submitted.append(entry)
    body = grade_or_reject(nodes, output, values, submitted, Tolerance())
    mismatched = {(n["id"], f) for n in body["nodes"] for f, v in n["verdict"].items() if v == "mismatch"}
    assert body["passed"] == (body["score"]["checked"] > 0 and not mismatched)
    assert (not mismatched) == (not body["root_causes"])
    assert body["score"]["checked"] - body["score"]["matched"] == len(mismatched)
    for cause in body["root_causes"]:
        if cause["submitted"] is None:
            assert cause["kind"] == "local-gradient" and (cause["node"], "local_grads") not in mismatched
        else:
            assert (cause["node"], cause["field"]) in mismatched
    causes = [(cause["node"], cause["field"]) for cause in body["root_causes"]]
    assert len(set(causes)) == len(causes)
    depends = {node["id"]: set(node.get("children", ())) for node in nodes}
    for k, (later, _) in enumerate(causes):  # no root cause is listed after one of its ancestors
        for earlier, _ in causes[:k]:
            assert later not in descendants(earlier, depends), (earlier, later)
    assert all(cause["node"] in position for cause in body["root_causes"])


def descendants(node_id, children):
    seen, stack = set(), [node_id]
    while stack:
        for child in children[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen
