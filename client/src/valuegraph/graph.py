"""A graph of Python `Value` objects as the body of POST /v1/evaluate.

Two styles of Value are read, node by node:
- the reference class's (`data`, `grad`, `_children`, `_local_grads`, as in microgpt): each node is
  sent as recorded, its children and local gradients in their order, so the service's backward is its own;
- micrograd's (`data`, `grad`, `_prev`, `_op`): each node is sent as the op it names, its children
  in `_prev`'s iteration order. micrograd's backward visits `_prev` (a set) in that order, and the
  service visits children in the order listed, so both accumulate every grad in the same order and
  the bits agree. That order follows these Values' addresses: another build of the same network has
  others, and micrograd's own grads for it can differ in the last bits. A set holds `a` once for
  `a * a` and `a + a`; the node gets its two children back.

The walk is iterative (a graph a million deep works) and the ids are the positions 0, 1, 2, ... of
the nodes, children first, so the same graph always gives the same body. A Value's `label` (micrograd's
lecture code names its Values `Value(2.0, label='a')`) is sent as the node's label, which pictures show
instead of the id, when it is a string of 1 to 256 characters.
"""

import gc
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: The longest label the service takes, as an id.
LABEL_MAX_LENGTH = 256

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


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """A big graph is millions of objects and making its body makes millions more; Python's cyclic
    collector would walk them all again and again (it tripled the time of a million-node chain).
    Paused for the duration, then restored as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def serialize(root: Any) -> tuple[list[dict], list[Any]]:
    """The nodes (ids 0..n-1, children first) and the Value objects in the same order."""
    with cyclic_gc_paused():
        return _serialize(root)


def _serialize(root: Any) -> tuple[list[dict], list[Any]]:
    order: list[Any] = []
    position: dict[int, int] = {}
    entered: set[int] = {id(root)}
    stack = [(root, iter(_children(root)))]
    while stack:
        value, pending = stack[-1]
        for child in pending:
            if id(child) not in entered:
                entered.add(id(child))
                stack.append((child, iter(_children(child))))
                break
        else:
            stack.pop()
            position[id(value)] = len(order)
            order.append(value)
    return [_labelled(_node(i, value, position), value) for i, value in enumerate(order)], order


def _labelled(node: dict, value: Any) -> dict:
    label = getattr(value, "label", None)
    if type(label) is str and 0 < len(label) <= LABEL_MAX_LENGTH:
        node["label"] = label
    return node


def _children(value: Any) -> Any:
    """The children in the order the Value's own backward visits them (a set's iteration order does
    not change while the set does not)."""
    try:
        return value._children
    except AttributeError:
        pass
    try:
        return value._prev
    except AttributeError:
        raise UnsupportedValue(
            f"{value!r} is not a Value: one of the reference class's style (data, grad, _children, _local_grads) "
            "or of micrograd's (data, grad, _prev, _op) is required."
        ) from None


def _node(i: int, value: Any, position: dict[int, int]) -> dict:
    ids = [position[id(child)] for child in _children(value)]
    data = value.data
    if type(data) is not float or data - data != 0:  # inf - inf and nan - nan are nan
        data = _finite(i, "data", data)
    if hasattr(value, "_children"):
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
        "micrograd's '+', '*', '**k' and 'ReLU', and '' for a leaf. Record such a node in the reference class's "
        "style (_children, _local_grads) instead."
    )


def _finite(i: int, field: str, number: Any) -> int | float:
    if type(number) is float and number - number == 0:
        return number
    if type(number) is not int:
        number = float(number)
        if not math.isfinite(number):
            raise UnsupportedValue(f"Node {i}'s {field} is {number!r}; the service takes finite numbers only.")
    return number
