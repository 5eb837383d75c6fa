"""What the tests share: the project's root, the reference class's example, and node helpers."""

from service.contract.examples import EXAMPLE_GRAPH
from tools.server import ROOT

SEED_GRAPH = EXAMPLE_GRAPH

__all__ = ["ROOT", "SEED_GRAPH", "leaf", "op"]


def leaf(node_id, data) -> dict:
    """A leaf node of a request."""
    return {"id": node_id, "op": "value", "data": data}


def op(node_id, name, *children, **extra) -> dict:
    """An op node of a request."""
    return {"id": node_id, "op": name, "children": list(children), **extra}
