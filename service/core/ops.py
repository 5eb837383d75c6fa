"""The op registry: each op a graph node may name, in one place.

An entry says how many children the op takes, whether it takes pow's plain-number exponent, how the
reference `Value` class builds it (so `neg`, `sub` and `div` are built from several Values, as in
the reference), and, in words, why it can leave the finite doubles. The schemas, the graph builder, the
numeric errors, the tests and the benchmark all read this table: adding an op is one entry here.
"""

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


def _div_domain(inputs, exponent):
    return "Division by zero: the second child is 0." if inputs[1] == 0 else None


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op("add", 2, operator.add),
        Op("mul", 2, operator.mul),
        Op("sub", 2, operator.sub),
        Op("div", 2, operator.truediv, _div_domain),
        Op("pow", 1, lambda x, exponent: x ** float(exponent), _pow_domain, takes_exponent=True),
        Op("log", 1, Value.log, _log_domain),
        Op("exp", 1, Value.exp, lambda inputs, exponent: f"exp({inputs[0]!r}) overflows."),
        Op("relu", 1, Value.relu),
        Op("neg", 1, operator.neg),
    )
}
