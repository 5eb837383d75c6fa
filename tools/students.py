"""Students' Value classes for the grading tests and the bench: the reference class (tools/reference_value.py) with one
literal edit each, as a student's copy would have it, correct ones written differently, and the
submission a grader makes from each: every node built with the student's own operators, the student's
backward run, and data, grads and per-unit local gradients collected from the student's objects.

These are written apart from the service's own catalogue of mistakes (service/core/mistakes.py), so that
the tests check the grader against students, not against itself.
"""

import inspect
import math
from types import SimpleNamespace

from service.core import graphs as graph_module
from tools import reference_value as seed_value

RECURSIVE_BACKWARD = """    def backward(self):
        self.grad = 1
        self._propagate()

    def _propagate(self):
        for child, local_grad in zip(self._children, self._local_grads):
            child.grad += local_grad * self.grad
            child._propagate()
"""

KAHN_BACKWARD = """    def backward(self):
        users, stack, seen = {}, [self], {self}
        while stack:
            v = stack.pop()
            for child in v._children:
                users[child] = users.get(child, 0) + 1
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        self.grad = 1
        ready = [self]
        while ready:
            v = ready.pop(0)
            for child, local_grad in zip(v._children, v._local_grads):
                child.grad += local_grad * v.grad
                users[child] -= 1
                if users[child] == 0:
                    ready.append(child)
"""

BREADTH_FIRST_BACKWARD = """    def backward(self):
        order, seen = [self], {self}
        for v in order:
            for child in v._children:
                if child not in seen:
                    seen.add(child)
                    order.append(child)
        self.grad = 1
        for v in order:
            for child, local_grad in zip(v._children, v._local_grads):
                child.grad += local_grad * v.grad
"""

PRE_ORDER_BACKWARD = """    def backward(self):
        order, seen = [], set()

        def visit(v):
            if v not in seen:
                seen.add(v)
                order.append(v)
                for child in v._children:
                    visit(child)

        visit(self)
        self.grad = 1
        for v in order:
            for child, local_grad in zip(v._children, v._local_grads):
                child.grad += local_grad * v.grad
"""

SEED_BACKWARD = """    def backward(self):
        topo = build_topo(self)
        self.grad = 1
        for v in reversed(topo):
            for child, local_grad in zip(v._children, v._local_grads):
                child.grad += local_grad * v.grad
"""

#: A broken class: its edits of the reference class's source, and the service's name for the mistake
#: (any of them, where the numbers cannot tell them apart).
MISTAKES = {
    "mul computes a + b": ([("Value(self.data * other.data,", "Value(self.data + other.data,")], {"mul-computes-sum"}),
    "log is log10": ([("Value(math.log(self.data),", "Value(math.log10(self.data),")], {"log-computes-log10"}),
    "relu lets negatives through": ([("Value(max(0, self.data),", "Value(abs(self.data),")], {"relu-computes-abs"}),
    "pow's derivative keeps the exponent": (
        [("(other * self.data ** (other - 1),)", "(other * self.data**other,)")],
        {"pow-derivative-exponent-kept"},
    ),
    "exp's derivative is its input": ([("(math.exp(self.data),))", "(self.data,))")], {"exp-derivative-of-input"}),
    "relu's derivative is its output": (
        [("(float(self.data > 0),)", "(max(0, self.data),)")],
        {"relu-derivative-of-output"},
    ),
    "relu's derivative at 0 is 1": ([("(float(self.data > 0),)", "(float(self.data >= 0),)")], {"relu-derivative-at-zero"}),
    "log's derivative as 1/x**2": ([("(1 / self.data,)", "(1 / self.data**2,)")], {"log-derivative-squared"}),
    "mul's local grads not swapped": (
        [("(other.data, self.data))", "(self.data, other.data))")],
        {"mul-local-grads-not-swapped"},
    ),
    "sub's second child gets +1": (
        [("return self + (-other)", "return Value(self.data - other.data, (self, other), (1, 1))")],
        {"sub-second-child-sign"},
    ),
    "div gives b -1/b": (
        [
            (
                "return self * other**-1",
                "return Value(self.data / other.data, (self, other), (1 / other.data, -1 / other.data))",
            )
        ],
        {"div-second-child-reciprocal"},
    ),
    "= instead of +=": ([("child.grad += local_grad * v.grad", "child.grad = local_grad * v.grad")], {"assigns-instead-of-adding"}),
    "no chain rule": ([("child.grad += local_grad * v.grad", "child.grad += local_grad")], {"no-chain-rule"}),
    "output grad not set": ([("        self.grad = 1\n", "")], {"output-grad-not-set"}),
    "no topological order": ([(SEED_BACKWARD, RECURSIVE_BACKWARD)], {"no-topological-order"}),
    "a breadth-first backward": ([(SEED_BACKWARD, BREADTH_FIRST_BACKWARD)], {"breadth-first-walk", "no-topological-order"}),
    "a pre-order backward, not reversed": ([(SEED_BACKWARD, PRE_ORDER_BACKWARD)], {"preorder-walk", "no-topological-order"}),
    "pow's derivative without parentheses": (
        [("(other * self.data ** (other - 1),)", "(other * self.data ** other - 1,)")],
        {"pow-derivative-precedence"},
    ),
    "relu's derivative is always 1": ([("(float(self.data > 0),)", "(1,)")], {"relu-derivative-always-one"}),
    "-x detached from x": ([("return self * -1", "return Value(-self.data)")], {"neg-detached"}),
    "build_topo without a visited set": (
        [("        if v not in visited:\n            visited.add(v)\n", "        if True:\n")],
        {"topological-order-with-repeats"},
    ),
    "a repeated child counts once": (
        [("zip(v._children, v._local_grads)", "dict(zip(v._children, v._local_grads)).items()")],
        {"same-child-counted-once", "some-uses-not-added", "assigns-instead-of-adding"},
    ),
}  # fmt: skip

#: Mistakes in how a grader's loop runs the class rather than in the class: grads not reset between two
#: backward passes, the graph built again for the second (as a training loop does).
LOOP_MISTAKES = {"grads not reset between two passes": ({"leaf-grads-not-reset-twice"}, 2)}

#: A plain number on the right taken as the reference class's `__add__` and `__mul__` take it (`x - 2.0`).
WRAPPED = "other = other if isinstance(other, Value) else Value(other)\n        "

#: Correct classes written differently from the reference: each must pass every graph.
CORRECT = {
    "the reference class": [],
    "children added in reverse order": [
        ("zip(v._children, v._local_grads)", "reversed(list(zip(v._children, v._local_grads)))")
    ],
    "Kahn's algorithm": [(SEED_BACKWARD, KAHN_BACKWARD)],
    "a post-order of children in reverse": [("for child in v._children:", "for child in reversed(v._children):")],
    "sub and div computed at once": [
        ("return self + (-other)", f"{WRAPPED}return Value(self.data - other.data, (self, other), (1, -1))"),
        (
            "return self * other**-1",
            f"{WRAPPED}return Value(self.data / other.data, (self, other), (1 / other.data, -self.data / other.data**2))",
        ),
    ],
}


def student(edits):
    """The reference class's module with each (old, new) edit made exactly once."""
    source = inspect.getsource(seed_value)
    for old, new in edits:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    namespace = {"__name__": "student_value"}
    exec(compile(source, "<a student's Value class>", "exec"), namespace)
    return SimpleNamespace(**namespace)


def build(module, nodes, values=None):
    """Every node built with the student's operators, children first (the nodes are in that order);
    `values` keeps the leaves of an earlier build, as a training loop keeps its parameters."""
    values = dict(values or {})
    for node in nodes:
        if node["id"] in values and not node.get("children"):
            continue
        children = [values[c] for c in node.get("children", ())]
        op = node.get("op", "value")
        if op == "value":
            values[node["id"]] = module.Value(float(node["data"]))
        elif op == "pow":
            values[node["id"]] = children[0] ** float(node["exponent"])
        else:
            values[node["id"]] = module.OPS[op](*children)
    return values


def per_unit_local_grads(value, children):
    """What the student's node passes to each listed child per unit of its grad, through the Values the
    student's class built between them: the product of the recorded local gradients on the way (0 where the
    way is cut)."""
    grads = []
    for position, child in enumerate(children):
        product, holder, k = 1, value, position
        while True:
            if k >= len(holder._children):
                product = 0  # a Value built detached from its operand passes nothing on
                break
            product = holder._local_grads[k] * product
            holder, k = holder._children[k], 0
            if holder is child:
                break
        grads.append(product)
    return grads


def submission(module, nodes, output, fields=("data", "grad", "local_grads"), passes=1):
    """The grader's `submitted` for this student on this graph, or None where the student's code fails."""
    try:
        values = build(module, nodes)
        values[output].backward()
        for _ in range(passes - 1):
            values = build(module, nodes, values)
            values[output].backward()
        entries = []
        for node in nodes:
            value, entry = values[node["id"]], {"id": node["id"]}
            if "data" in fields:
                entry["data"] = value.data
            if "grad" in fields:
                entry["grad"] = value.grad
            if "local_grads" in fields and node.get("children"):
                entry["local_grads"] = per_unit_local_grads(value, [values[c] for c in node["children"]])
            numbers = [x for key, x in entry.items() if key != "id" for x in (x if isinstance(x, list) else [x])]
            if not all(isinstance(x, int | float) and math.isfinite(x) for x in numbers):
                return None
            entries.append(entry)
        return entries
    except (ArithmeticError, ValueError, TypeError, RecursionError):
        return None


def differ(a, b):
    """Beyond what rounding explains: the mistakes here are off by whole terms and factors."""
    return abs(a - b) > 1e-9 * max(abs(a), abs(b)) + 1e-12


def shows_a_difference(nodes, values, submitted) -> bool:
    """Whether any submitted number differs from the reference's beyond rounding: a graph on which the
    student's mistake does not show must pass, one on which it shows must not."""
    position = {node["id"]: i for i, node in enumerate(nodes)}
    for entry in submitted:
        reference = values[position[entry["id"]]]
        if any(differ(entry[field], getattr(reference, field)) for field in ("data", "grad") if field in entry):
            return True
        if "local_grads" in entry:
            node = nodes[position[entry["id"]]]
            local = graph_module.unit_flow(node, [values[position[c]].data for c in node["children"]], 1)
            if any(differ(s, r) for s, r in zip(entry["local_grads"], local)):
                return True
    return False


def mistake_site(module, nodes, output, submitted, values, passes=1):
    """(node, kind) where the student's mistake first shows, children first: a node the student builds
    wrong from the right children (forward, or local-gradient), else the first node whose grad is wrong
    while the grads of the nodes that use it are right (accumulation)."""
    position = {node["id"]: i for i, node in enumerate(nodes)}
    for node in nodes:
        if not node.get("children"):
            continue
        leaves = [module.Value(values[position[c]].data) for c in node["children"]]
        built = build(module, [*({"id": c, "data": leaf.data} for c, leaf in zip(node["children"], leaves)), node])
        try:
            data = built[node["id"]].data
        except (ArithmeticError, ValueError, TypeError):
            return node["id"], "forward"
        if differ(data, values[position[node["id"]]].data):
            return node["id"], "forward"
        local = per_unit_local_grads(built[node["id"]], [built[c] for c in node["children"]])
        reference_local = graph_module.unit_flow(node, [leaf.data for leaf in leaves], 1)
        if any(differ(a, b) for a, b in zip(local, reference_local)):
            return node["id"], "local-gradient"
    grads = {entry["id"]: entry["grad"] for entry in submitted}
    reached = set(graph_module.post_order([output], lambda i: [c for c in nodes[position[i]].get("children", ())]))
    users = {node["id"]: [] for node in nodes}
    for node in nodes:
        if node["id"] in reached:
            for c in node.get("children", ()):
                users[c].append(node["id"])
    for node in nodes:
        i = node["id"]
        wrong = differ(grads[i], values[position[i]].grad)
        if wrong and not any(differ(grads[p], values[position[p]].grad) for p in users[i]):
            return i, "accumulation"
    return None


def relu_of_a_computed_zero(nodes, values):
    """A relu whose input is computed and 0 or rounding noise around it in the reference (1 - x * x**-1
    is -2.2e-16): another correct order of the same operations may make it a tiny number of either sign,
    and relu's derivative there 0 or 1; the grader
    accepts both (service/core/ops.py, relu's gradient_drift), so such a graph tells nothing of relu's rule."""
    position = {node["id"]: i for i, node in enumerate(nodes)}
    return any(
        node.get("op") == "relu"
        and nodes[position[node["children"][0]]].get("children")
        and abs(values[position[node["children"][0]]].data) < 1e-9
        for node in nodes
    )


def relu_graph(leaves: list[float], weight: float) -> tuple[list[dict], object]:
    """relu over the given leaves (0, negative, positive), each result times `weight`, summed: relu's
    rules show on few random graphs otherwise."""
    nodes = [{"id": f"x{k}", "data": x} for k, x in enumerate(leaves)]
    nodes += [{"id": f"r{k}", "op": "relu", "children": [f"x{k}"]} for k in range(len(leaves))]
    nodes += [{"id": "w", "data": weight}]
    nodes += [{"id": f"m{k}", "op": "mul", "children": [f"r{k}", "w"]} for k in range(len(leaves))]
    nodes.append({"id": "s1", "op": "add", "children": ["m0", "m1"]})
    nodes += [{"id": f"s{k}", "op": "add", "children": [f"s{k - 1}", f"m{k}"]} for k in range(2, len(leaves))]
    return nodes, nodes[-1]["id"]


#: What relu_graph's leaves and weight are drawn from.
RELU_LEAVES, RELU_WEIGHTS = (0.0, -1.5, -0.5, 0.75, 2.0), (1.5, -2.0, 3.0)


def reference(nodes, output):
    """The reference evaluation (output, Values), or None where the graph cannot be evaluated."""
    try:
        return graph_module.evaluate(nodes, output)
    except graph_module.GraphError:
        return None
