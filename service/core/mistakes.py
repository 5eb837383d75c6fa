"""The mistakes students make in the reference `Value` class, each as a class of its own, and what each
would compute on a graph.

Every mistake is the engine's own source (service/core/engine.py) with one literal edit, as a student's
copy of the class would have it: `child.grad = ...` for `+=`, `n * x ** n` for pow's derivative, a
product's local gradients not swapped. The grader tests them as hypotheses: the graph is built and
differentiated with each class, and a mistake whose numbers reproduce a submission's wrong ones is a
likely cause. Because the classes are made from the engine, the hypotheses follow the reference class,
and a composite op (sub, div, neg) inherits a wrong primitive as a student's would.
"""

import inspect
import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.core import engine, graphs
from service.core.engine import Value
from service.core.ops import OPS
from service.core.traversal import Checkpoint, post_order

#: The kinds of root cause a mistake makes, as the grader names them.
FORWARD, LOCAL_GRADIENT, ACCUMULATION = "forward", "local-gradient", "accumulation"

#: The most node visits a backward pass without a topological order may make before its hypothesis is
#: given up (it passes grads along every path, which a graph can have exponentially many of), per node.
VISITS_PER_NODE = 50

_ADD = "return Value(self.data + other.data, (self, other), (1, 1))"
_MUL = "return Value(self.data * other.data, (self, other), (other.data, self.data))"
_POW = "(other * self.data ** (other - 1),)"
_LOG = "(1 / self.data,)"
_EXP = "(math.exp(self.data),))"
_RELU = "(float(self.data > 0),)"
_NEG = "return self * -1"
_SUB = "return self + (-other)"
_DIV = "return self * other**-1"
_WALK = "reversed(topological_order(root, checkpoint))"
_LOOP = """    for k, v in enumerate(reversed(topological_order(root, checkpoint))):
        if checkpoint and not k % CHECKPOINT_EVERY:
            checkpoint()
        for child, local_grad in zip(v._children, v._local_grads):
            child.grad += local_grad * v.grad"""


@dataclass(frozen=True)
class Mistake:
    """One known mistake: where it is (`rule`: the primitive or the backward pass), what kind of root
    cause it makes, what it does in a student's words, the fix, and the edit of the engine's source."""

    key: str
    rule: str
    kind: str
    does: str
    fix: str
    edit: tuple[str, str] | None = None
    backward_passes: int = 1
    rebuilt_between_passes: bool = False
    """With several passes: the graph's op nodes are built again for each (as a training loop does), its
    leaves kept with their grads."""
    module: dict = field(default=None, compare=False, repr=False)
    changes: frozenset[str] = frozenset()
    """The ops whose data or local gradients the mistake changes (every op, for a backward pass's)."""


def _mistakes() -> list[Mistake]:
    def forward(key, rule, does, fix, old, new):
        return Mistake(key, rule, FORWARD, does, fix, (old, new))

    def derivative(key, rule, does, fix, old, new):
        return Mistake(key, rule, LOCAL_GRADIENT, does, fix, (old, new))

    def backward(key, does, fix, old, new, passes=1, rebuilt=False):
        return Mistake(key, "the backward pass", ACCUMULATION, does, fix, (old, new), passes, rebuilt)

    direct_sub = "return Value(self.data - other.data, (self, other), (1, 1))"
    return [
        # forward rules: the rule of another op, or a slip of the same family
        forward("add-computes-product", "add", "add computes a * b", "it must compute a + b", _ADD, _ADD.replace("+ other", "* other")),
        forward("add-computes-difference", "add", "add computes a - b", "it must compute a + b", _ADD, _ADD.replace("+ other", "- other")),
        forward("mul-computes-sum", "mul", "mul computes a + b", "it must compute a * b", _MUL, _MUL.replace("* other.data,", "+ other.data,")),
        forward("pow-computes-product", "pow", "x ** n is computed as x * n", "compute self.data ** n", "Value(self.data**other,", "Value(self.data * other,"),
        forward("log-computes-log10", "log", "log computes the base-10 logarithm", "use the natural logarithm, math.log", "Value(math.log(self.data),", "Value(math.log10(self.data),"),
        forward("log-computes-exp", "log", "log computes exp(x)", "compute math.log(x)", "Value(math.log(self.data),", "Value(math.exp(self.data),"),
        forward("exp-computes-log", "exp", "exp computes log(x)", "compute math.exp(x)", "Value(math.exp(self.data),", "Value(math.log(self.data),"),
        forward("relu-computes-abs", "relu", "relu computes |x|", "it must compute max(0, x)", "Value(max(0, self.data),", "Value(abs(self.data),"),
        forward("relu-passes-negatives", "relu", "relu lets negative numbers through", "it must compute max(0, x)", "Value(max(0, self.data),", "Value(self.data,"),
        forward("sub-operands-reversed", "sub", "a - b computes b - a", "sub is self + (-other)", _SUB, "return other + (-self)"),
        forward("div-operands-reversed", "div", "a / b computes b / a", "div is self * other**-1", _DIV, "return other * self**-1"),
        # derivative rules
        derivative("mul-local-grads-not-swapped", "mul", "mul's local gradients are not swapped: each child gets its own data (a class that keeps its children in a set can scramble their order the same way)", "each child needs the OTHER factor: (other.data, self.data)", "(other.data, self.data))", "(self.data, other.data))"),
        derivative("mul-local-grads-ones", "mul", "mul's local gradients are (1, 1), as for a sum", "each child needs the other factor: (other.data, self.data)", "(other.data, self.data))", "(1, 1))"),
        derivative("add-local-grads-products", "add", "add's local gradients are the other child's data, as for a product", "each child of a sum gets 1: (1, 1)", _ADD, _ADD.replace("(1, 1))", "(other.data, self.data))")),
        derivative("pow-derivative-exponent-kept", "pow", "pow's derivative is n * x ** n: the exponent is not decreased by one", "use n * x ** (n - 1)", _POW, "(other * self.data**other,)"),
        derivative("pow-derivative-exponent-twice", "pow", "pow's derivative is n * x ** (n - 2): the exponent is decreased twice", "use n * x ** (n - 1)", _POW, "(other * self.data ** (other - 2),)"),
        derivative("pow-derivative-no-factor", "pow", "pow's derivative is x ** (n - 1): the factor n is missing", "use n * x ** (n - 1)", _POW, "(self.data ** (other - 1),)"),
        derivative("pow-derivative-precedence", "pow", "pow's derivative is written `n * x ** n - 1`, which Python reads as (n * x ** n) - 1", "write the exponent in parentheses: n * x ** (n - 1)", _POW, "(other * self.data ** other - 1,)"),
        derivative("log-derivative-squared", "log", "log's derivative is 1 / x**2", "the derivative of log x is 1 / x", _LOG, "(1 / self.data**2,)"),
        derivative("log-derivative-negated", "log", "log's derivative is -1 / x", "the derivative of log x is 1 / x", _LOG, "(-1 / self.data,)"),
        derivative("log-derivative-is-log", "log", "log's derivative is log x itself", "the derivative of log x is 1 / x", _LOG, "(math.log(self.data),)"),
        derivative("exp-derivative-of-input", "exp", "exp's derivative is taken in terms of the input, x, instead of the output", "the derivative of exp x is exp x, the node's own data", _EXP, "(self.data,))"),
        derivative("relu-derivative-of-output", "relu", "relu's derivative is taken in terms of the output, relu(x), instead of the input's sign", "the derivative of relu is 1 where x > 0 and 0 elsewhere: float(x > 0)", _RELU, "(max(0, self.data),)"),
        derivative("relu-derivative-at-zero", "relu", "relu's derivative at x = 0 is 1", "the reference uses 0 at 0: float(x > 0), not x >= 0", _RELU, "(float(self.data >= 0),)"),
        derivative("relu-derivative-reversed", "relu", "relu's derivative is 1 for negative x and 0 for positive", "it is float(x > 0)", _RELU, "(float(self.data < 0),)"),
        derivative("relu-derivative-always-one", "relu", "relu's derivative is 1 whatever the input", "it is 0 where x <= 0: float(x > 0)", _RELU, "(1,)"),
        derivative("neg-passes-grad-unchanged", "neg", "-x passes the grad on unchanged (local gradient 1)", "the local gradient of -x is -1", _NEG, "return Value(-self.data, (self,), (1,))"),
        derivative("neg-detached", "neg", "-x is a new Value with no children, so no grad flows back through it", "build it from x (`self * -1`), so the backward pass reaches x", _NEG, "return Value(-self.data)"),
        derivative("sub-second-child-sign", "sub", "a - b gives its second child +1", "the local gradient of b in a - b is -1", _SUB, direct_sub),
        derivative("div-second-child-reciprocal", "div", "a / b gives b the local gradient -1/b", "d(a/b)/db is -a/b**2", _DIV, "return Value(self.data / other.data, (self, other), (1 / other.data, -1 / other.data))"),
        derivative("div-second-child-not-squared", "div", "a / b gives b the local gradient -a/b", "d(a/b)/db is -a/b**2", _DIV, "return Value(self.data / other.data, (self, other), (1 / other.data, -self.data / other.data))"),
        # the backward pass
        backward("assigns-instead-of-adding", "the backward pass assigns each contribution (`child.grad = local_grad * v.grad`), so a node used more than once keeps only one", "add it: `child.grad += local_grad * v.grad`", "child.grad += local_grad * v.grad", "child.grad = local_grad * v.grad"),
        backward("no-chain-rule", "the backward pass adds the local gradient alone (`child.grad += local_grad`)", "the chain rule multiplies it by the node's grad: `child.grad += local_grad * v.grad`", "child.grad += local_grad * v.grad", "child.grad += local_grad"),
        backward("output-grad-not-set", "the backward pass does not start by setting the output's grad to 1, so every grad stays 0", "set `self.grad = 1` before walking the graph", "        self.grad = 1\n", "        pass\n"),
        backward("order-not-reversed", "the backward pass walks the topological order forward, children before the nodes that use them, so a node passes its grad on before it has received it", "walk `reversed(topo)`", _WALK, "topological_order(root, checkpoint)"),
        backward("breadth-first-walk", "the backward pass walks the nodes breadth-first from the output, which is no topological order: a node reached by a short path passes its grad on before the contributions of longer paths have reached it", "build the topological order (each node appended after its children) and walk it in reverse", _WALK, "breadth_first(root, checkpoint)"),
        backward("preorder-walk", "the backward pass walks the nodes in the order a depth-first search first reaches them (each appended before its children, a pre-order), which is no topological order: a node can pass its grad on before all of its users have added theirs", "append each node after its children (a post-order) and walk that list reversed", _WALK, "pre_order(root, checkpoint)"),
        backward("no-topological-order", "the backward pass walks no topological order: a node passes its grad on before all of its users have added theirs (a recursive backward that recurses as each contribution arrives, a breadth-first walk, a pre-order)", "build the topological order first and walk it in reverse, each node once", _LOOP, "    propagate_on_arrival(root, checkpoint)"),
        Mistake("some-uses-not-added", "the backward pass", ACCUMULATION, "some uses of the node were not added to its grad", "every use adds local_grad × grad: `child.grad += local_grad * v.grad` for each child of each node"),
        backward("same-child-counted-once", "a node used twice by one op (x * x, x + x) gets only one contribution: the children are kept by identity, as in a set or a dict", "keep every listed child, repeats included", "zip(v._children, v._local_grads)", "dict(zip(v._children, v._local_grads)).items()"),
        backward("leaf-grads-not-reset-twice", "the leaves' grads were not reset to 0 between two backward passes: each is twice the expected one", "zero the grads (`p.grad = 0`) before each backward pass", "        self.grad = 1\n", "        self.grad = 1\n", passes=2, rebuilt=True),
        backward("leaf-grads-not-reset-thrice", "the leaves' grads were not reset to 0 between three backward passes: each is three times the expected one", "zero the grads (`p.grad = 0`) before each backward pass", "        self.grad = 1\n", "        self.grad = 1\n", passes=3, rebuilt=True),
        backward("grads-not-reset-twice", "backward ran twice on the same graph without resetting the grads to 0 in between", "zero every grad before each backward pass", "        self.grad = 1\n", "        self.grad = 1\n", passes=2),
        backward("grads-not-reset-thrice", "backward ran three times on the same graph without resetting the grads to 0 in between", "zero every grad before each backward pass", "        self.grad = 1\n", "        self.grad = 1\n", passes=3),
        backward("topological-order-with-repeats", "the topological sort keeps no set of the nodes it has visited, so a node reached along several paths is listed, and passes its grad on, once per path", "keep a `visited` set in build_topo, so each node is listed once", "    return post_order((root,), _children, checkpoint)", "    return order_with_repeats(root, checkpoint)"),
    ]  # fmt: skip


def order_with_repeats(root: Value, checkpoint: Checkpoint | None = None) -> list[Value]:
    """The post-order of a build_topo with no visited set: a node once per path that reaches it, its
    children listed again each time. Past VISITS_PER_NODE entries a node it gives up."""
    budget = VISITS_PER_NODE * len(engine.topological_order(root))
    order, stack = [], [(root, iter(root._children))]
    while stack:
        v, pending = stack[-1]
        for child in pending:
            stack.append((child, iter(child._children)))
            break
        else:
            stack.pop()
            order.append(v)
            if len(order) > budget:
                raise TooManyVisits(len(order))
            if checkpoint and not len(order) % 4096:
                checkpoint()
    return order


def pre_order(root: Value, checkpoint: Checkpoint | None = None) -> list[Value]:
    """Each node once, appended when a depth-first search from root first reaches it, before its
    children (a build_topo that appends before recursing): no topological order."""
    order, seen, stack = [root], {id(root)}, [iter(root._children)]
    while stack:
        for child in stack[-1]:
            if id(child) not in seen:
                seen.add(id(child))
                order.append(child)
                stack.append(iter(child._children))
                break
        else:
            stack.pop()
        if checkpoint and not len(order) % 4096:
            checkpoint()
    return order


def breadth_first(root: Value, checkpoint: Checkpoint | None = None) -> list[Value]:
    """Each node once, breadth-first from root, children in their order: no topological order."""
    order, seen = [root], {id(root)}
    for v in order:
        for child in v._children:
            if id(child) not in seen:
                seen.add(id(child))
                order.append(child)
        if checkpoint and not len(order) % 4096:
            checkpoint()
    return order


class TooManyVisits(Exception):
    """A backward pass without a topological order went down more paths than it may."""


def propagate_on_arrival(root: Value, checkpoint: Checkpoint | None = None) -> None:
    """The backward pass of a class that has no topological order: a recursive `_backward` that, for each
    child in turn, adds the contribution and at once recurses into the child with the child's grad as it
    is then. Walked with an explicit stack; past VISITS_PER_NODE visits a node it gives up."""
    visits, budget = 0, VISITS_PER_NODE * len(engine.topological_order(root))
    stack = [(root, iter(zip(root._children, root._local_grads)))]
    while stack:
        v, pending = stack[-1]
        for child, local_grad in pending:
            child.grad += local_grad * v.grad
            visits += 1
            if visits > budget:
                raise TooManyVisits(visits)
            if checkpoint and not visits % 4096:
                checkpoint()
            stack.append((child, iter(zip(child._children, child._local_grads))))
            break
        else:
            stack.pop()


def _with_module(mistake: Mistake, source: str) -> Mistake:
    """The mistake with its class, and the ops it changes; one that no edit makes (it is recognised from a
    node's own numbers) has no class."""
    if mistake.edit is None:
        return mistake
    old, new = mistake.edit
    assert source.count(old) == 1, f"the edit of {mistake.key} must match the engine's source once: {old!r}"
    namespace = {
        "__name__": f"service.core.mistakes.{mistake.key}",
        "propagate_on_arrival": propagate_on_arrival,
        "order_with_repeats": order_with_repeats,
        "pre_order": pre_order,
        "breadth_first": breadth_first,
    }
    exec(compile(source.replace(old, new), f"<engine with the mistake {mistake.key}>", "exec"), namespace)
    changes = frozenset(OPS) if mistake.kind == ACCUMULATION else _changed_ops(namespace["Value"])
    return Mistake(**{**mistake.__dict__, "module": namespace, "changes": changes})


#: Inputs an op is tried on to see whether a mistake changes it: both signs, 0, and a fraction.
_PROBES = ((1.3, 0.7), (-0.6, 2.5), (0.0, -1.5), (2.0, 0.0))


def _changed_ops(value_class: type) -> frozenset[str]:
    """The ops whose data or per-unit local gradients differ, on some probe, between the reference class
    and `value_class`: a mistake in mul shows in mul, neg, sub and div."""
    changed = set()
    for name, op in OPS.items():
        node = {"op": name, **({"exponent": 3.0} if op.takes_exponent else {})}
        for probe in _PROBES:
            inputs = list(probe[: op.arity])
            try:
                reference = _data_and_local_grads(node, inputs, Value)
            except (ArithmeticError, ValueError, TypeError):
                continue
            try:
                mistaken = _data_and_local_grads(node, inputs, value_class)
            except (ArithmeticError, ValueError, TypeError):
                mistaken = None
            if mistaken != reference:
                changed.add(name)
                break
    return frozenset(changed)


def _data_and_local_grads(node, inputs, value_class):
    op = OPS[node["op"]]
    leaves = [value_class(x) for x in inputs]
    out = op.forward(*leaves, float(node["exponent"])) if op.takes_exponent else op.forward(*leaves)
    return out.data, graphs.unit_flow(node, inputs, 1, value_class)


MISTAKES: tuple[Mistake, ...] = tuple(_with_module(mistake, inspect.getsource(engine)) for mistake in _mistakes())
MISTAKE_NAMED = {mistake.key: mistake for mistake in MISTAKES}


class Prediction:
    """What a class with the mistake computes for each node: data and grad, None where it fails (a number
    it cannot compute, a pass it cannot finish); and, when asked, per-unit local gradients."""

    def __init__(self, mistake, nodes, kids, values, data, grad):
        self.mistake, self.nodes, self.kids, self.values = mistake, nodes, kids, values
        self.data, self.grad = data, grad
        self._local_grads = {}

    def local_grads(self, i: int) -> list[float] | None:
        if i not in self._local_grads:
            self._local_grads[i] = self._compute_local_grads(i)
        return self._local_grads[i]

    def _compute_local_grads(self, i):
        """What flows to each listed child through the Values the mistake's class builds, by their
        recorded local gradients, as a grader collects them from a student's objects (so a mistake in the
        backward pass itself does not show here); a recorded node's are as recorded."""
        node, kids = self.nodes[i], self.kids[i]
        if not kids or self.data[i] is None:
            return None
        if "op" not in node:
            return [float(g) for g in node["local_grads"]]
        along = graphs.flow_through_hidden(self.values[i], [self.values[c] for c in kids])
        if along is not None:
            return [_real(g) for g in along]
        try:
            grads = graphs.unit_flow(node, [self.data[c] for c in kids], 1, self.mistake.module["Value"])
        except (ArithmeticError, ValueError, TypeError):
            return None
        return [_real(g) for g in grads]


#: Graphs whose predictions are kept, the largest of them, and the most nodes of all those kept: graders send
#: the same graphs for many students, and one graph's predictions under every mistake cost far more than
#: grading one submission. What is kept stays in the worker, outside its memory budget: about 10 kB a node.
KEPT_GRAPHS = 256
KEPT_GRAPH_NODES = 256
KEPT_NODES = 2048
_kept: OrderedDict = OrderedDict()  # key -> (predictions, nodes)
_kept_nodes = 0
_kept_lock = threading.Lock()


def predictions(
    nodes: Sequence[dict],
    kids: Sequence[Sequence[int]],
    order: Sequence[int],
    output: int,
    reference: Sequence[Value],
    checkpoint: Checkpoint | None = None,
) -> list[Prediction]:
    """What every known mistake that can change this graph predicts on it (a mistake in an op the graph
    does not use changes nothing), the last small graphs' kept (KEPT_GRAPHS, KEPT_NODES)."""
    global _kept_nodes
    key = _graph_key(nodes, output) if len(nodes) <= KEPT_GRAPH_NODES else None
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key][0]
    ops = {node.get("op") for node in nodes}
    made = []
    for mistake in MISTAKES:
        if mistake.module is None or not (mistake.kind == ACCUMULATION or ops & mistake.changes):
            continue
        made.append(predict(mistake, nodes, kids, order, output, reference, checkpoint))
        if checkpoint:
            checkpoint()
    if key is not None:
        with _kept_lock:
            if key not in _kept:
                _kept[key] = made, len(nodes)
                _kept_nodes += len(nodes)
            while len(_kept) > KEPT_GRAPHS or _kept_nodes > KEPT_NODES:
                _kept_nodes -= _kept.popitem(last=False)[1][1]
    return made


def _graph_key(nodes, output):
    return output, tuple(
        (
            node["id"],
            node.get("op"),
            tuple(node.get("children", ())),
            node.get("data"),
            node.get("exponent"),
            tuple(node.get("local_grads", ())),
        )
        for node in nodes
    )


def predict(
    mistake: Mistake,
    nodes: Sequence[dict],
    kids: Sequence[Sequence[int]],
    order: Sequence[int],
    output: int,
    reference: Sequence[Value],
    checkpoint: Checkpoint | None = None,
) -> Prediction:
    """Build the graph with the mistake's class, children first, and run its backward pass from the
    output. A mistake of the backward pass alone builds nothing: its pass runs over the reference's own
    Values (their grads put back afterwards)."""
    n = len(nodes)
    if mistake.kind == ACCUMULATION and not mistake.rebuilt_between_passes:
        return Prediction(
            mistake,
            nodes,
            kids,
            list(reference),
            [v.data for v in reference],
            _grads_of(mistake, reference, output, checkpoint),
        )
    values = _built(mistake, nodes, kids, order, [None] * n)
    data = [None if value is None else value.data for value in values]
    built = list(values)
    grads: list[float | None] = [None] * n
    root = values[output]
    if root is not None and (
        None not in values or all(values[c] is not None for c in post_order((output,), kids.__getitem__))
    ):
        try:
            for k in range(mistake.backward_passes):
                if k and mistake.rebuilt_between_passes:
                    values = _built(
                        mistake, nodes, kids, order, [v if not kids[i] else None for i, v in enumerate(values)]
                    )
                values[output].backward(checkpoint)
            grads = [None if value is None else _real(value.grad) for value in values]
        except (TooManyVisits, ArithmeticError, ValueError, TypeError):
            pass
    return Prediction(mistake, nodes, kids, built, data, grads)


def _grads_of(mistake, reference, output, checkpoint):
    """The grads the mistake's backward pass gives the reference's Values; their own grads restored."""
    every = engine.topological_order(reference[output])
    kept = [v.grad for v in every]
    for v in every:
        v.grad = 0
    try:
        for _ in range(mistake.backward_passes):
            mistake.module["Value"].backward(reference[output], checkpoint)
        return [_real(v.grad) for v in reference]
    except (TooManyVisits, ArithmeticError, ValueError, TypeError):
        return [None] * len(reference)
    finally:
        for v, grad in zip(every, kept):
            v.grad = grad


def _built(mistake, nodes, kids, order, values):
    """The graph built with the mistake's class, children first, keeping the Values given; None for a
    node its class cannot compute, and for every node that depends on one."""
    value_class = mistake.module["Value"]
    for i in order:
        children = [values[c] for c in kids[i]]
        if values[i] is not None or any(child is None for child in children):
            continue
        try:
            values[i] = graphs.build_value(nodes, i, children, value_class=value_class)
        except (graphs.GraphError, ArithmeticError, ValueError, TypeError):
            continue
    return values


def _real(number: object) -> float | None:
    """A number a submission could hold, or None (a wrong rule can make a complex power)."""
    return number if type(number) in (int, float) else None


def reproduces(predicted: float | None, submitted: float, allowed: float) -> bool:
    """Whether a predicted number is the submitted one, within the grader's allowance or a billionth."""
    if predicted is None:
        return False
    if not math.isfinite(predicted) or not math.isfinite(submitted):
        return predicted == submitted or (math.isnan(predicted) and math.isnan(submitted))
    return abs(predicted - submitted) <= max(allowed, 1e-9 * abs(predicted))
