"""From a validated node list to evaluated Values: build each node's Value after its children (the
forward pass), then run the engine's backward pass from the output node.

Everything wrong with a graph that the schemas cannot see (ids, cycles, the choice of output,
numbers that leave the finite doubles) is found here and raised as a GraphError.
"""

import math
import operator

from service.engine import Value, topological_order
from service.ops import OPS
from service.timing import phase


class GraphError(Exception):
    """The graph cannot be evaluated; `errors` says at which nodes and why."""

    def __init__(self, kind, detail, errors):
        super().__init__(detail)
        self.kind, self.detail, self.errors = kind, detail, errors


def evaluate(nodes, output=None):
    """Evaluate a schema-valid node list: returns the output's id and one Value per node, in order."""
    with phase("build"):
        values = build_values(nodes)
    output = choose_output(nodes, values, output)
    root = values[output]
    with phase("backward"):
        root.backward()
    ordered = list(values.values())
    check_grads(nodes, ordered, root)
    return output, ordered


def build_values(nodes):
    """Every node's Value by id, in request order, each built after its children.

    A graph serialized the way it was built lists children first and takes one pass; a graph in any
    other order is put in order by `dependency_order` and built again.
    """
    values = {}
    for i, node in enumerate(nodes):
        try:
            inputs = [values[child] for child in node["children"]] if "children" in node else ()
        except KeyError:
            return build_in_dependency_order(nodes)
        values[node["id"]] = build_value(nodes, i, inputs)
    if len(values) != len(nodes):
        index_ids(nodes)  # raises, naming the duplicates
    return values


def build_in_dependency_order(nodes):
    values = {}
    for i in dependency_order(nodes):
        node = nodes[i]
        values[node["id"]] = build_value(nodes, i, [values[child] for child in node.get("children", ())])
    return {node["id"]: values[node["id"]] for node in nodes}


def build_value(nodes, i, inputs):
    """The Value of node i from its children's Values: the forward pass of one node."""
    node = nodes[i]
    op = node.get("op", "value")
    if op == "value":
        if "local_grads" in node:
            return Value(float(node["data"]), tuple(inputs), tuple(map(float, node["local_grads"])))
        return Value(float(node["data"]))
    try:
        value = OPS[op].forward(*inputs, node["exponent"]) if OPS[op].takes_exponent else OPS[op].forward(*inputs)
        if math.isfinite(value.data):  # a complex power raises TypeError here
            return value
    except (ArithmeticError, ValueError, TypeError):
        pass
    data = [v.data for v in inputs]
    raise GraphError(
        "numeric-error",
        "A node's value is not a finite number.",
        [_node_error(nodes, i, None, OPS[op].why_not_finite(data, node.get("exponent")), op=op, inputs=data)],
    )


def dependency_order(nodes):
    """Node positions, each after its children's: a depth-first post-order, walked with a stack."""
    children = resolve_children(nodes, index_ids(nodes))
    order = []
    state = bytearray(len(nodes))  # 0 unseen, 1 on the current path, 2 placed in order
    for root in range(len(nodes)):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(children[root]))]
        while stack:
            i, pending = stack[-1]
            for j in pending:
                if state[j] == 0:
                    state[j] = 1
                    stack.append((j, iter(children[j])))
                    break
                if state[j] == 1:
                    raise _cycle_error(nodes, [k for k, _ in stack], j)
            else:
                stack.pop()
                state[i] = 2
                order.append(i)
    return order


def index_ids(nodes):
    """Each id's position in `nodes`; ids must be unique."""
    index = {node["id"]: i for i, node in enumerate(nodes)}
    if len(index) == len(nodes):
        return index
    first, errors = {}, []
    for i, node in enumerate(nodes):
        if node["id"] in first:
            errors.append(_node_error(nodes, i, "id", f"Duplicate id: node {first[node['id']]} has it too."))
        else:
            first[node["id"]] = i
    raise GraphError("invalid-graph", "Node ids must be unique.", errors)


def resolve_children(nodes, index):
    """Each node's children as positions in `nodes`; every child must name a node."""
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


def choose_output(nodes, values, output):
    """The output's id: the one given, or else the one node that no other node uses."""
    if output is not None:
        if output not in values:
            raise GraphError(
                "invalid-graph",
                "The output is not a node.",
                [{"field": "output", "message": f"No node has the id {output!r}."}],
            )
        return output
    used = set()
    for node in nodes:
        used.update(node.get("children", ()))
    sinks = [node["id"] for node in nodes if node["id"] not in used]
    if len(sinks) == 1:
        return sinks[0]
    shown = ", ".join(map(repr, sinks[:10])) + (", ..." if len(sinks) > 10 else "")
    raise GraphError(
        "invalid-graph",
        "Several nodes are used by no other node; name the one to differentiate.",
        [
            {
                "field": "output",
                "message": f"No output was given and {len(sinks)} nodes are used by no other node: {shown}.",
            }
        ],
    )


def check_grads(nodes, values, root):
    """Every grad must be finite; if one is not, name the node nearest the output where it went wrong."""
    if all(map(math.isfinite, map(operator.attrgetter("grad"), values))):
        return
    position = {id(v): i for i, v in enumerate(values)}
    for v in reversed(topological_order(root)):
        i = position.get(id(v))
        if i is None or (math.isfinite(v.grad) and all(map(math.isfinite, v._local_grads))):
            continue
        node = nodes[i]
        op = node.get("op", "value")
        if math.isfinite(v.grad):  # the grad is fine but one of its local gradients is not
            data = [child.data for child in v._children]
            reason = OPS[op].why_not_finite(data, node.get("exponent"))
            raise GraphError(
                "numeric-error",
                "A local gradient is not a finite number.",
                [_node_error(nodes, i, None, reason, op=op, inputs=data)],
            )
        raise GraphError(
            "numeric-error",
            "A gradient is not a finite number.",
            [
                _node_error(
                    nodes,
                    i,
                    None,
                    f"The gradient of the output with respect to this node overflows ({v.grad!r}).",
                    op=op,
                )
            ],
        )


def _node_error(nodes, i, field, message, **extra):
    return {"node": nodes[i]["id"], "index": i, "field": field, "message": message, **extra}


def _cycle_error(nodes, path, repeated):
    cycle = [nodes[k]["id"] for k in path[path.index(repeated) :]] + [nodes[repeated]["id"]]
    message = "This node depends on itself: " + " -> ".join(map(repr, cycle)) + "."
    return GraphError(
        "invalid-graph", "The graph has a cycle.", [_node_error(nodes, repeated, "children", message, cycle=cycle)]
    )
