"""The op registry: each op a graph node may name, in one place.

An entry says how many children the op takes, whether it takes pow's plain-number exponent, how the
reference `Value` class builds it (so `neg`, `sub` and `div` are built from several Values, as in
the reference), in words why it can leave the finite doubles, and how far its local gradients move
when its inputs move (for the grader's rounding-aware tolerance). The schemas, the graph builder, the
numeric errors, the grader, the tests and the benchmark all read this table: adding an op is one entry here.
"""

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.core.engine import Value


@dataclass(frozen=True)
class Op:
    """One op: its name, its arity, how the reference class builds it, and why it can fail."""

    name: str
    arity: int
    forward: Callable[..., Value]
    """forward(*children) -> Value, or forward(child, exponent) for an op that takes an exponent."""
    domain_error: Callable[[Sequence[float], float | None], str | None] = lambda inputs, exponent: None
    """Why the op at these inputs is not a finite number, when there is a reason more telling than overflow."""
    takes_exponent: bool = False
    gradient_drift: Callable[[Sequence[float], float | None, Sequence[float]], list[float]] = (
        lambda inputs, exponent, drifts: [0.0] * len(inputs)
    )
    """gradient_drift(inputs, exponent, drifts): how far each local gradient can move when each input
    moves by up to its drift (a first-order bound; math.inf where it cannot be bounded). Without it an
    op's local gradients are taken to be constant."""

    def why_not_finite(self, inputs: Sequence[float], exponent: float | None = None) -> str:
        """The message for a node whose value or local gradient left the finite doubles."""
        shown = f"{self.name}({', '.join(map(repr, inputs))})"
        return self.domain_error(inputs, exponent) or f"{shown} or its local gradient overflows."


def _log_domain(inputs, exponent):
    (x,) = inputs
    if x <= 0:
        return f"log({x!r}): log is defined only for numbers > 0."
    return f"The derivative of log at {x!r}, 1/x, overflows."


def _pow_domain(inputs, exponent):
    (x,) = inputs
    if x == 0 and exponent < 0:
        return f"0 to the negative power {exponent!r} is undefined."
    if x < 0 and not float(exponent).is_integer():
        return f"({x!r}) ** {exponent!r}: a negative number to a fractional power is not a real number."
    if x == 0 and exponent < 1:
        return f"The derivative of x ** {exponent!r} at 0, {exponent!r} * 0 ** {exponent - 1!r}, is undefined."
    return f"({x!r}) ** {exponent!r} or its derivative overflows."


def _mul_drift(inputs, exponent, drifts):
    return [drifts[1], drifts[0]]  # d/dx of (b, a)


def _div_drift(inputs, exponent, drifts):
    (a, b), (da, db) = inputs, drifts
    if not db < abs(b) / 2:
        return [math.inf, math.inf]
    return [db / b**2, da / b**2 + 2 * abs(a) * db / abs(b) ** 3]  # d/dx of (1/b, -a/b**2)


def _pow_drift(inputs, exponent, drifts):
    """How far n * x ** (n - 1) moves over [x - dx, x + dx]: its derivative's largest size there × dx;
    near 0, where a power below 1 has no bound, unbounded."""
    (x,), (dx,), n = inputs, drifts, float(exponent)
    if dx == 0 or n in (0.0, 1.0):
        return [0.0]
    if n >= 2 and n.is_integer():
        return [abs(n * (n - 1)) * (abs(x) + dx) ** (n - 2) * dx]  # a polynomial: bounded everywhere
    if dx < abs(x):
        nearest, farthest = abs(x) - dx, abs(x) + dx
        return [abs(n * (n - 1)) * (nearest if n < 2 else farthest) ** (n - 2) * dx]
    if n > 1:
        return [2 * abs(n) * (abs(x) + dx) ** (n - 1)]  # continuous through 0: at most both ends' sizes
    return [math.inf]


def _log_drift(inputs, exponent, drifts):
    (x,), (dx,) = inputs, drifts
    if dx == 0:
        return [0.0]
    return [dx / x**2 if dx < abs(x) / 2 else math.inf]  # d/dx of 1/x


def _exp_drift(inputs, exponent, drifts):
    (x,), (dx,) = inputs, drifts
    return [math.exp(x) * math.expm1(dx) if dx < 700 else math.inf]  # e**x moved by up to dx


def _relu_drift(inputs, exponent, drifts):
    """relu's local gradient is a step at 0: an input within its drift of 0 may be on either side."""
    (x,), (dx,) = inputs, drifts
    return [1.0 if dx > 0 and dx >= abs(x) else 0.0]


def _div_domain(inputs, exponent):
    return "Division by zero: the second child is 0." if inputs[1] == 0 else None


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("add", 2, operator.add),
        Op("mul", 2, operator.mul, gradient_drift=_mul_drift),
        Op("sub", 2, operator.sub),
        Op("div", 2, operator.truediv, _div_domain, gradient_drift=_div_drift),
        Op(
            "pow",
            1,
            operator.pow,
            _pow_domain,
            takes_exponent=True,
            gradient_drift=_pow_drift,
        ),
        Op("log", 1, operator.methodcaller("log"), _log_domain, gradient_drift=_log_drift),
        Op(
            "exp",
            1,
            operator.methodcaller("exp"),
            lambda inputs, exponent: f"exp({inputs[0]!r}) overflows.",
            gradient_drift=_exp_drift,
        ),
        Op("relu", 1, operator.methodcaller("relu"), gradient_drift=_relu_drift),
        Op("neg", 1, operator.neg),
    )
}
