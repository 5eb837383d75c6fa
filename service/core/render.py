"""What a picture of an evaluated graph shows, whatever its language: POST /v1/render's logic.

`picture` gathers it: every node with its name (its label, else its id), its kind, how it is computed,
its data, grad and local gradients; every edge, from a child to the node that uses it, with the local
gradient and the gradient the backward pass sent back along it (for a child, its edges' gradients add
up to its grad). service/core/mermaid.py and service/core/dot.py write it as text, `as_json` as data.
The words a picture uses (its legend, its numbers, how a node is computed) are here, once.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.core.engine import Value
from service.core.grading import unit_flow
from service.core.traversal import CHECKPOINT_EVERY, Checkpoint

FORMATS = ("mermaid", "dot", "svg", "json")
MEDIA_TYPES = {
    "mermaid": "text/vnd.mermaid",
    "dot": "text/vnd.graphviz",
    "svg": "image/svg+xml",
    "json": "application/json",
}
#: Significant digits of the numbers a picture shows, unless asked for the shortest exact ones (None).
DEFAULT_PRECISION = 4
MAX_PRECISION = 17

LEAF, PARAMETER, OPERATION, RECORDED = "leaf", "parameter", "op", "recorded"
KINDS = (LEAF, PARAMETER, OPERATION, RECORDED)

#: Each kind's colours, (fill, border), in every picture.
COLOURS = {
    LEAF: ("#f6f6f6", "#6b6b6b"),
    PARAMETER: ("#fff1c2", "#a57f00"),
    OPERATION: ("#e4eeff", "#3a6db5"),
    RECORDED: ("#efe6fb", "#7450a8"),
}

#: The legend's words: what each kind of node is, what the output is, what arrows and edge labels mean.
KIND_WORDS = {
    LEAF: ("input", "a leaf, Value(data)"),
    PARAMETER: ("parameter", "a leaf with a label"),
    OPERATION: ("op", "computed by the service from its children"),
    RECORDED: ("recorded", "sent with its local gradients"),
}
OUTPUT_WORDS = ("output", "the node differentiated (its grad is 1)")
ARROW_WORDS = "Arrows point from a child to the node that uses it."
EDGE_WORDS = (
    "Edge labels are backward quantities.",
    "local = d(node)/d(child), the local gradient.",
    "back = the gradient the backward pass sent to the child",
    "along the edge (a child's backs add up to its grad).",
)

#: How an op with these names reads; any other op reads as a call, `op(x)`.
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


@dataclass(frozen=True, slots=True)
class DrawnNode:
    id: object
    label: str | None
    kind: str
    op: str
    children: tuple[int, ...]
    exponent: float | None
    data: float
    grad: float
    local_grads: tuple[float, ...]

    @property
    def name(self) -> str:
        """What a picture calls the node: its label, else its id; characters that cannot be printed as
        Python writes them (a newline as \\n), so that no text breaks a picture's lines."""
        return printable(self.label if self.label is not None else _id_text(self.id))


@dataclass(frozen=True, slots=True)
class DrawnEdge:
    """From the child at position `child` to the node at position `parent` that lists it `position`-th."""

    child: int
    parent: int
    position: int
    local_grad: float
    carried: float | None


@dataclass(frozen=True, slots=True)
class Picture:
    nodes: list[DrawnNode]
    edges: list[DrawnEdge]
    output: int

    def kinds(self) -> list[str]:
        """The kinds of node the picture has, in the legend's order."""
        present = {node.kind for node in self.nodes}
        return [kind for kind in KINDS if kind in present]


def picture(
    nodes: Sequence[dict], output: object, values: Sequence[Value], checkpoint: Checkpoint | None = None
) -> Picture:
    """What a graph evaluated by `graphs.evaluate` shows: `nodes` as validated, `values` in their order."""
    position = {node["id"]: i for i, node in enumerate(nodes)}
    drawn, edges = [], []
    for i, (node, value) in enumerate(zip(nodes, values)):
        if checkpoint and not i % CHECKPOINT_EVERY:
            checkpoint()
        children = tuple(position[child] for child in node.get("children", ()))
        local_grads = _local_grads(node, value, [values[k].data for k in children])
        drawn.append(
            DrawnNode(
                node["id"],
                node.get("label"),
                _kind(node),
                node.get("op", "value"),
                children,
                node.get("exponent"),
                value.data,
                value.grad,
                local_grads,
            )
        )
        for k, (child, local_grad) in enumerate(zip(children, local_grads)):
            edges.append(DrawnEdge(child, i, k, local_grad, carried_gradient(value, k, values[child])))
    return Picture(drawn, edges, position[output])


def _kind(node: dict) -> str:
    if not node.get("children"):
        return PARAMETER if "label" in node else LEAF
    return RECORDED if "local_grads" in node else OPERATION


def _local_grads(node: dict, value: Value, children_data: list[float]) -> tuple[float, ...]:
    """d(node)/d(child) for each listed child: per unit of the node's grad, through the Values the
    reference class builds for the op (service/core/grading.py `unit_flow`), or as recorded."""
    if not children_data:
        return ()
    if "local_grads" in node:
        return value._local_grads
    return tuple(unit_flow(node, children_data, 1))


def carried_gradient(value: Value, position: int, child: Value) -> float | None:
    """What the backward pass passed from `value` to its `position`-th listed child, as the engine
    computed it. The reference class builds sub, div and neg from several Values (`a - b` is `a + (b * -1)`):
    the child is reached through the position-th of the Value's children, then first children."""
    grad, holder, k = value.grad, value, position
    for _ in range(8):
        if k >= len(holder._children):
            return None
        grad = holder._local_grads[k] * grad
        holder, k = holder._children[k], 0
        if holder is child:
            return grad
    return None


def as_json(drawn: Picture) -> dict:
    """The picture's content as data, numbers exact (a local gradient that is not finite, on a node the
    output does not reach, is null)."""
    nodes = drawn.nodes
    return {
        "output": nodes[drawn.output].id,
        "nodes": [
            {
                "id": node.id,
                "label": node.label,
                "kind": node.kind,
                "op": node.op,
                "children": [nodes[child].id for child in node.children],
                **({} if node.exponent is None else {"exponent": node.exponent}),
                "data": node.data,
                "grad": node.grad,
                "local_grads": [_finite_or_none(grad) for grad in node.local_grads],
            }
            for node in nodes
        ],
        "edges": [
            {
                "child": nodes[edge.child].id,
                "parent": nodes[edge.parent].id,
                "position": edge.position,
                "local_grad": _finite_or_none(edge.local_grad),
                "carried": _finite_or_none(edge.carried),
            }
            for edge in drawn.edges
        ],
    }


def _finite_or_none(number: float | None) -> float | None:
    return number if number is not None and math.isfinite(number) else None


# --- the words and numbers every picture shows --------------------------------------------------------


def how(drawn: Picture, node: DrawnNode) -> str:
    """How an op node is computed, by its children's names: `a + b`, `a ** 2`, `log(a)`; for a leaf or a
    recorded node, nothing (its shape says what it is)."""
    if node.kind != OPERATION:
        return ""
    names = [drawn.nodes[child].name for child in node.children]
    if node.op in INFIX and len(names) == 2:
        return f"{names[0]} {INFIX[node.op]} {names[1]}"
    if node.op == "pow":
        return f"{names[0]} ** {number_text(node.exponent, None)}"
    if node.op == "neg":
        return f"-{names[0]}"
    return f"{node.op}({', '.join(names)})"


def title(drawn: Picture, node: DrawnNode) -> str:
    """A node's first line: its name, and how an op node is computed (`c = a + b`)."""
    computed = how(drawn, node)
    return f"{node.name} = {computed}" if computed else node.name


def values_text(node: DrawnNode, precision: int | None) -> str:
    return f"data {number_text(node.data, precision)}, grad {number_text(node.grad, precision)}"


def edge_text(edge: DrawnEdge, precision: int | None) -> tuple[str, str]:
    """The edge's two backward quantities: the local gradient and the gradient sent back."""
    carried = "?" if edge.carried is None else number_text(edge.carried, precision)
    return f"local {number_text(edge.local_grad, precision)}", f"back {carried}"


def precision_words(precision: int | None) -> str:
    if precision is None:
        return "Numbers are exact (the shortest digits that read back the same)."
    return f"Numbers to {precision} significant digits."


def number_text(number: float, precision: int | None) -> str:
    """A number to `precision` significant digits, or its shortest exact digits (None)."""
    if precision is None:
        return repr(number)
    return format(number, f".{precision}g")


def printable(text: str) -> str:
    """The text with each character that cannot be printed (a newline, a control character, a lone
    surrogate) written as Python writes it in a string: \\n, \\x00, \\ud800."""
    if text.isprintable():
        return text
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


def _id_text(node_id: object) -> str:
    return node_id if isinstance(node_id, str) else repr(node_id)
