"""Grading students' classes as a course's pipeline would (tests/students.py): on random graphs, every
broken class is flagged, the first root cause names the node and kind where its mistake shows, and the
message names the real mistake; with grads only, the real mistake is named or listed among the
candidates, never a wrong one alone; correct classes written differently pass every graph at the
default tolerance."""

import math

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from service.core import graphs as graph_module
from service.core.grading import grade
from tests.strategies import graphs
from tests.support import grade_or_reject
from tools import students

#: Leaves away from 0, both signs (log needs positive inputs, relu's mistakes negative ones), and 0.
DATA = st.one_of(st.floats(0.25, 3), st.floats(-3, -0.25), st.sampled_from([0.0, 0.5, -1.0, 2.0]))
#: Exponents for which every base is defined.
EXPONENTS = st.sampled_from([2.0, 3.0, -1.0, -2.0, 1.0])
#: Graphs of both signs, and graphs of positive leaves, on which log is mostly defined; differentiated
#: from their last node, which uses most of the others.
GRAPHS = st.one_of(
    graphs(data=DATA, exponents=EXPONENTS, shuffle=False, max_ops=10, recorded=False),
    graphs(data=st.floats(0.25, 3), exponents=EXPONENTS, shuffle=False, max_ops=10, recorded=False),
).map(lambda case: (case[0], case[0][-1]["id"]))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
MODES = {
    "full": ("data", "grad", "local_grads"),
    "grads only": ("grad",),
    "data and grads": ("data", "grad"),
}


@st.composite
def relu_graphs(draw):
    leaves = draw(st.lists(st.sampled_from(students.RELU_LEAVES), min_size=2, max_size=5))
    return students.relu_graph(leaves, draw(st.sampled_from(students.RELU_WEIGHTS)))


def graded(module, nodes, output, fields, passes=1):
    evaluated = students.reference(nodes, output)
    assume(evaluated is not None)
    submitted = students.submission(module, nodes, output, fields, passes)
    assume(submitted is not None)
    output, values = evaluated
    return grade_or_reject(nodes, output, values, submitted), submitted, values


def mistakes_of(cause):
    return [candidate["mistake"] for candidate in cause["candidates"]]


def check(module, keys, case, mode, passes=1):
    """One graph graded: whether the student's numbers differ from the reference, and if so, the
    root-cause checks of the mode. Returns True when the mistake showed."""
    nodes, output = case
    fields = MODES[mode]
    body, submitted, values = graded(module, nodes, output, fields, passes)
    assume(not students.relu_of_a_computed_zero(nodes, values))
    shows = students.shows_a_difference(nodes, values, submitted)
    if not shows:
        assert body["passed"], body["root_causes"]
        return False
    assert not body["passed"] and body["root_causes"]
    first = body["root_causes"][0]
    named = mistakes_of(first)
    if mode == "full":
        full = students.submission(module, nodes, output, MODES["full"], passes)
        assert (first["node"], first["kind"]) == students.mistake_site(module, nodes, output, full, values, passes), (
            first
        )
        assert set(named) & keys, first["message"]
    else:
        assert set(named) & keys, first["message"]
    if len(named) == 1:
        assert named[0] in keys, first["message"]
    return True


def one_op_used(name, *children, **extra):
    """One op over a negative and a positive leaf, its result used once more: each op's mistakes show
    there, whatever else hypothesis draws."""
    nodes = [{"id": "x", "op": "value", "data": -1.5}, {"id": "y", "op": "value", "data": 2.0}]
    nodes += [
        {"id": "n", "op": name, "children": list(children), **extra},
        {"id": "out", "op": "mul", "children": ["n", "y"]},
    ]
    return nodes, "out"


def with_each_op(test):
    """The property test run first on a small graph of each op, then on what hypothesis draws."""
    for case in (
        one_op_used("log", "y"),
        one_op_used("relu", "x"),
        one_op_used("mul", "x", "y"),
        one_op_used("pow", "y", exponent=3.0),
        one_op_used("exp", "x"),
        one_op_used("sub", "x", "y"),
        one_op_used("div", "x", "y"),
    ):
        test = example(case)(test)
    return test


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("mistake", list(students.MISTAKES))
def test_a_broken_class_is_flagged_and_its_mistake_named(mistake, mode):
    edits, keys = students.MISTAKES[mistake]
    module = students.student(edits)
    showed = []

    @SETTINGS
    @given(st.one_of(GRAPHS, relu_graphs()))
    @with_each_op
    def run(case):
        if check(module, keys, case, mode):
            showed.append(case)

    run()
    assert showed, f"no graph showed the mistake {mistake!r}"


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_grads_not_reset_between_two_passes_are_named(mode):
    keys, passes = students.LOOP_MISTAKES["grads not reset between two passes"]
    module = students.student([])
    showed = []

    @SETTINGS
    @given(GRAPHS)
    def run(case):
        if check(module, keys, case, mode, passes):
            showed.append(case)

    run()
    assert showed


@st.composite
def cancelling_graphs(draw):
    """Graphs whose grads are mathematically 0 somewhere: x / x, a * b / a, and a softmax with a shift
    by its largest input, which its grads must not depend on."""
    xs = [draw(st.floats(-3, 3)) for _ in range(draw(st.integers(2, 5)))]
    nodes = [{"id": f"x{k}", "data": x} for k, x in enumerate(xs)]
    top = max(range(len(xs)), key=xs.__getitem__)
    for k in range(len(xs)):
        nodes += [
            {"id": f"d{k}", "op": "sub", "children": [f"x{k}", f"x{top}"]},
            {"id": f"e{k}", "op": "exp", "children": [f"d{k}"]},
        ]
    nodes.append({"id": "s1", "op": "add", "children": ["e0", "e1"]})
    for k in range(2, len(xs)):
        nodes.append({"id": f"s{k}", "op": "add", "children": [f"s{k - 1}", f"e{k}"]})
    pick = draw(st.integers(0, len(xs) - 1))
    nodes += [
        {"id": "p", "op": "div", "children": [f"e{pick}", f"s{len(xs) - 1}"]},
        {"id": "l", "op": "log", "children": ["p"]},
        {"id": "q", "op": "div", "children": ["x0", "x0"]} if xs[0] else {"id": "q", "data": 1.0},
        {"id": "r", "op": "mul", "children": ["x1", "q"]},
        {"id": "t", "op": "div", "children": ["r", "x1"]} if xs[1] else {"id": "t", "data": 1.0},
        {"id": "loss", "op": "add", "children": ["l", "t"]},
    ]
    return nodes, "loss"


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("variant", list(students.CORRECT))
def test_a_correct_class_written_differently_passes_every_graph(variant, mode):
    module = students.student(students.CORRECT[variant])

    @SETTINGS
    @given(st.one_of(graphs(shuffle=False, max_ops=12, recorded=False), cancelling_graphs()))
    def run(case):
        nodes, output = case
        body, _, _ = graded(module, nodes, output, MODES[mode])
        assert body["passed"], body["root_causes"]

    run()


def test_a_softmax_shift_gets_grads_of_rounding_noise_and_a_correct_class_passes():
    """x1 is both an input and the shift: its grad is mathematically its softmax's own share, the shift's
    part cancelling to rounding noise, which no relative tolerance accepts around 0 but the default does."""
    xs = [0.3, 1.7, -0.4]
    nodes = [{"id": f"x{k}", "data": x} for k, x in enumerate(xs)]
    for k in range(3):
        nodes += [
            {"id": f"d{k}", "op": "sub", "children": [f"x{k}", "x1"]},
            {"id": f"e{k}", "op": "exp", "children": [f"d{k}"]},
        ]
    nodes += [
        {"id": "s1", "op": "add", "children": ["e0", "e1"]},
        {"id": "s2", "op": "add", "children": ["s1", "e2"]},
        {"id": "p", "op": "div", "children": ["e0", "s2"]},
        {"id": "l", "op": "log", "children": ["p"]},
    ]
    output, values = graph_module.evaluate(nodes, "l")
    share = math.exp(1.7 - 1.7) / sum(math.exp(x - 1.7) for x in xs)
    assert abs(values[1].grad + share) < 1e-12  # d log softmax_0 / d x1 = -softmax_1
    for variant in students.CORRECT:
        submitted = students.submission(students.student(students.CORRECT[variant]), nodes, "l", ("grad",))
        assert grade(nodes, output, values, submitted)["passed"], variant


def softmax_graph(xs, shift):
    nodes = [{"id": f"x{k}", "data": x} for k, x in enumerate(xs)]
    for k in range(len(xs)):
        nodes += [
            {"id": f"d{k}", "op": "sub", "children": [f"x{k}", f"x{shift}"]},
            {"id": f"e{k}", "op": "exp", "children": [f"d{k}"]},
        ]
    nodes += [
        {"id": "s1", "op": "add", "children": ["e0", "e1"]},
        {"id": "s2", "op": "add", "children": ["s1", "e2"]},
        {"id": "p", "op": "div", "children": ["e0", "s2"]},
        {"id": "l", "op": "log", "children": ["p"]},
    ]
    return nodes


@pytest.mark.parametrize("mode", list(MODES))
def test_a_mistake_outside_the_catalogue_is_not_named_where_a_known_one_coincides_with_it(mode):
    """exp's derivative written `exp(x) * x` is no known mistake, but at x = 0 (a softmax's shifted
    largest input) it gives what `exp-derivative-of-input` gives: named there alone, it would send the
    student to the wrong fix, though the other exps of the same graph show it is not that."""
    student = students.student([("(math.exp(self.data),))", "(math.exp(self.data) * self.data,))")])
    nodes = softmax_graph([0.3, 1.7, -0.4], shift=1)
    output, values = graph_module.evaluate(nodes, "l")
    body = grade(nodes, output, values, students.submission(student, nodes, "l", MODES[mode]))
    assert not body["passed"]
    named = [[c["mistake"] for c in cause["candidates"]] for cause in body["root_causes"]]
    assert ["exp-derivative-of-input"] not in named, body["root_causes"]


def test_subnormal_grads_of_a_class_that_divides_at_once_pass():
    """Next to zero a rounding error is absolute, not relative: a quotient scaled by a subnormal rounds
    differently when div is computed at once than as a * b**-1, and a correct class still passes."""
    nodes = [
        {"id": "x", "data": 2.756},
        {"id": "b", "data": 0.733},
        {"id": "s", "data": 3e-318},
        {"id": "q", "op": "div", "children": ["x", "b"]},
        {"id": "o", "op": "mul", "children": ["q", "s"]},
    ]
    output, values = graph_module.evaluate(nodes, "o")
    module = students.student(students.CORRECT["sub and div computed at once"])
    submitted = students.submission(module, nodes, "o", ("data", "grad"))
    assert submitted != students.submission(students.student([]), nodes, "o", ("data", "grad"))
    assert grade(nodes, output, values, submitted)["passed"]
    scaled = [dict(entry, grad=2 * entry["grad"]) if entry["id"] == "x" else entry for entry in submitted]
    assert not grade(nodes, output, values, scaled)["passed"]
