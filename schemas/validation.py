"""Fast acceptance: True exactly when the schemas in schemas/graph.py would load a request.

marshmallow's machinery costs more than evaluating a small graph, so a request is first checked here
in plain Python; only a refused one goes through the schemas, which say why. Each rule restates one
of the schemas' (the key sets are read from their fields); tests/test_validation_differential.py
proves the two equal on random input.
"""

from schemas.graph import (
    GraphRequestSchema,
    LeafNodeSchema,
    OperationNodeSchema,
    RecordedNodeSchema,
    is_id,
    is_number,
)
from service.ops import OPS

_LEAF_KEYS = frozenset(LeafNodeSchema().fields)
_OPERATION_KEYS = frozenset(OperationNodeSchema().fields)
_RECORDED_KEYS = frozenset(RecordedNodeSchema().fields)
_REQUEST_KEYS = frozenset(GraphRequestSchema().fields)


def is_valid_request(document: object, max_nodes: int | None = None) -> bool:
    """True exactly when GraphRequestSchema(max_nodes=max_nodes).load(document) would succeed."""
    if type(document) is not dict or not document.keys() <= _REQUEST_KEYS:
        return False
    nodes = document.get("nodes")
    return (
        type(nodes) is list
        and len(nodes) > 0
        and (max_nodes is None or len(nodes) <= max_nodes)
        and ("output" not in document or is_id(document["output"]))
        and all(map(node_is_valid, nodes))
    )


def node_is_valid(node: object) -> bool:
    """True exactly when the node's schema would load it."""
    if type(node) is not dict or not is_id(node.get("id")):
        return False
    if "op" in node:
        name = node["op"]
        if name == "value":
            return node.keys() <= _LEAF_KEYS and is_number(node.get("data"))
        op = OPS.get(name) if type(name) is str else None
        children = node.get("children")
        return (
            op is not None
            and node.keys() <= _OPERATION_KEYS
            and type(children) is list
            and len(children) == op.arity
            and all(map(is_id, children))
            and (is_number(node.get("exponent")) if op.takes_exponent else "exponent" not in node)
        )
    if "children" in node or "local_grads" in node:
        children, local_grads = node.get("children"), node.get("local_grads")
        return (
            node.keys() <= _RECORDED_KEYS
            and is_number(node.get("data"))
            and type(children) is list
            and type(local_grads) is list
            and len(children) == len(local_grads)
            and all(map(is_id, children))
            and all(map(is_number, local_grads))
        )
    return node.keys() <= _LEAF_KEYS and is_number(node.get("data"))
