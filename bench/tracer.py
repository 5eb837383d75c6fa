"""Op nodes for a computation written with the project's `service.engine.Value`.

The seed's Value records children and local grads but not the op that made it, so the op-node form
of a graph cannot be read back from the Values. A `Traced` number carries a Value and the id of the
op node that computes it; each operator applies the same Value operator to the Values and appends
the op node to the tape. One run of a model thus gives the Values (the in-process reference, and
the recorded form once dumped) and the op nodes (the op form), node for node the same computation.

Plain numbers are lifted to leaves before an op, on both sides, so that the service, which only
sees leaves, builds exactly the Values built here (e.g. `x - 3.0` becomes sub(x, leaf 3.0)).
"""

import operator

from service.core.engine import Value, topological_order

BINARY = {"add": operator.add, "mul": operator.mul, "sub": operator.sub, "div": operator.truediv}
UNARY = {"neg": operator.neg, "log": Value.log, "exp": Value.exp, "relu": Value.relu}


class Tape:
    """The op nodes of one computation, in the order they were computed, and the Value of each."""

    def __init__(self):
        self.nodes = []
        self.values = []

    def leaf(self, data):
        return self.append(Value(data), {"op": "value", "data": data})

    def append(self, value, node):
        node = {"id": len(self.nodes), **node}
        self.nodes.append(node)
        self.values.append(value)
        return Traced(self, value, node["id"])


class Traced:
    """A number of the traced computation: its Value and the id of its op node."""

    __slots__ = ("id", "tape", "value")

    def __init__(self, tape, value, id_):
        self.tape, self.value, self.id = tape, value, id_

    @property
    def data(self):
        return self.value.data

    def _lift(self, other):
        return other if isinstance(other, Traced) else self.tape.leaf(other)

    def _op(self, op, *inputs, **extra):
        if op == "pow":
            value = inputs[0].value ** extra["exponent"]
        elif op in BINARY:
            value = BINARY[op](inputs[0].value, inputs[1].value)
        else:
            value = UNARY[op](inputs[0].value)
        return self.tape.append(value, {"op": op, "children": [x.id for x in inputs], **extra})

    # Operand order follows the seed: `c + x` is `x + c`, `c - x` is `c + (-x)`, `c / x` is `c * x**-1`.
    def __add__(self, other):
        return self._op("add", self, self._lift(other))

    __radd__ = __add__

    def __mul__(self, other):
        return self._op("mul", self, self._lift(other))

    __rmul__ = __mul__

    def __sub__(self, other):
        return self._op("sub", self, self._lift(other))

    def __rsub__(self, other):
        return self._op("sub", self._lift(other), self)

    def __truediv__(self, other):
        return self._op("div", self, self._lift(other))

    def __rtruediv__(self, other):
        return self._op("div", self._lift(other), self)

    def __neg__(self):
        return self._op("neg", self)

    def __pow__(self, exponent):
        return self._op("pow", self, exponent=exponent)

    def log(self):
        return self._op("log", self)

    def exp(self):
        return self._op("exp", self)

    def relu(self):
        return self._op("relu", self)


def recorded_nodes(output):
    """Every Value the output depends on, the seed's Value(data, children, local_grads) as a node,
    in topological order; returns the nodes and the Values, position for position."""
    values = topological_order(output)
    position = {id(v): i for i, v in enumerate(values)}
    nodes = [
        {
            "id": i,
            "data": v.data,
            "children": [position[id(c)] for c in v._children],
            "local_grads": list(v._local_grads),
        }
        for i, v in enumerate(values)
    ]
    return nodes, values
