"""From a validated node list to evaluated Values: resolve ids, build the Values children first (the
forward pass), then run the engine's backward pass from the output node.

Everything that can be wrong with a graph that the schemas cannot see (ids, cycles, the choice of
output, numbers that leave the doubles) is found here and raised as a GraphError.
"""
import math
import operator

from service.engine import Value, topological_order

COMPUTE = {
    "add": operator.add,
    "mul": operator.mul,
    "sub": operator.sub,
    "div": operator.truediv,
    "neg": operator.neg,
    "log": Value.log,
    "exp": Value.exp,
    "relu": Value.relu,
}


class GraphError(Exception):
    """The graph cannot be evaluated; `errors` says at which nodes and why."""

    def __init__(self, kind, detail, errors):
        super().__init__(detail)
        self.kind, self.detail, self.errors = kind, detail, errors


def evaluate(nodes, output=None):
    """Evaluate a schema-valid node list: returns the output's id and one Value per node, in order."""
    index = index_ids(nodes)
    children = resolve_children(nodes, index)
    out = choose_output(nodes, index, children, output)
    values = build_values(nodes, children)
    values[out].backward()
    check_grads(nodes, values, values[out])
    return nodes[out]["id"], values


def _node_error(nodes, i, field, message, **extra):
    return {"node": nodes[i]["id"], "index": i, "field": field, "message": message, **extra}


def index_ids(nodes):
    index = {node["id"]: i for i, node in enumerate(nodes)}
    if len(index) == len(nodes):
        return index
    first = {}
    errors = []
    for i, node in enumerate(nodes):
        if node["id"] in first:
            errors.append(_node_error(nodes, i, "id", f"Duplicate id: node {first[node['id']]} has it too."))
        else:
            first[node["id"]] = i
    raise GraphError("invalid-graph", "Node ids must be unique.", errors)


def resolve_children(nodes, index):
    """Each node's children as positions in `nodes`."""
    try:
        return [[index[child] for child in node["children"]] if "children" in node else () for node in nodes]
    except KeyError:
        errors = [
            _node_error(nodes, i, f"children[{k}]", f"No node has the id {child!r}.")
            for i, node in enumerate(nodes)
            for k, child in enumerate(node.get("children", ()))
            if child not in index
        ]
        raise GraphError("invalid-graph", "A child names no node.", errors) from None


def choose_output(nodes, index, children, output):
    """The output's position: the one given, or else the one node that no other node uses."""
    if output is not None:
        if output not in index:
            raise GraphError("invalid-graph", "The output is not a node.",
                             [{"field": "output", "message": f"No node has the id {output!r}."}])
        return index[output]
    used = set()
    for child_positions in children:
        used.update(child_positions)
    sinks = [i for i in range(len(nodes)) if i not in used]
    if len(sinks) == 1:
        return sinks[0]
    if not sinks:
        return 0  # every node is used by another, so there is a cycle: build_values names it
    shown = ", ".join(repr(nodes[i]["id"]) for i in sinks[:10]) + (", ..." if len(sinks) > 10 else "")
    raise GraphError("invalid-graph", "Several nodes are used by no other node; name the one to differentiate.",
                     [{"field": "output",
                       "message": f"No output was given and {len(sinks)} nodes are used by no other node: {shown}."}])


def build_values(nodes, children):
    """One Value per node, each built after its children, walking depth-first with an explicit stack."""
    values = [None] * len(nodes)
    on_path = bytearray(len(nodes))
    for root in range(len(nodes)):
        if values[root] is not None:
            continue
        on_path[root] = 1
        stack = [(root, iter(children[root]))]
        while stack:
            i, pending = stack[-1]
            for j in pending:
                if values[j] is None:
                    if on_path[j]:
                        raise _cycle_error(nodes, [k for k, _ in stack], j)
                    on_path[j] = 1
                    stack.append((j, iter(children[j])))
                    break
            else:
                stack.pop()
                on_path[i] = 0
                values[i] = build_value(nodes, i, [values[j] for j in children[i]])
    return values


def build_value(nodes, i, inputs):
    node = nodes[i]
    op = node.get("op", "value")
    if op == "value":
        if "local_grads" in node:
            return Value(float(node["data"]), tuple(inputs), tuple(map(float, node["local_grads"])))
        return Value(float(node["data"]))
    try:
        value = inputs[0] ** float(node["exponent"]) if op == "pow" else COMPUTE[op](*inputs)
        finite = math.isfinite(value.data) and all(map(math.isfinite, value._local_grads))
    except (ArithmeticError, ValueError, TypeError):  # TypeError: isfinite of a complex power
        finite = False
    if not finite:
        data = [v.data for v in inputs]
        raise GraphError("numeric-error", "A node's value or local gradient is not a finite number.",
                         [_node_error(nodes, i, None, numeric_reason(op, data, node.get("exponent")), op=op, inputs=data)])
    return value


def numeric_reason(op, inputs, exponent):
    """Why `op` at `inputs` leaves the finite doubles, in words."""
    x = inputs[0]
    if op == "log":
        return f"log({x!r}): log is defined only for numbers > 0." if x <= 0 else f"The derivative of log at {x!r}, 1/x, overflows."
    if op == "exp":
        return f"exp({x!r}) overflows."
    if op == "pow":
        if x == 0 and exponent < 0:
            return f"0 to the negative power {exponent!r} is undefined."
        if x < 0 and not float(exponent).is_integer():
            return f"({x!r}) ** {exponent!r}: a negative number to a fractional power is not a real number."
        if x == 0 and exponent < 1:
            return f"The derivative of x ** {exponent!r} at 0, {exponent!r} * 0 ** {exponent - 1!r}, is undefined."
        return f"({x!r}) ** {exponent!r} or its derivative overflows."
    if op == "div" and inputs[1] == 0:
        return "Division by zero: the second child is 0."
    return f"{op}({', '.join(map(repr, inputs))}) overflows."


def check_grads(nodes, values, output):
    if all(map(math.isfinite, (v.grad for v in values))):
        return
    position = {id(v): i for i, v in enumerate(values)}
    for v in reversed(topological_order(output)):  # the first non-finite grad on the way back is the cause
        if not math.isfinite(v.grad) and id(v) in position:
            i = position[id(v)]
            raise GraphError("numeric-error", "A gradient is not a finite number.",
                             [_node_error(nodes, i, None, f"The gradient of the output with respect to this node overflows ({v.grad!r}).",
                                          op=nodes[i].get("op", "value"))])


def _cycle_error(nodes, path, repeated):
    cycle = [nodes[k]["id"] for k in path[path.index(repeated):]] + [nodes[repeated]["id"]]
    return GraphError("invalid-graph", "The graph has a cycle.",
                      [_node_error(nodes, repeated, "children", "This node depends on itself: " + " -> ".join(map(repr, cycle)) + ".", cycle=cycle)])
