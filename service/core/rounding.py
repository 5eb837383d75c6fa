"""The rounding-aware tolerance: how far a correct computation can be from the reference, node by node.

A correct class may add in another order, walk the graph in another topological order, or compose an
op differently (a / b at once instead of a * b**-1): every such difference is rounding, and a grad that
is mathematically 0 (x / x, a softmax's shift) comes out as noise of either sign. So no relative
tolerance fits; instead every node gets a running error bound, computed along with the reference:

- a node's data may differ by what its inputs' bounds carry through it (|d out / d input| × the input's
  bound) plus a few roundings of the magnitudes its own operation handles (its output and each input
  times its local gradient);
- a local gradient may differ by how far it moves when its inputs move within their bounds (the op
  registry's `gradient_drift`) plus a few roundings of itself;
- a grad may differ by what its users' bounds carry through (|local gradient| × the user's bound, and
  the user's |grad| × the local gradient's bound) plus one rounding per addition of the sum of the
  absolute contributions: not of the result, which may cancel to 0.

"A few roundings" is SAFETY_FACTOR units of roundoff, and as many of the smallest subnormal (below the
normal doubles an operation's error is absolute). The classic mistakes are off by whole factors and
terms, many orders of magnitude beyond these bounds.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.core.engine import Value
from service.core.ops import OPS

#: 2**-53: the largest relative error of one correctly rounded operation on doubles.
UNIT_ROUNDOFF = 2.0**-53
#: 2**-1074, the smallest subnormal: below 2**-1022 an operation's error is absolute, up to half of it,
#: whatever the relative one; each rounding may add this much.
UNDERFLOW = 2.0**-1074
#: How many roundings of its own magnitude one node's computation may differ by (an op composed of
#: several Values rounds several times; a library's exp or pow may be a rounding off).
SAFETY_FACTOR = 16


@dataclass(frozen=True)
class Bounds:
    """The most a correct computation may differ from the reference: per node, its data and grad, and
    each of its local gradients (None for a leaf)."""

    data: list[float]
    grad: list[float]
    local_grads: list[list[float] | None]


def bounds(
    nodes: Sequence[dict],
    values: Sequence[Value],
    kids: Sequence[Sequence[int]],
    order: Sequence[int],
    users: Sequence[Sequence[tuple[int, int]]],
    local: Sequence[Sequence[float] | None],
    output: int,
) -> Bounds:
    """Every node's bounds, data children first and grads users first. `kids` are the children's
    positions, `order` the forward order, `users[i]` the (user, position) pairs of the nodes the output
    depends on, `local[i]` the reference's per-unit local gradients."""
    roundings = SAFETY_FACTOR * UNIT_ROUNDOFF
    n = len(nodes)
    data_bound = [0.0] * n
    local_bound: list[list[float] | None] = [None] * n
    for i in order:
        if not kids[i]:
            continue  # a leaf's data is the request's
        node = nodes[i]
        if "op" not in node:
            local_bound[i] = [0.0] * len(kids[i])  # a recorded node's numbers are the request's
            continue
        inputs = [values[c].data for c in kids[i]]
        drifts = [data_bound[c] for c in kids[i]]
        try:
            moved = OPS[node["op"]].gradient_drift(inputs, node.get("exponent"), drifts)
        except ArithmeticError:  # at the doubles' edges: no bound
            moved = [math.inf] * len(inputs)
        grads = local[i]
        local_bound[i] = [m + roundings * abs(g) + SAFETY_FACTOR * UNDERFLOW for m, g in zip(moved, grads)]
        carried = sum(_times(abs(g) + m, d) for g, m, d in zip(grads, moved, drifts))
        own = abs(values[i].data) + sum(abs(g * x) for g, x in zip(grads, inputs))
        data_bound[i] = carried + roundings * own + SAFETY_FACTOR * UNDERFLOW
    grad_bound = [0.0] * n
    for i in reversed(order):
        if i == output or not users[i]:
            continue  # the output's grad is 1 and an unreached node's 0, exactly
        carried = total = 0.0
        for p, k in users[i]:
            weight, grad = local[p][k], values[p].grad
            carried += _times(abs(weight), grad_bound[p]) + _times(abs(grad), local_bound[p][k])
            total += abs(weight * grad)
        grad_bound[i] = carried + (roundings * total + SAFETY_FACTOR * UNDERFLOW) * (len(users[i]) + 1)
    return Bounds(data_bound, grad_bound, local_bound)


def _times(factor: float, bound: float) -> float:
    """factor × bound, where a bound of 0 carries nothing even through an unbounded factor."""
    return 0.0 if bound == 0 else factor * bound if math.isfinite(factor) else math.inf
