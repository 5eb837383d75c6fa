"""From a validated node list to evaluated Values: build each node's Value after its children (the
forward pass), then run the engine's backward pass from the output node.

Everything wrong with a graph that the schemas cannot see (ids, cycles, the choice of output,
numbers that leave the finite doubles) is found here and raised as a GraphError.
"""

import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.core.engine import Value, propagate, topological_order
from service.core.ops import OPS
from service.core.record import phase
from service.core.traversal import CHECKPOINT_EVERY, Checkpoint, post_order

NodeId = int | str

#: How many faults one GraphError lists; the rest are counted, not found one by one.
MAX_FAULTS = 100


@dataclass(frozen=True)
class Fault:
    """One thing wrong with a graph: where (the node's position and id, the field) and why."""

    message: str
    index: int | None = None
    node: NodeId | None = None
    field: str | None = None
    op: str | None = None
    inputs: list[float] | None = None
    cycle: list[NodeId] | None = None


class GraphError(Exception):
    """The graph cannot be evaluated. `kind` is "invalid-graph" or "numeric-error"; `faults` lists at
    most MAX_FAULTS of them and `more` counts those left out."""

    def __init__(self, kind: str, detail: str, faults: list[Fault], more: int = 0):
        super().__init__(detail)
        self.kind, self.detail, self.faults, self.more = kind, detail, faults, more


def evaluate(
    nodes: list[dict], output: NodeId | None = None, checkpoint: Checkpoint | None = None
) -> tuple[NodeId, list[Value]]:
    """Evaluate a schema-valid node list: returns the output's id and one Value per node, in order.

    Duplicate ids are reported before anything else, whatever the order of the nodes. `checkpoint`,
    when given, is called every few thousand nodes of every pass (a deadline raises there).
    """
    try:
        with phase("build"):
            values = build_values(nodes, checkpoint)
    except GraphError:
        index_ids(nodes)
        raise
    output = choose_output(nodes, values, output)
    root = values[output]
    with phase("backward"):
        root.backward(checkpoint)
    ordered = list(values.values())
    check_grads(nodes, ordered, root, checkpoint)
    return output, ordered


def build_values(nodes: list[dict], checkpoint: Checkpoint | None = None) -> dict[NodeId, Value]:
    """Every node's Value by id, in request order, each built after its children.

    A graph serialized the way it was built lists children first and takes one pass; a graph in any
    other order is put in order by `dependency_order` and built again.
    """
    values = {}
    for i, node in enumerate(nodes):
        if checkpoint and not i % CHECKPOINT_EVERY:
            checkpoint()
        try:
            inputs = [values[child] for child in node["children"]] if "children" in node else ()
        except KeyError:
            return build_in_dependency_order(nodes, checkpoint)
        if node["id"] in values:
            index_ids(nodes)  # raises, naming the duplicates
        values[node["id"]] = build_value(nodes, i, inputs)
    return values


def build_in_dependency_order(nodes, checkpoint):
    values = {}
    for k, i in enumerate(dependency_order(nodes, checkpoint)):
        if checkpoint and not k % CHECKPOINT_EVERY:
            checkpoint()
        node = nodes[i]
        values[node["id"]] = build_value(nodes, i, [values[child] for child in node.get("children", ())])
    return {node["id"]: values[node["id"]] for node in nodes}


def build_value(
    nodes: list[dict],
    i: int,
    inputs: list[Value],
    number: Callable[[int | float], int | float] = float,
    value_class: type[Value] = Value,
) -> Value:
    """The Value of node i from its children's Values: the forward pass of one node.

    `number` makes a leaf's data and pow's exponent: a double, as the contract reads a JSON number,
    unless a caller keeps Python's own ints (an expression's constants and exponents, as the reference
    class keeps them: relu's int 0 squared is the int 0, not 0.0). `value_class`
    makes the leaves; an op node is made by its children's own operators (the grader builds graphs with
    other classes than the reference, each with one known mistake)."""
    node = nodes[i]
    op = node.get("op", "value")
    if op == "value":
        if "local_grads" in node:
            return value_class(number(node["data"]), tuple(inputs), tuple(map(float, node["local_grads"])))
        return value_class(number(node["data"]))
    try:
        arguments = (*inputs, number(node["exponent"])) if OPS[op].takes_exponent else inputs
        value = OPS[op].forward(*arguments)
        if math.isfinite(value.data):  # a complex power raises TypeError here
            return value
    except (ArithmeticError, ValueError, TypeError):
        pass
    data = [v.data for v in inputs]
    raise GraphError(
        "numeric-error",
        "A node's value is not a finite number.",
        [_fault(nodes, i, None, OPS[op].why_not_finite(data, node.get("exponent")), op=op, inputs=data)],
    )


def unit_flow(
    node: dict,
    children_data: Sequence[float],
    grad: float,
    value_class: type[Value] = Value,
    backward_step: Callable[[Value], None] = propagate,
) -> list[float]:
    """What the backward pass sends to each listed child of an op node whose grad is `grad`, through the
    Values the op builds (one fresh leaf per listed position, so a repeated child counts once per
    position): for add, mul, pow, log, exp and relu one local gradient × grad; for sub, div and neg,
    which the reference class builds from several Values, what flows through them. The grader asks it of
    the reference class and of classes with a known mistake (`value_class`, and their `backward_step`)."""
    op = OPS[node["op"]]
    leaves = [value_class(x) for x in children_data]
    out = op.forward(*leaves, float(node["exponent"])) if op.takes_exponent else op.forward(*leaves)
    out.grad = grad
    backward_step(out)
    return [leaf.grad for leaf in leaves]


def flow_through_hidden(value: Value, children: Sequence[Value]) -> list[float] | None:
    """What `value` passes to each of its listed children per unit of its grad, read off the Values
    its class built between them (a - b is a + (b * -1): b gets 0 + -1 * (0 + 1 * 1)), with the backward
    pass's own roundings; the way to child k is through the node's k-th own child, then first children.
    None when a child is not reached that way (then `unit_flow` builds the op afresh)."""
    grads = []
    for position, child in enumerate(children):
        flowed, holder, k = 1, value, position
        for _ in range(8):
            if k >= len(holder._children) or k >= len(holder._local_grads):
                return None
            flowed = 0 + holder._local_grads[k] * flowed
            holder, k = holder._children[k], 0
            if holder is child:
                break
        else:
            return None
        if holder is not child:
            return None
        grads.append(flowed)
    return grads


def dependency_order(nodes: list[dict], checkpoint: Checkpoint | None = None) -> list[int]:
    """Node positions, each after its children's: a depth-first post-order from each node in turn."""
    children = resolve_children(nodes, index_ids(nodes))

    def cycle(path, repeated):
        raise _cycle_error(nodes, path, repeated)

    return post_order(range(len(nodes)), children.__getitem__, checkpoint, on_cycle=cycle)


def index_ids(nodes: list[dict]) -> dict[NodeId, int]:
    """Each id's position in `nodes`; ids must be unique."""
    index = {node["id"]: i for i, node in enumerate(nodes)}
    if len(index) == len(nodes):
        return index
    first = {}
    duplicates = (i for i, node in enumerate(nodes) if first.setdefault(node["id"], i) != i)
    listed, more = _first_and_count(duplicates)
    faults = [_fault(nodes, i, "id", f"Duplicate id: node {first[nodes[i]['id']]} has it too.") for i in listed]
    raise GraphError("invalid-graph", "Node ids must be unique.", faults, more)


def resolve_children(nodes: list[dict], index: dict[NodeId, int]) -> list[list[int]]:
    """Each node's children as positions in `nodes`; every child must name a node."""
    try:
        return [[index[child] for child in node["children"]] if "children" in node else () for node in nodes]
    except KeyError:
        missing = (
            (i, k, child)
            for i, node in enumerate(nodes)
            for k, child in enumerate(node.get("children", ()))
            if child not in index
        )
        listed, more = _first_and_count(missing)
        faults = [_fault(nodes, i, f"children[{k}]", f"No node has the id {child!r}.") for i, k, child in listed]
        raise GraphError("invalid-graph", "A child names no node.", faults, more) from None


def choose_output(nodes: list[dict], values: dict[NodeId, Value], output: NodeId | None) -> NodeId:
    """The output's id: the one given, or else the one node that no other node uses."""
    if output is not None:
        if output not in values:
            raise GraphError(
                "invalid-graph",
                "The output is not a node.",
                [Fault(f"No node has the id {output!r}.", field="output")],
            )
        return output
    used = set()
    for node in nodes:
        used.update(node.get("children", ()))
    sinks = [node["id"] for node in nodes if node["id"] not in used]
    if len(sinks) == 1:
        return sinks[0]
    shown = ", ".join(map(repr, sinks[:10])) + (", ..." if len(sinks) > 10 else "")
    raise GraphError(
        "invalid-graph",
        "Several nodes are used by no other node; name the one to differentiate.",
        [Fault(f"No output was given and {len(sinks)} nodes are used by no other node: {shown}.", field="output")],
    )


def check_grads(nodes: list[dict], values: list[Value], root: Value, checkpoint: Checkpoint | None = None) -> None:
    """Every grad must be finite; if one is not, name the node nearest the output where it went wrong.

    A grad the reference class keeps as a Python int (summed through adds) can grow past the doubles,
    where `math.isfinite` raises: such a grad is not finite either, as JSON's numbers are doubles."""
    try:
        if all(map(math.isfinite, map(operator.attrgetter("grad"), values))):
            return
    except OverflowError:
        pass
    position = {id(v): i for i, v in enumerate(values)}
    for v in reversed(topological_order(root, checkpoint)):
        i = position.get(id(v))
        if i is None or (_is_finite(v.grad) and all(map(math.isfinite, v._local_grads))):
            continue
        node = nodes[i]
        op = node.get("op", "value")
        if _is_finite(v.grad):  # the grad is fine but one of its local gradients is not
            data = [child.data for child in v._children]
            reason = OPS[op].why_not_finite(data, node.get("exponent"))
            raise GraphError(
                "numeric-error",
                "A local gradient is not a finite number.",
                [_fault(nodes, i, None, reason, op=op, inputs=data)],
            )
        raise GraphError(
            "numeric-error",
            "A gradient is not a finite number.",
            [
                _fault(
                    nodes,
                    i,
                    None,
                    f"The gradient of the output with respect to this node overflows ({_shown_grad(v.grad)}).",
                    op=op,
                )
            ],
        )


def _is_finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _shown_grad(grad: int | float) -> str:
    return f"an integer of {grad.bit_length()} bits" if isinstance(grad, int) else repr(grad)


def _fault(nodes, i, field, message, **facts):
    return Fault(message, index=i, node=nodes[i]["id"], field=field, **facts)


def _first_and_count(items):
    """The first MAX_FAULTS of an iterator, and how many more it has: only the listed ones are explained."""
    listed = list(itertools.islice(items, MAX_FAULTS))
    return listed, sum(1 for _ in items)


def _cycle_error(nodes, path, repeated):
    """The cycle's ids in order, the first repeated at the end; a cycle longer than MAX_FAULTS is cut
    after its first MAX_FAULTS ids."""
    on_cycle = path[path.index(repeated) :]
    if len(on_cycle) < MAX_FAULTS:
        cycle = [nodes[k]["id"] for k in on_cycle] + [nodes[repeated]["id"]]
        message = "This node depends on itself: " + " -> ".join(map(repr, cycle)) + "."
    else:
        cycle = [nodes[k]["id"] for k in on_cycle[:MAX_FAULTS]]
        shown = " -> ".join(map(repr, cycle))
        message = f"This node depends on itself through a cycle of {len(on_cycle)} nodes: {shown} -> ... (the first {MAX_FAULTS} shown)."
    return GraphError(
        "invalid-graph", "The graph has a cycle.", [_fault(nodes, repeated, "children", message, cycle=cycle)]
    )
