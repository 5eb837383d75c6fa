"""Grading a student's `Value` class in one call, and a student's Value objects as a submission.

`grade_class` builds each graph with the student's own operators (`a + b`, `a / b`, `a ** 2`,
`a.log()`, ...), runs the student's own `backward` from the output, collects what the class computed
and grades it on the service (POST /v1/grade/batch). It reads either style of Value: the reference
class's (`_children`, `_local_grads`), whose local gradients are collected too, or micrograd's (`_prev`,
`_op`, `_backward`), which records none, so that only data and grads are graded.

The local gradient the service expects for a listed child is what the node's backward passes to that
child per unit of the node's grad. The reference class builds `a - b` as `a + (b * -1)` and `a / b`
as `a * b**-1`: the node's own `_local_grads` belong to those hidden Values, and sending them would
fail a correct student. `local_gradients` walks from the node through the student's own hidden Values
to each child and multiplies the local gradients on the way, as the student's backward does.

A leaf marked `"constant": true` is a plain number of the student's program, not a Value: `sub(k, x)`
is built as `2.0 - x`, so that the class's reflected and mixed operators (`__rsub__`, `__rtruediv__`,
`__rmul__`, `__radd__`, and `x + 2.0` wrapping the number) are graded too. The service has no such
mark: `for_service` strips it, and the service takes the number as the leaf `Value(2.0)` the reference
class wraps it in, which gives every other node the same data and grad, bit for bit (IEEE addition and
multiplication commute; the reference class's `2.0 - x` is `2.0 + (-x)`, its `2.0 / x` is `2.0 * x**-1`).
A constant has no Value, so nothing is submitted for it, and no local gradients for a node that uses
one (the contract takes one per child, and the student's Values hold none for a plain number).
"""

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valuegraph.problems import ProblemError

if TYPE_CHECKING:
    from valuegraph.client import Client

#: What each grading mode collects from the student's class and submits.
MODES: dict[str, tuple[str, ...]] = {
    "full": ("data", "grad", "local_grads"),
    "data-and-grads": ("data", "grad"),
    "grads": ("grad",),
}

#: How a student's class computes each op of the API: with its own operators, as a student writes it.
OPERATIONS: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "mul": operator.mul,
    "sub": operator.sub,
    "div": operator.truediv,
    "neg": operator.neg,
    "pow": operator.pow,
    "log": lambda a: a.log(),
    "exp": lambda a: a.exp(),
    "relu": lambda a: a.relu(),
}
ARITY = {"add": 2, "mul": 2, "sub": 2, "div": 2, "neg": 1, "pow": 1, "log": 1, "exp": 1, "relu": 1}

#: How far below a node its hidden Values are followed to reach a child (the reference class needs 2).
MAX_HIDDEN_DEPTH = 8
#: How many hidden Values are searched to find which of a Value's children leads to a listed child.
MAX_HIDDEN_SEARCH = 64

#: What a student's code may raise that is that graph's error: any exception, and sys.exit (a
#: student's exit is never the grader's). KeyboardInterrupt is left to stop the grader.
STUDENT_EXCEPTIONS = (Exception, SystemExit)

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


#: Why a graph was not graded (GraphResult.error_kind): the student's code failed on it, or the grader could
#: not grade it. Every one counts in GradeReport.counts["not_graded"] and scores nothing.
ERROR_KINDS = {
    "student-error": "the class raised (sys.exit included) or computed something that is not a number",
    "timed-out": "the class took longer than the time allowed for one graph",
    "crashed": "the process running the class ended (os._exit, a crash, the memory limit) or spoke out of turn",
    "not-run": "the time allowed for all of the class's graphs ran out before this one",
    "not-loaded": "the student's module could not be imported, or has no such class",
    "not-built": "the graph cannot be built with this class (a recorded node it cannot take, a malformed graph)",
    "refused": "the service refused the graph",
}


class ClassNotFound(LookupError):
    """The student's module does not exist, or has no such class: a mistake in the grader's command,
    not the student's (a module that exists but raises when imported is the student's)."""


class NotGraded(Exception):
    """A graph that could not be graded; `kind` says whose part failed."""

    kind = "not-graded"


class StudentError(NotGraded):
    """The student's class raised, or computed something that is not a number."""

    kind = "student-error"


class GraphNotBuilt(NotGraded):
    """The graph cannot be built with this class (a recorded node it cannot take, a malformed graph)."""

    kind = "not-built"


def is_constant(node: Mapping) -> bool:
    """The node is a plain number of the student's program (`"constant": true`), not a Value."""
    return node.get("constant") is True


def for_service(body: Any) -> Any:
    """`body` (a graph, grade or render request) as the service takes it: without the `constant` mark of
    its nodes, which the service's schemas do not know; the number is a leaf there. `body` itself when no
    node has the mark."""
    nodes = body.get("nodes") if isinstance(body, Mapping) else None
    if not isinstance(nodes, list) or not any(isinstance(node, Mapping) and "constant" in node for node in nodes):
        return body
    unmarked = [
        {key: value for key, value in node.items() if key != "constant"}
        if isinstance(node, Mapping) and "constant" in node
        else node
        for node in nodes
    ]
    return {**body, "nodes": unmarked}


@dataclass
class GraphResult:
    """One graph's grade: `passed`, the service's `score` and `root_causes` (the first is the first
    thing to fix), the rules the graph `exercised` (where the service says), and the whole `answer`.
    A graph that could not be graded has `error` (why, in words) and `error_kind` (ERROR_KINDS).
    `output` is what the student's code printed while this graph was built and differentiated, when it
    ran in a child process (valuegraph.isolation) and printed anything: its first characters."""

    name: str
    passed: bool
    score: dict | None = None
    root_causes: list[dict] = field(default_factory=list)
    exercised: list[str] | None = None
    error: str | None = None
    error_kind: str | None = None
    answer: dict | None = None
    output: str | None = None

    @property
    def message(self) -> str:
        """What to tell the student first: the first root cause's message, or why it was not graded."""
        if self.error is not None:
            return self.error
        if self.root_causes:
            return self.root_causes[0].get("message", "")
        if not self.passed:
            checked = (self.score or {}).get("checked")
            return "Nothing was checked." if checked == 0 else "The submission does not match."
        return ""

    def to_dict(self) -> dict:
        """The result as JSON-ready data, under the names of its attributes (the service's whole answer
        under "answer")."""
        return {
            "name": self.name,
            "passed": self.passed,
            "score": self.score,
            "root_causes": self.root_causes,
            "exercised": self.exercised,
            "message": self.message,
            "error": self.error,
            "error_kind": self.error_kind,
            "answer": self.answer,
            "output": self.output,
        }


@dataclass
class GradeReport:
    """Every graph's GraphResult, in the order given, and what the class was graded on."""

    results: list[GraphResult]
    mode: str = "full"
    #: The fields submitted: MODES[mode], less local_grads when the class records none.
    fields: tuple[str, ...] = MODES["full"]

    @property
    def passed(self) -> bool:
        """Every graph passed (and there was at least one)."""
        return bool(self.results) and all(result.passed for result in self.results)

    @property
    def counts(self) -> dict[str, int]:
        """graphs; passed; failed (graded, and something mismatched); not_graded (see GraphResult.error)."""
        not_graded = sum(result.error is not None for result in self.results)
        passed = sum(result.passed for result in self.results)
        return {
            "graphs": len(self.results),
            "passed": passed,
            "failed": len(self.results) - passed - not_graded,
            "not_graded": not_graded,
        }

    @property
    def failures(self) -> list[GraphResult]:
        """The graphs that did not pass, in order."""
        return [result for result in self.results if not result.passed]

    def to_dict(self) -> dict:
        """The report as JSON-ready data, under the names of its attributes."""
        return {
            "passed": self.passed,
            "counts": self.counts,
            "mode": self.mode,
            "fields": list(self.fields),
            "results": [result.to_dict() for result in self.results],
        }


def grade_class(
    client: "Client",
    value_class: Callable[..., Any],
    graphs: Mapping[str, Mapping] | Iterable[Mapping],
    mode: str = "full",
    tolerance: Mapping | None = None,
    required: Sequence[str] | None = None,
) -> GradeReport:
    """Grade `value_class` on `graphs` (graph requests as the API takes them; a mapping names them,
    else they are "graph 1", "graph 2", ...), in this process. Each graph is built with the class's
    own operators, differentiated by its own backward, and what it computed (`mode`: "full",
    "data-and-grads" or "grads", see MODES) is graded on the service in batches (the client's
    batch_graphs and batch_nodes). A graph the class raises on (sys.exit included) or computes no
    number for, or cannot build, is not graded, with the reason; the other graphs are graded all the
    same. The student's code runs here, unguarded: `valuegraph.isolation.grade_isolated` runs it in
    a child process, within time and memory limits."""
    fields = fields_of(mode)
    named = named_graphs(graphs)
    outcomes: list[list[dict] | GraphResult] = []
    for name, graph in named:
        try:
            outcomes.append(computed(value_class, graph, fields))
        except NotGraded as error:
            outcomes.append(GraphResult(name, False, error=str(error), error_kind=error.kind))
    return graded(client, named, outcomes, mode, tolerance, required)


def fields_of(mode: str) -> tuple[str, ...]:
    """MODES[mode], or ValueError naming the modes."""
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; the modes are {', '.join(MODES)}.")
    return MODES[mode]


def named_graphs(graphs: Mapping[str, Mapping] | Iterable[Mapping]) -> list[tuple[str, Mapping]]:
    """The graphs with their names: a mapping's keys, else "graph 1", "graph 2", ..."""
    if isinstance(graphs, Mapping):
        return list(graphs.items())
    return [(f"graph {i + 1}", graph) for i, graph in enumerate(graphs)]


def computed(value_class: Callable[..., Any], graph: Mapping, fields: Sequence[str]) -> list[dict]:
    """What `value_class` computes on `graph`, as `submitted`: the graph built with its operators, its
    backward run from the output, `fields` collected. Raises NotGraded saying why it cannot be."""
    values, output = build(value_class, graph)
    run_backward(values[output])
    nodes = graph["nodes"]
    try:
        return submission([values[node["id"]] for node in nodes], nodes, fields)
    except NotGraded:
        raise
    except STUDENT_EXCEPTIONS as error:
        raise StudentError(f"Reading what the class computed raised {_exception(error)}") from error


def graded(
    client: "Client",
    named: Sequence[tuple[str, Mapping]],
    outcomes: Sequence[list[dict] | GraphResult],
    mode: str,
    tolerance: Mapping | None = None,
    required: Sequence[str] | None = None,
) -> GradeReport:
    """The report of `named` graphs, given each one's outcome: what the class submitted, graded here on
    the service in batches, or the GraphResult of a graph that could not be graded."""
    results: list[GraphResult | None] = [None] * len(named)
    pending: list[tuple[int, dict]] = []
    for i, ((_, graph), outcome) in enumerate(zip(named, outcomes)):
        if isinstance(outcome, GraphResult):
            results[i] = outcome
            continue
        body = {**for_service(graph), "submitted": outcome}
        if tolerance is not None:
            body["tolerance"] = dict(tolerance)
        if required is not None:
            body["required"] = _required(graph["nodes"], outcome, required)
        pending.append((i, body))
    answers = client.grade_batch(body for _, body in pending)["results"] if pending else []
    for (i, body), answer in zip(pending, answers):
        results[i] = _result(named[i][0], answer, body["submitted"])
    records_local_grads = any("local_grads" in entry for _, body in pending for entry in body["submitted"])
    fields = tuple(name for name in MODES[mode] if name != "local_grads" or records_local_grads)
    return GradeReport([result for result in results if result is not None], mode, fields)


def _required(nodes: Sequence[Mapping], submitted: Sequence[Mapping], required: Sequence[str]) -> list[str]:
    """`required` as sent with a graph. The service requires a field of every node; a constant has no
    Value and a node using one no local gradients that could be sent, so in a graph with constants a
    field is sent only when a node it applies to lacks it: the graph then fails as it should, and
    otherwise no constant fails it."""
    constants = {node["id"] for node in nodes if is_constant(node)}
    if not constants:
        return list(required)
    entries = {entry["id"]: entry for entry in submitted}

    def lacks(node: Mapping, name: str) -> bool:
        if name == "local_grads":
            children = node.get("children") or ()
            if not children or any(child in constants for child in children):
                return False
        return name not in entries.get(node["id"], {})

    return [name for name in required if any(lacks(node, name) for node in nodes if node["id"] not in constants)]


def _result(name: str, answer: Mapping, submitted: list[dict]) -> GraphResult:
    if answer.get("status") == 200:
        grade = answer["grade"]
        return GraphResult(
            name,
            bool(grade["passed"]),
            score=grade.get("score"),
            root_causes=grade.get("root_causes", []),
            exercised=grade.get("exercised"),
            answer=grade,
        )
    problem = answer.get("problem") if isinstance(answer.get("problem"), dict) else {}
    refusal = ProblemError(
        answer.get("status", 0), problem.get("title", ""), problem.get("detail", ""), problem.get("errors"), problem
    )
    lines = [f"The service refused this graph: {refusal.describe()}"]
    non_finite = [
        f"{key} of node {entry['id']!r}"
        for entry in submitted
        for key in ("data", "grad", "local_grads")
        if any(isinstance(number, str) for number in _as_list(entry.get(key)))
    ]
    if non_finite:
        lines.append(f"The class computed a number that is not finite: the {', the '.join(non_finite[:5])}.")
    return GraphResult(name, False, error="\n".join(lines), error_kind="refused", answer=dict(answer))


def _as_list(field: Any) -> list:
    return field if isinstance(field, list) else [field]


# Building a graph with the student's class.


def build(value_class: Callable[..., Any], graph: Mapping) -> tuple[dict[Any, Any], Any]:
    """The student's Value of every node of `graph` (by id), built with the class's own operators in
    dependency order, and the output's id. A leaf is `value_class(data)`, a constant the number itself
    (`float(data)`); a node recorded by another program (children and local_grads, no op) is
    `value_class(data, children, local_grads)`, where the class takes that. Raises StudentError when
    the class raises, GraphNotBuilt when the graph cannot be built (a node whose children are all
    constants, which float arithmetic would compute, among them)."""
    nodes = graph.get("nodes") if isinstance(graph, Mapping) else None
    if not isinstance(nodes, list) or not all(isinstance(node, Mapping) and "id" in node for node in nodes):
        raise GraphNotBuilt("The graph is not a graph request: it needs a list of nodes, each with an id.")
    by_id = {node["id"]: node for node in nodes}
    if len(by_id) != len(nodes):
        raise GraphNotBuilt("Two nodes of the graph have the same id.")
    values: dict[Any, Any] = {}
    for node_id in dependency_order(nodes, by_id):
        node = by_id[node_id]
        _check_constants(node, by_id)
        children = [values[child] for child in node.get("children", ())]
        try:
            values[node_id] = _build_node(value_class, node, children)
        except NotGraded:
            raise
        except STUDENT_EXCEPTIONS as error:
            raise StudentError(f"Building node {node_id!r} ({_how(node)}) raised {_exception(error)}") from error
    return values, _output(graph, nodes, by_id)


def run_backward(output: Any) -> None:
    """The student's own backward pass from `output`; StudentError when it raises."""
    try:
        output.backward()
    except STUDENT_EXCEPTIONS as error:
        raise StudentError(f"backward() raised {_exception(error)}") from error


def dependency_order(nodes: Sequence[Mapping], by_id: Mapping[Any, Mapping]) -> list[Any]:
    """The ids, each after its children's (an iterative depth-first post-order: any depth works)."""
    order, state = [], {}  # state: 1 while on the path, 2 when placed
    for node in nodes:
        if node["id"] in state:
            continue
        stack = [(node["id"], iter(node.get("children", ())))]
        state[node["id"]] = 1
        while stack:
            node_id, pending = stack[-1]
            for child in pending:
                if child not in by_id:
                    raise GraphNotBuilt(f"Node {node_id!r} has the child {child!r}, which is no node of the graph.")
                if state.get(child) == 1:
                    raise GraphNotBuilt(f"The graph has a cycle through node {child!r}.")
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(by_id[child].get("children", ()))))
                    break
            else:
                stack.pop()
                state[node_id] = 2
                order.append(node_id)
    return order


def _build_node(value_class: Callable[..., Any], node: Mapping, children: list[Any]) -> Any:
    _check_shape(node, len(children))
    op = node.get("op", "value")
    if is_constant(node):
        return float(node["data"])
    if op == "value" and not children and "local_grads" not in node:
        return value_class(float(node["data"]))
    if op == "value":
        return _recorded(value_class, node, children)
    if op == "pow":
        return children[0] ** node["exponent"]
    return OPERATIONS[op](*children)


def _check_shape(node: Mapping, arity: int) -> None:
    """What building needs of a node (the service checks the rest): a number for a leaf, a known op
    with as many children as it takes, pow's exponent."""
    op, node_id = node.get("op", "value"), node["id"]
    if op == "value":
        if not _is_number(node.get("data")):
            raise GraphNotBuilt(f"Node {node_id!r} has no number as its data.")
        if len(node.get("local_grads", ())) != arity:
            raise GraphNotBuilt(
                f"Node {node_id!r} has {arity} children and {len(node.get('local_grads', ()))} local_grads."
            )
    elif op not in OPERATIONS:
        raise GraphNotBuilt(f"Node {node_id!r} has the op {op!r}, which is not one of {', '.join(OPERATIONS)}.")
    elif arity != ARITY[op]:
        raise GraphNotBuilt(f"Node {node_id!r}: {op} takes {ARITY[op]} children, not {arity}.")
    elif op == "pow" and not _is_number(node.get("exponent")):
        raise GraphNotBuilt(f"Node {node_id!r}: pow needs a number as its exponent.")


def _check_constants(node: Mapping, by_id: Mapping[Any, Mapping]) -> None:
    """A constant is a leaf; a node may take one as one operand of add, sub, mul or div, never as all of
    its children (Python would compute it, not the class) nor as a recorded node's child (a Value's)."""
    node_id, children = node["id"], node.get("children", ())
    if "constant" in node:
        if type(node["constant"]) is not bool:
            raise GraphNotBuilt(f"Node {node_id!r}: constant must be true or false.")
        if node["constant"] and (node.get("op", "value") != "value" or "children" in node or "local_grads" in node):
            raise GraphNotBuilt(f"Node {node_id!r} is marked constant, and only a leaf (an id and its data) can be.")
    constants = [child for child in children if is_constant(by_id[child])]
    if not constants:
        return
    if node.get("op", "value") == "value":
        raise GraphNotBuilt(
            f"Node {node_id!r} is recorded with its children, and its child {constants[0]!r} is a plain number "
            "(constant): a recorded node's children are Values."
        )
    if len(constants) == len(children):
        raise GraphNotBuilt(
            f"Node {node_id!r} ({_how(node)}) has only plain numbers (constant) as its children: Python's float "
            "arithmetic would compute it, not the class, so this graph cannot be built."
        )


def _is_number(thing: Any) -> bool:
    return type(thing) in (int, float) and math.isfinite(thing)


def _recorded(value_class: Callable[..., Any], node: Mapping, children: list[Any]) -> Any:
    local_grads = tuple(float(grad) for grad in node.get("local_grads", ()))
    cannot = GraphNotBuilt(
        f"Node {node['id']!r} is recorded with its children and local_grads, and {_name(value_class)} does not take "
        "Value(data, children, local_grads), so this graph cannot be built with it."
    )
    try:
        value = value_class(float(node["data"]), tuple(children), local_grads)
    except TypeError:
        raise cannot from None
    recorded_children = tuple(getattr(value, "_children", ()))
    if len(recorded_children) != len(children) or any(a is not b for a, b in zip(recorded_children, children)):
        raise cannot
    if tuple(getattr(value, "_local_grads", ())) != local_grads:
        raise cannot
    return value


def _output(graph: Mapping, nodes: Sequence[Mapping], by_id: Mapping[Any, Mapping]) -> Any:
    if graph.get("output") is not None:
        if graph["output"] not in by_id:
            raise GraphNotBuilt(f"The output {graph['output']!r} is no node of the graph.")
        output = graph["output"]
    else:
        used = {child for node in nodes for child in node.get("children", ())}
        sinks = [node["id"] for node in nodes if node["id"] not in used]
        if len(sinks) != 1:
            raise GraphNotBuilt(f"The graph has {len(sinks)} nodes that no other node uses; name its output.")
        output = sinks[0]
    if is_constant(by_id[output]):
        raise GraphNotBuilt(f"The output {output!r} is a plain number (constant): it has no backward.")
    return output


# A student's Values as a submission.


def submission(
    values: Mapping[Any, Any] | Sequence[Any],
    nodes: Sequence[Mapping] | None = None,
    fields: Iterable[str] = MODES["full"],
) -> list[dict]:
    """`submitted` for POST /v1/grade from a student's Value objects, after the student's backward:
    `values` maps each node's id to its Value, or lists the Values in the order of `nodes` (the
    request's nodes; the entries come in their order). `fields` picks among data, grad and local_grads; local gradients are sent for
    the nodes with children, when `nodes` is given and the class records them (`_children` and
    `_local_grads`), per unit of the node's grad through the student's own hidden Values (see
    `local_gradients`). A node of `nodes` marked constant (a plain number, not a Value) gets no entry,
    and a node using one no local gradients. A number that is not finite is sent as the string "NaN",
    "Infinity" or "-Infinity"; something that is not a number raises StudentError."""
    fields = tuple(fields)
    constants = {node["id"] for node in nodes if is_constant(node)} if nodes is not None else set()
    if isinstance(values, Mapping):
        if nodes is None:
            ids = list(values)
        else:
            listed = {node["id"] for node in nodes}
            stranger = next((node_id for node_id in values if node_id not in listed), None)
            if stranger is not None:
                raise ValueError(f"{stranger!r} is no node of `nodes`.")
            nodes = [node for node in nodes if node["id"] in values]
            ids = [node["id"] for node in nodes]
        objects = [values[node_id] for node_id in ids]
    else:
        if nodes is None or len(nodes) != len(values):
            raise ValueError("A list of Values needs the request's nodes, one Value per node, in the same order.")
        ids = [node["id"] for node in nodes]
        objects = list(values)
    by_id = dict(zip(ids, objects))
    graph_values = {id(value) for value in objects}
    submitted = []
    for k, (node_id, value) in enumerate(zip(ids, objects)):
        if node_id in constants:
            continue
        entry: dict[str, Any] = {"id": node_id}
        for name in ("data", "grad"):
            if name in fields:
                entry[name] = _number(getattr(value, name, None), node_id, name)
        children = nodes[k].get("children") if nodes is not None else None
        if (
            "local_grads" in fields
            and children
            and all(child in by_id and child not in constants for child in children)
        ):
            grads = local_gradients(value, [by_id[child] for child in children], graph_values)
            if grads is not None:
                entry["local_grads"] = [_number(grad, node_id, "local gradient") for grad in grads]
        submitted.append(entry)
    return submitted


def local_gradients(value: Any, children: Sequence[Any], graph_values: set[int] | None = None) -> list[Any] | None:
    """What `value`'s backward passes to each of its listed `children` per unit of its grad, through
    the hidden Values its op built: the product of the `_local_grads` along the path from `value` to
    the child, in the order the backward multiplies them. The path to the k-th child starts at the
    k-th of `value._children` when that leads to it, else at the one child that does, and runs
    through hidden Values only (`graph_values` holds the id() of every graph node's Value).

    None when the class records no local gradients, when a path is not one clear line, and when the
    same Value is listed twice and either its uses are not each at their own place among
    `value._children` or their local gradients differ (`x - x`: nothing in the student's Values says
    which of its two uses is the first operand, and with `-x` detached from x only one use reaches x at
    all; none is sent rather than a guess)."""
    graph_values = graph_values if graph_values is not None else {id(child) for child in children} | {id(value)}
    grads = []
    for position, child in enumerate(children):
        repeated = sum(other is child for other in children) > 1
        grad = _carried(value, position, child, graph_values, own_place_only=repeated)
        if grad is None:
            return None
        grads.append(grad)
    for k, child in enumerate(children):
        if any(other is child and grads[j] != grads[k] for j, other in enumerate(children[:k])):
            return None
    return grads


def _carried(value: Any, position: int, child: Any, graph_values: set[int], own_place_only: bool = False) -> Any:
    """The local gradient carried from `value` to the child at `position`; with `own_place_only` (a child
    listed more than once) only along the path that starts at that position, never another use's."""
    grad: Any = 1
    holder = value
    for depth in range(MAX_HIDDEN_DEPTH):
        try:
            below, local = list(holder._children), list(holder._local_grads)
        except (AttributeError, TypeError):
            return None
        if len(below) != len(local):
            return None
        if depth == 0 and position < len(below) and _leads_to(below[position], child, graph_values):
            k = position
        elif depth == 0 and own_place_only:
            return None
        else:
            leading = [k for k, hidden in enumerate(below) if _leads_to(hidden, child, graph_values)]
            if len(leading) != 1:
                return None
            (k,) = leading
        try:
            grad = local[k] * grad
        except Exception:
            return None
        holder = below[k]
        if holder is child:
            return grad
    return None


def _leads_to(start: Any, target: Any, graph_values: set[int]) -> bool:
    """`start` is `target`, or a hidden Value from which `target` is reached through hidden Values."""
    stack, seen = [start], set()
    while stack and len(seen) < MAX_HIDDEN_SEARCH:
        value = stack.pop()
        if value is target:
            return True
        if id(value) in graph_values or id(value) in seen:
            continue
        seen.add(id(value))
        stack.extend(getattr(value, "_children", ()))
    return False


def _number(number: Any, node_id: Any, what: str) -> float | str:
    try:
        if isinstance(number, str):
            raise TypeError
        as_float = float(number)
    except (TypeError, ValueError, OverflowError):
        raise StudentError(f"The {what} of node {node_id!r} is {_shown(number)}, not a number.") from None
    if math.isfinite(as_float):
        return as_float
    return "NaN" if math.isnan(as_float) else _NON_FINITE[as_float]


def _shown(thing: Any) -> str:
    text = repr(thing)
    return text if len(text) <= 80 else text[:77] + "..."


def _exception(error: BaseException) -> str:
    try:
        text = str(error)
    except Exception:  # the student's own __str__
        text = ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _name(value_class: Any) -> str:
    return getattr(value_class, "__name__", repr(value_class))


def _how(node: Mapping) -> str:
    op = node.get("op", "value")
    children = ", ".join(child if isinstance(child, str) else repr(child) for child in node.get("children", ()))
    if is_constant(node):
        return f"a plain number, {node.get('data')!r}"
    if op == "value":
        return "a recorded node" if "children" in node else f"a leaf, Value({node.get('data')!r})"
    if op == "pow":
        return f"pow({children}, {node.get('exponent')!r})"
    return f"{op}({children})"
