"""A graph of Python `Value` objects as the body of POST /v1/evaluate.

Two styles of Value are read, node by node:
- the seed's (`data`, `grad`, `_children`, `_local_grads`): each node is sent as recorded, its
  children and local gradients in their order, so the service's backward is the seed's;
- micrograd's (`data`, `grad`, `_prev`, `_op`): each node is sent as the op it names, its children
  in `_prev`'s iteration order. micrograd's backward visits `_prev` (a set) in that order, and the
  service visits children in the order listed, so both accumulate every grad in the same order and
  the bits agree. A set holds `a` once for `a * a` and `a + a`; the node gets its two children back.

The walk is iterative (a graph a million deep works) and the ids are the positions 0, 1, 2, ... of
the nodes, children first, so the same graph always gives the same body.
"""

import math
import re
from typing import Any

#: micrograd's `_op` -> the service's op, for the ops micrograd 0.1.0 records.
MICROGRAD_OPS = {"+": "add", "*": "mul", "ReLU": "relu"}
_POWER = re.compile(r"\*\*(.+)\Z")


class UnsupportedValue(ValueError):
    """A node that cannot be sent: not a Value of a known style, an op the service cannot repeat
    exactly, or a number that is not finite."""


def to_graph(root: Any) -> dict:
    """The request body for POST /v1/evaluate that differentiates `root`: {"nodes": [...], "output": id}."""
    nodes, _ = serialize(root)
    return {"nodes": nodes, "output": len(nodes) - 1}


def serialize(root: Any) -> tuple[list[dict], list[Any]]:
    """The nodes (ids 0..n-1, children first) and the Value objects in the same order."""
    order: list[Any] = []
    styles: list[tuple[str, list[Any]]] = []
    position: dict[int, int] = {}
    entered: set[int] = {id(root)}
    style = _style(root)
    stack = [(root, style, iter(style[1]))]
    while stack:
        value, style, pending = stack[-1]
        for child in pending:
            if id(child) not in entered:
                entered.add(id(child))
                child_style = _style(child)
                stack.append((child, child_style, iter(child_style[1])))
                break
        else:
            stack.pop()
            position[id(value)] = len(order)
            order.append(value)
            styles.append(style)
    nodes = [_node(i, value, style, position) for i, (value, style) in enumerate(zip(order, styles))]
    return nodes, order


def _style(value: Any) -> tuple[str, list[Any]]:
    """(the Value's style, its children in the order that style's backward visits them)."""
    if hasattr(value, "_children") and hasattr(value, "_local_grads"):
        return ("seed", list(value._children))
    if hasattr(value, "_prev") and hasattr(value, "_op"):
        return ("micrograd", list(value._prev))
    raise UnsupportedValue(
        f"{value!r} is not a Value: one of the seed's style (data, grad, _children, _local_grads) "
        "or of micrograd's (data, grad, _prev, _op) is required."
    )


def _node(i: int, value: Any, style_and_children: tuple[str, list[Any]], position: dict[int, int]) -> dict:
    style, children = style_and_children
    ids = [position[id(child)] for child in children]
    data = _finite(i, "data", value.data)
    if style == "seed":
        if not ids:
            return {"id": i, "data": data}
        local_grads = [_finite(i, "local_grads", grad) for grad in value._local_grads]
        if len(local_grads) != len(ids):
            raise UnsupportedValue(f"Node {i} ({value!r}) has {len(ids)} children and {len(local_grads)} local grads.")
        return {"id": i, "data": data, "children": ids, "local_grads": local_grads}
    op = value._op
    if op == "" and not ids:
        return {"id": i, "data": data}
    if op in ("+", "*") and len(ids) in (1, 2):
        return {"id": i, "op": MICROGRAD_OPS[op], "children": ids * (3 - len(ids))}
    if op == "ReLU" and len(ids) == 1:
        return {"id": i, "op": "relu", "children": ids}
    power = _POWER.match(op) if isinstance(op, str) else None
    if power and len(ids) == 1:
        try:
            exponent = int(power[1])
        except ValueError:
            exponent = _finite(i, "exponent", float(power[1]))
        return {"id": i, "op": "pow", "children": ids, "exponent": exponent}
    raise UnsupportedValue(
        f"Node {i} ({value!r}) has the micrograd op {op!r} with {len(ids)} children; valuegraph repeats "
        "micrograd's '+', '*', '**k' and 'ReLU', and '' for a leaf. Record such a node in the seed's "
        "style (_children, _local_grads) instead."
    )


def _finite(i: int, field: str, number: Any) -> int | float:
    if type(number) is not int:
        number = float(number)
        if not math.isfinite(number):
            raise UnsupportedValue(f"Node {i}'s {field} is {number!r}; the service takes finite numbers only.")
    return number
