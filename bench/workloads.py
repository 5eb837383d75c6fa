"""The benchmark's graphs, generated from a fixed seed so that every run measures the same bytes.

Each large workload is a request body (bytes) plus what its answer must satisfy; the bench keeps
only the bytes and the expected numbers, not the Python objects, so that its own heap stays small.
"""

import math
import random
from collections import deque
from dataclasses import dataclass, field

import orjson

from bench.gpt import GPTConfig, training_loss
from bench.tracer import Tape, recorded_nodes

SEED = 20240601


@dataclass(frozen=True)
class Scale:
    """How big each workload is and how often it is measured."""

    gpt: GPTConfig
    dag_nodes: int
    chain_nodes: int
    plot_sizes: tuple  # more random DAG sizes for the time-against-size plot, besides dag_nodes
    gpt_repeats: int
    large_repeats: int
    load_seconds: int  # each run of the small-graph load
    load_runs: int


SCALES = {
    "full": Scale(GPTConfig(), 1_000_000, 1_000_000, (1_000, 10_000, 100_000), 5, 3, 5, 5),
    "tiny": Scale(GPTConfig(vocab_size=5, n_embd=4, n_head=2, block_size=3), 2_000, 2_000, (100, 500), 2, 2, 1, 1),
}


@dataclass
class Workload:
    """One request body, its node count and, for gpt-step, every node's (data, grad) in request
    order as the in-process Value backward computed them: the service must answer exactly these.
    A deep workload is also run through micrograd with Python's default recursion limit."""

    name: str
    body: bytes
    nodes: int
    expected: list = field(default=None, repr=False)
    deep: bool = False


def body(nodes, output=None):
    return orjson.dumps({"nodes": nodes, **({"output": output} if output is not None else {})})


def gpt_step(config):
    """The same training step twice: as op nodes and as recorded nodes (every Value, dumped)."""
    tape = Tape()
    loss = training_loss(config, random.Random(SEED), tape.leaf)
    recorded, values = recorded_nodes(loss.value)
    loss.value.backward()
    # Some weights (unused token rows) are no input of the loss, so the op form names its output.
    op_form = Workload(
        "gpt-step ops", body(tape.nodes, loss.id), len(tape.nodes), [(v.data, v.grad) for v in tape.values]
    )
    recorded_form = Workload("gpt-step recorded", body(recorded), len(recorded), [(v.data, v.grad) for v in values])
    return op_form, recorded_form


# Random DAG: each op is chosen, among those that keep the result in range, from the values of its
# children, so that every data and local gradient stays finite; see random_dag.
LOW, HIGH = 0.1, 10.0
EXPONENTS = (2, 3, 0.5, -1, -0.5)


def _apply(op, a, b, exponent):
    """The node's data as the seed computes it (sub is a + (-b), div is a * b**-1), or None if the op
    does not apply to these inputs."""
    try:
        if op == "add":
            return a + b
        if op == "sub":
            return a + b * -1
        if op == "mul":
            return a * b
        if op == "div":
            return a * b**-1
        if op == "neg":
            return a * -1
        if op == "pow":
            return a**exponent if (a > 0 or float(exponent).is_integer()) else None
        if op == "log":
            return math.log(a) if a > 0 else None
        if op == "exp":
            return math.exp(a)
        return max(0, a)  # relu
    except ZeroDivisionError:
        return None


def _in_range(op, result, a, b, exponent):
    """Magnitudes between LOW and HIGH (0 only out of relu), and local gradients of at most HIGH."""
    if result is None or not (LOW <= abs(result) <= HIGH or (op == "relu" and result == 0)):
        return False
    if op == "mul":
        local = max(abs(a), abs(b))
    elif op == "div":
        local = max(1 / abs(b), abs(a) / b**2)
    elif op == "pow":
        local = abs(exponent * a ** (exponent - 1))
    elif op == "log":
        local = 1 / abs(a)
    elif op == "exp":
        local = result
    else:
        local = 1
    return local <= HIGH


BINARY_OPS = ("add", "mul", "sub", "div")
UNARY_OPS = ("neg", "pow", "log", "exp", "relu")
ALL_OPS = BINARY_OPS + UNARY_OPS


def random_dag(n, rng):
    """n nodes, about 1 in 10 a leaf in ±[0.5, 2], the others random ops on earlier nodes.

    Every node is used: an op's first child is the oldest node that is no op's first child yet (its
    second is any earlier node), and the nodes still waiting at the end are summed pairwise into the
    one output. So the backward pass reaches every node, and the longest path stays short (hundreds)."""
    nodes, data = [], []
    waiting = deque()  # nodes that are no op's first child yet, oldest first

    def append(node, value):
        node["id"] = len(nodes)
        nodes.append(node)
        data.append(value)
        waiting.append(node["id"])

    # A leaf adds a node and a waiting one (two nodes in the end, with its fold); an op adds one.
    while (to_go := n - (len(nodes) + len(waiting) - 1)) > 0:
        if len(nodes) < 2 or (to_go >= 2 and rng.random() < 0.1):
            x = rng.choice((-1, 1)) * rng.uniform(0.5, 2.0)
            append({"op": "value", "data": x}, x)
            continue
        first, second = waiting.popleft(), rng.randrange(len(nodes))
        a, b = data[first], data[second]
        for op in rng.sample(ALL_OPS, len(ALL_OPS)):
            exponent = rng.choice(EXPONENTS)
            result = _apply(op, a, b, exponent)
            if _in_range(op, result, a, b, exponent):
                break
        else:  # no op fits (a is relu's 0 and b is 0 too): 0 + 0 is still 0
            op, result = "add", a + b
        node = {"op": op, "children": [first, second] if op in BINARY_OPS else [first]}
        if op == "pow":
            node["exponent"] = exponent
        append(node, result)
    while len(waiting) > 1:  # the fold
        a, b = waiting.popleft(), waiting.popleft()
        append({"op": "add", "children": [a, b]}, data[a] + data[b])
    return nodes


# exp then log, pow 2 then pow 0.5, neg twice, relu of a positive number: each pair gives back its
# input (up to rounding), so the value stays near 0.5 and the gradient near 1 however deep the chain.
CHAIN_CYCLE = (
    {"op": "exp"},
    {"op": "log"},
    {"op": "pow", "exponent": 2},
    {"op": "pow", "exponent": 0.5},
    {"op": "neg"},
    {"op": "neg"},
    {"op": "relu"},
)


def chain(n):
    """A leaf and n - 1 unary ops, each on the node before it: n nodes, n deep."""
    nodes = [{"id": 0, "op": "value", "data": 0.5}]
    for i in range(1, n):
        nodes.append({"id": i, **CHAIN_CYCLE[(i - 1) % len(CHAIN_CYCLE)], "children": [i - 1]})
    return nodes


def small_graph():
    """Ten nodes, one of each op and two leaves: the seed's example grown a little."""
    return [
        {"id": "a", "op": "value", "data": 2.0},
        {"id": "b", "op": "value", "data": 3.0},
        {"id": "c", "op": "add", "children": ["a", "b"]},
        {"id": "d", "op": "mul", "children": ["c", "a"]},
        {"id": "e", "op": "log", "children": ["d"]},
        {"id": "f", "op": "pow", "children": ["b"], "exponent": 2},
        {"id": "g", "op": "div", "children": ["e", "f"]},
        {"id": "h", "op": "exp", "children": ["g"]},
        {"id": "i", "op": "sub", "children": ["a", "h"]},
        {"id": "j", "op": "relu", "children": ["i"]},
    ]


def large_workloads(scale, names):
    """The large workloads among `names`, generated in this order."""
    workloads = []
    if "gpt-step" in names:
        workloads += gpt_step(scale.gpt)
    if "dag" in names:
        workloads.append(
            Workload(
                f"random DAG {scale.dag_nodes:,}",
                body(random_dag(scale.dag_nodes, random.Random(SEED))),
                scale.dag_nodes,
            )
        )
    if "chain" in names:
        workloads.append(
            Workload(f"chain {scale.chain_nodes:,} deep", body(chain(scale.chain_nodes)), scale.chain_nodes, deep=True)
        )
    return workloads
