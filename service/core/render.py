"""An evaluated graph as a picture description, Mermaid or Graphviz dot: POST /v1/render's logic.

Drawn the way the reference Value class's documentation draws its graphs (`flowchart BT`: children below, the output on top), each
node labelled with its id, how it is computed, its data and its grad, and each edge with the
gradient it carries back from the node to the child: for every child, its edges' labels add up to
its grad. The output node is marked (a rounded, bold box).
"""

import re
from collections.abc import Sequence

from service.core.engine import Value

FORMATS = ("mermaid", "dot")
MEDIA_TYPES = {"mermaid": "text/vnd.mermaid", "dot": "text/vnd.graphviz"}

#: How an op with these names reads; any other op reads as a call, `op(x)`.
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
#: Words that end or restyle a Mermaid flowchart, and the shape of the names made for other ids.
_MERMAID_WORDS = {"end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click", "linkstyle"}
_MERMAID_WORDS |= {"direction", "default", "call", "href"}
_SAFE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_MADE_NAME = re.compile(r"n[0-9]+\Z")


def render(nodes: Sequence[dict], output: object, values: Sequence[Value], format: str) -> str:
    """The picture of a graph evaluated by `graph.evaluate`: `nodes` as validated, `values` in their order."""
    names = node_names(nodes)
    position = {node["id"]: i for i, node in enumerate(nodes)}
    labels = [
        (f"{_show(node['id'])}{_how(node)} ({value.data!r})", f"grad = {value.grad!r}")
        for node, value in zip(nodes, values)
    ]
    edges = []
    for i, (node, value) in enumerate(zip(nodes, values)):
        for k, child in enumerate(node.get("children", ())):
            carried = carried_gradient(value, k, values[position[child]])
            edges.append((position[child], i, "" if carried is None else f"grad = {carried!r}"))
    draw = _mermaid if format == "mermaid" else _dot
    return draw(names, labels, edges, position[output])


def node_names(nodes: Sequence[dict]) -> list[str]:
    """A name per node that the picture languages take as is: the id itself when it is a plain word,
    else n + its position (the label always shows the id)."""
    return [
        node["id"]
        if isinstance(node["id"], str)
        and _SAFE_NAME.match(node["id"])
        and not _MADE_NAME.match(node["id"])
        and node["id"].lower() not in _MERMAID_WORDS
        else f"n{i}"
        for i, node in enumerate(nodes)
    ]


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


def _how(node: dict) -> str:
    op = node.get("op", "value")
    if op == "value":
        return ""
    children = [_show(child) for child in node["children"]]
    if op in INFIX and len(children) == 2:
        return f" = {children[0]} {INFIX[op]} {children[1]}"
    if op == "pow":
        return f" = {children[0]} ** {node['exponent']!r}"
    if op == "neg":
        return f" = -{children[0]}"
    return f" = {op}({', '.join(children)})"


def _show(node_id: object) -> str:
    return node_id if isinstance(node_id, str) else repr(node_id)


def _mermaid(names, labels, edges, output) -> str:
    def text(words: str) -> str:
        return '"' + "".join(_MERMAID_ESCAPES.get(character, character) for character in words) + '"'

    lines = ["flowchart BT"]
    for i, (name, (first, second)) in enumerate(zip(names, labels)):
        label = text(first)[:-1] + "<br/>" + text(second)[1:]
        lines.append(f"    {name}([{label}]):::output" if i == output else f"    {name}[{label}]")
    for child, parent, label in edges:
        lines.append(
            f"    {names[child]} -- {text(label)} --> {names[parent]}"
            if label
            else f"    {names[child]} --> {names[parent]}"
        )
    lines.append("    classDef output stroke-width:3px")
    return "\n".join(lines) + "\n"


_MERMAID_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "&": "#amp;"}


def _dot(names, labels, edges, output) -> str:
    def text(words: str) -> str:
        return '"' + words.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["digraph valuegraph {", "    rankdir=BT;", "    node [shape=box];"]
    for i, (name, (first, second)) in enumerate(zip(names, labels)):
        label = text(first)[:-1] + "\\n" + text(second)[1:]
        extra = ', style="rounded,bold", peripheries=2' if i == output else ""
        lines.append(f"    {text(name)} [label={label}{extra}];")
    for child, parent, label in edges:
        lines.append(
            f"    {text(names[child])} -> {text(names[parent])}" + (f" [label={text(label)}];" if label else ";")
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
