"""The scalar autograd engine: the reference `Value` class (micrograd's scalar autograd class), with a
backward pass that never recurses.

Free of Flask and of JSON, so that it reads like the reference class and can be checked against it alone.
"""

from __future__ import annotations

import math
from operator import attrgetter

from service.core.traversal import CHECKPOINT_EVERY, Checkpoint, post_order


class Value:
    """Stores a single scalar value and its gradient, as a node in a computation graph."""

    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data: float, children: tuple[Value, ...] = (), local_grads: tuple[float, ...] = ()):
        self.data = data  # scalar value of this node
        self.grad = 0  # derivative of the loss w.r.t. this node
        self._children = children  # children of this node in the computation graph
        self._local_grads = local_grads  # local derivative of this node w.r.t. its children

    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other: float) -> Value:
        return Value(self.data**other, (self,), (other * self.data ** (other - 1),))

    def log(self) -> Value:
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self) -> Value:
        return Value(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self) -> Value:
        return Value(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self) -> Value:
        return self * -1

    def __radd__(self, other: Value | float) -> Value:
        return self + other

    def __sub__(self, other: Value | float) -> Value:
        return self + (-other)

    def __rsub__(self, other: Value | float) -> Value:
        return other + (-self)

    def __rmul__(self, other: Value | float) -> Value:
        return self * other

    def __truediv__(self, other: Value | float) -> Value:
        return self * other**-1

    def __rtruediv__(self, other: Value | float) -> Value:
        return other * self**-1

    def backward(self, checkpoint: Checkpoint | None = None) -> None:
        """Accumulate d(self)/d(node) into every node's grad, in the reference class's order.

        `checkpoint`, when given, is called every CHECKPOINT_EVERY nodes: a caller's deadline can
        stop a long pass there.
        """
        self.grad = 1
        propagate(self, checkpoint)


def propagate(root: Value, checkpoint: Checkpoint | None = None) -> None:
    """The chain rule from `root`, whatever its grad: each node, after every node that uses it, adds
    local_grad × its grad to each child's grad, in reverse topological order."""
    for k, v in enumerate(reversed(topological_order(root, checkpoint))):
        if checkpoint and not k % CHECKPOINT_EVERY:
            checkpoint()
        for child, local_grad in zip(v._children, v._local_grads):
            child.grad += local_grad * v.grad


def topological_order(root: Value, checkpoint: Checkpoint | None = None) -> list[Value]:
    """Depth-first post-order from root: the list the reference class's recursive build_topo makes."""
    return post_order((root,), _children, checkpoint)


_children = attrgetter("_children")
