"""Graph suites for grading a Value class: every op and every backward rule, the same for the same variant.

`suite(count, variant)` answers `count` graph requests, named by what each exercises. The first ones
are one of each kind below, in this order; past them, random mixes and deep chains. So any suite of
at least `len(KINDS)` graphs exercises every op (each pow exponent among them), relu at exactly 0,
nodes used two and three times, `x op x` for each binary op, a chain hundreds deep, the composites
(sub, div and neg, which the reference class builds from mul, add and pow), mixes of them all, and
each of add, sub, mul and div with a plain number of the student's program (a leaf marked
`"constant": true`, see valuegraph.grading) on the left and on the right: the class's `__radd__`,
`__rsub__`, `__rmul__`, `__rtruediv__`, and its `+ - * /` taking a number. The kinds added last come
last, so that a suite of a variant keeps its other graphs.

Most graphs end in a product with a leaf other than 1, so that the grads below the output are not 1
and a backward pass that forgets the chain rule's factor is seen. The data keep every op defined with room to
spare: log of positive numbers, negative and fractional powers of numbers at least 0.25 from 0
(fractional ones of positive numbers only), no division by anything nearer 0 than 0.25, magnitudes
below 100.
"""

import math
import random
from collections.abc import Callable

#: The exponents the suite raises to: integers with any base, the fractional ones with positive bases.
EXPONENTS = (2, 3, -1, 0.5, -2, 1.5)
#: How deep the deep chains go (a recursive backward such as the reference class's still fits in
#: Python's default recursion limit).
CHAIN_DEPTH = 300
_UNARY = ("neg", "log", "exp", "relu")
_BINARY = ("add", "mul", "sub", "div")


class _Graph:
    """A graph request being written, with the approximate data of each node to keep every op defined."""

    def __init__(self, rng: random.Random):
        self.rng, self.nodes, self.data = rng, [], {}
        self.leaves = self.ops = self.constants = 0

    def leaf(self, value: float | None = None, low: float = 0.5, high: float = 2.0, signed: bool = True) -> str:
        if value is None:
            value = round(self.rng.uniform(low, high), 3)
            if signed and self.rng.random() < 0.4:
                value = -value
        self.leaves += 1
        node_id = f"x{self.leaves}"
        self.nodes.append({"id": node_id, "data": value})
        self.data[node_id] = value
        return node_id

    def constant(self) -> str:
        """A plain number of the student's program, neither 0 nor ±1 (so that a wrong operator shows)."""
        value = round(self.rng.uniform(1.5, 3.0), 3) * self.rng.choice((1, -1))
        self.constants += 1
        node_id = f"k{self.constants}"
        self.nodes.append({"id": node_id, "data": value, "constant": True})
        self.data[node_id] = value
        return node_id

    def op(self, name: str, *children: str, exponent: float | None = None) -> str:
        self.ops += 1
        node_id = f"n{self.ops}"
        node = {"id": node_id, "op": name, "children": list(children)}
        if name == "pow":
            node["exponent"] = exponent
        self.nodes.append(node)
        self.data[node_id] = _forward(name, [self.data[child] for child in children], exponent)
        return node_id

    def scaled(self, node_id: str) -> str:
        """node * a leaf other than 1: the node's grad is then not 1, so the chain rule's factor shows."""
        return self.op("mul", node_id, self.leaf(low=0.3, high=0.9))

    def request(self, output: str, shuffle: bool = False) -> dict:
        nodes = list(self.nodes)
        if shuffle:
            self.rng.shuffle(nodes)
        return {"nodes": nodes, "output": output}


def _forward(name: str, inputs: list[float], exponent: float | None) -> float:
    if name == "pow":
        return inputs[0] ** exponent
    return {
        "add": lambda a, b: a + b,
        "mul": lambda a, b: a * b,
        "sub": lambda a, b: a - b,
        "div": lambda a, b: a / b,
        "neg": lambda a: -a,
        "log": math.log,
        "exp": math.exp,
        "relu": lambda a: max(0.0, a),
    }[name](*inputs)


def _defined(name: str, inputs: list[float], exponent: float | None = None) -> bool:
    """The op is defined at `inputs` with room to spare, and its result stays of moderate size."""
    x = inputs[0]
    if name == "log" and x < 0.25:
        return False
    if name == "div" and abs(inputs[1]) < 0.25:
        return False
    if name == "pow" and (abs(x) < 0.25 or (x < 0.25 and not float(exponent).is_integer())):
        return False
    if name == "exp" and x > 3:
        return False
    return abs(_forward(name, inputs, exponent)) < 100


def _single_op(name: str, exponent: float | None = None) -> Callable[[_Graph], str]:
    def make(graph: _Graph) -> str:
        positive = name == "log" or (name == "pow" and not float(exponent).is_integer())
        first = graph.leaf(signed=not positive)
        if name in _BINARY:
            return graph.scaled(graph.op(name, first, graph.leaf()))
        return graph.scaled(graph.op(name, first, exponent=exponent))

    return make


def _relu_of(sign: float) -> Callable[[_Graph], str]:
    def make(graph: _Graph) -> str:
        return graph.scaled(graph.op("relu", graph.leaf(sign * round(graph.rng.uniform(0.5, 2), 3))))

    return make


def _relu_at_zero(graph: _Graph) -> str:
    """relu at exactly 0, three ways: a leaf 0.0, x - x, and a - b with a and b equal: its gradient there is 0."""
    x = graph.leaf()
    twin = graph.data[x]
    at_zero = [graph.leaf(0.0), graph.op("sub", x, x), graph.op("sub", x, graph.leaf(twin))]
    total = graph.op("relu", at_zero[0])
    for node in at_zero[1:]:
        total = graph.op("add", total, graph.op("relu", node))
    return graph.scaled(graph.op("add", total, x))


def _same_child_twice(name: str) -> Callable[[_Graph], str]:
    def make(graph: _Graph) -> str:
        x = graph.leaf(signed=name != "div")
        return graph.scaled(graph.op(name, x, x))

    return make


def _used_twice(graph: _Graph) -> str:
    """The reference class's own example, scaled: a is used by c and d."""
    a, b = graph.leaf(low=1, high=3, signed=False), graph.leaf(low=1, high=3, signed=False)
    c = graph.op("add", a, b)
    d = graph.op("mul", c, a)
    return graph.scaled(graph.op("log", d))


def _used_three_times(graph: _Graph) -> str:
    """h = x * y used by three nodes at three depths, the last listing it first: a backward pass out of
    topological order (breadth-first, a pre-order, recursing as each contribution arrives) passes h's
    grad on before the deeper uses have added to it. h is an op: a leaf passes nothing on, so a leaf
    used many times shows no such mistake."""
    x, y = graph.leaf(low=0.5, high=1.5, signed=False), graph.leaf()
    h = graph.op("mul", x, y)
    first = graph.op("mul", graph.leaf(low=0.5, high=1.5), h)
    second = graph.op("sub", first, h)
    third = graph.op("mul", h, second)
    return graph.scaled(third)


def _composites(graph: _Graph) -> str:
    """sub, div and neg over each other: (a - b) / (c - -d) - -((a - b) / b), a - b one node used at two
    depths (a backward pass out of topological order passes its grad on too early)."""
    a, b = graph.leaf(low=1, high=2), graph.leaf(low=0.5, high=1, signed=False)
    c, d = graph.leaf(low=2, high=3, signed=False), graph.leaf(low=0.5, high=1, signed=False)
    difference = graph.op("sub", a, b)
    left = graph.op("div", difference, graph.op("sub", c, graph.op("neg", d)))
    right = graph.op("neg", graph.op("div", difference, b))
    return graph.scaled(graph.op("sub", left, right))


def _softmax(graph: _Graph) -> str:
    """A cross-entropy loss over a softmax with the maximum subtracted first (a mathematically zero
    gradient that rounding leaves a little off 0, as in every classifier's loss)."""
    logits = [graph.leaf(low=-2, high=2) for _ in range(4)]
    top = max(logits, key=graph.data.__getitem__)
    exps = [graph.op("exp", graph.op("sub", logit, top)) for logit in logits]
    total = exps[0]
    for term in exps[1:]:
        total = graph.op("add", total, term)
    target = graph.rng.randrange(len(logits))
    return graph.op("neg", graph.op("log", graph.op("div", exps[target], total)))


def _neuron_layer(graph: _Graph) -> str:
    """Two relu neurons over shared inputs and their squared error: weights used once, inputs many times."""
    inputs = [graph.leaf() for _ in range(3)]
    loss = None
    for _ in range(2):
        total = graph.leaf(low=0.1, high=0.5)
        for x in inputs:
            total = graph.op("add", total, graph.op("mul", graph.leaf(low=0.2, high=1), x))
        error = graph.op("sub", graph.op("relu", total), graph.leaf(low=0, high=1))
        square = graph.op("pow", error, exponent=2)
        loss = square if loss is None else graph.op("add", loss, square)
    return graph.scaled(loss)


def _chain(depth: int) -> Callable[[_Graph], str]:
    def make(graph: _Graph) -> str:
        """A chain `depth` deep of primitive ops, each add or mul with a fresh leaf but every tenth
        with the same one, so that a leaf is used depth / 10 times at as many depths."""
        shared = graph.leaf(low=0.9, high=1.1, signed=False)
        node = graph.leaf(low=0.5, high=2, signed=False)
        steps = 0
        while steps < depth:
            reuse = steps % 10 == 9
            name = graph.rng.choice(("add", "mul") if reuse else ("add", "mul", "mul", "pow", "log", "exp", "relu"))
            exponent = graph.rng.choice(EXPONENTS) if name == "pow" else None
            inputs = [graph.data[node]]
            if name in ("add", "mul"):
                fresh = round(graph.rng.uniform(0.8, 1.25) if name == "mul" else graph.rng.uniform(-0.5, 0.5), 3)
                inputs.append(graph.data[shared] if reuse else fresh)
            if not _defined(name, inputs, exponent) or not 0.25 <= abs(_forward(name, inputs, exponent)) <= (
                5 if reuse else 4
            ):
                continue
            others = [shared if reuse else graph.leaf(inputs[1])] if len(inputs) == 2 else []
            node = graph.op(name, node, *others, exponent=exponent)
            steps += 1
        return graph.scaled(node)

    return make


def _with_a_number(name: str, number_first: bool) -> Callable[[_Graph], str]:
    def make(graph: _Graph) -> str:
        """`2.5 - x` (or `x - 2.5`) times a leaf: x's grad reaches it through the operator's factor."""
        number, x = graph.constant(), graph.leaf()
        return graph.scaled(graph.op(name, *((number, x) if number_first else (x, number))))

    return make


def _mix(graph: _Graph) -> str:
    """A random graph of 10 to 40 ops drawn from all of them, over 3 to 6 leaves, recent nodes reused."""
    pool = [graph.leaf() for _ in range(graph.rng.randint(3, 6))]
    uses = dict.fromkeys(pool, 0)
    target = graph.rng.randint(10, 40)
    while graph.ops < target:
        name = graph.rng.choice(("pow", *_UNARY, *_BINARY))
        exponent = graph.rng.choice(EXPONENTS) if name == "pow" else None
        children = [graph.rng.choice(pool[-8:]) for _ in range(2 if name in _BINARY else 1)]
        inputs = [graph.data[child] for child in children]
        if not _defined(name, inputs, exponent):
            continue
        node = graph.op(name, *children, exponent=exponent)
        for child in children:
            uses[child] += 1
        pool.append(node)
        uses[node] = 0
    unused = [node for node in pool if uses[node] == 0]
    total = unused[0]
    for node in unused[1:]:  # every node feeds the output
        total = graph.op("add", total, node)
    return graph.scaled(total)


#: The kinds of graph, in the order a suite starts with: (name, how to write it).
KINDS: list[tuple[str, Callable[[_Graph], str]]] = [
    *((name, _single_op(name)) for name in ("add", "mul", "sub", "div", "neg", "log", "exp")),
    *((f"pow {exponent}", _single_op("pow", exponent)) for exponent in EXPONENTS),
    ("relu of a positive", _relu_of(1.0)),
    ("relu of a negative", _relu_of(-1.0)),
    ("relu at exactly 0", _relu_at_zero),
    *((f"x {symbol} x", _same_child_twice(name)) for name, symbol in zip(_BINARY, "+*-/")),
    ("a node used twice", _used_twice),
    ("a node used three times", _used_three_times),
    ("sub, div and neg together", _composites),
    ("softmax and cross-entropy", _softmax),
    ("a layer of relu neurons", _neuron_layer),
    (f"a chain {CHAIN_DEPTH} deep", _chain(CHAIN_DEPTH)),
    ("a random mix of ops", _mix),
    ("a number + x (__radd__)", _with_a_number("add", number_first=True)),
    ("x + a number (__add__ of a number)", _with_a_number("add", number_first=False)),
    ("a number - x (__rsub__)", _with_a_number("sub", number_first=True)),
    ("x - a number (__sub__ of a number)", _with_a_number("sub", number_first=False)),
    ("a number * x (__rmul__)", _with_a_number("mul", number_first=True)),
    ("x * a number (__mul__ of a number)", _with_a_number("mul", number_first=False)),
    ("a number / x (__rtruediv__)", _with_a_number("div", number_first=True)),
    ("x / a number (__truediv__ of a number)", _with_a_number("div", number_first=False)),
]


def suite(count: int = len(KINDS), variant: int = 0) -> dict[str, dict]:
    """`count` graph requests, each named by what it exercises ("relu at exactly 0 (graph 17)"): one
    of each of KINDS first, then random mixes, with every fifth a deep chain. The same count and
    variant give the same graphs; another variant draws other random data."""
    if count < 0:
        raise ValueError("A suite has 0 graphs or more.")
    rng = random.Random(variant)
    graphs = {}
    for i in range(count):
        if i < len(KINDS):
            kind, make = KINDS[i]
        elif i % 5 == 0:
            kind, make = f"a chain {CHAIN_DEPTH} deep", _chain(CHAIN_DEPTH)
        else:
            kind, make = "a random mix of ops", _mix
        graph = _Graph(random.Random(rng.getrandbits(64)))
        output = make(graph)
        graphs[f"{kind} (graph {i + 1})"] = graph.request(output, shuffle=make is _mix)
    return graphs
