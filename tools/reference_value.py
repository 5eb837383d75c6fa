"""The reference Value class, literally as its documentation writes it (with its recursive
build_topo): the specification that valuegraph's results must equal bit for bit. The tests and the
bench compare with it; the service never imports it."""

import math


class Value:
    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, other):
        return Value(self.data**other, (self,), (other * self.data ** (other - 1),))

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):
        return Value(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self):
        return Value(max(0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other**-1

    def __rtruediv__(self, other):
        return other * self**-1

    def backward(self):
        topo = build_topo(self)
        self.grad = 1
        for v in reversed(topo):
            for child, local_grad in zip(v._children, v._local_grads):
                child.grad += local_grad * v.grad


def build_topo(root):
    """The seed's recursive build_topo, lifted out of backward so that tests can compare orders."""
    topo = []
    visited = set()

    def build_topo(v):
        if v not in visited:
            visited.add(v)
            for child in v._children:
                build_topo(child)
            topo.append(v)

    build_topo(root)
    return topo


OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b,
    "neg": lambda a: -a,
    "log": lambda a: a.log(),
    "exp": lambda a: a.exp(),
    "relu": lambda a: a.relu(),
}


def evaluate_with_seed(nodes, output):
    """Build the graph with the seed's class in dependency order and run its backward pass.

    Returns {id: (data, grad)}; lets the seed's own exceptions through.
    """
    by_id = {node["id"]: node for node in nodes}
    values = {}

    def build(node_id):  # graphs in these tests are small: recursion is fine here
        if node_id not in values:
            node = by_id[node_id]
            children = [build(child) for child in node.get("children", ())]
            op = node.get("op", "value")
            if op == "value":
                if "local_grads" in node:
                    values[node_id] = Value(
                        float(node["data"]), tuple(children), tuple(float(g) for g in node["local_grads"])
                    )
                else:
                    values[node_id] = Value(float(node["data"]))
            elif op == "pow":
                values[node_id] = children[0] ** float(node["exponent"])
            else:
                values[node_id] = OPS[op](*children)
        return values[node_id]

    for node in nodes:
        build(node["id"])
    values[output].backward()
    return {node_id: (v.data, v.grad) for node_id, v in values.items()}
