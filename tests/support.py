"""What the tests share: the project's root, the reference class's example, and node helpers."""

from hypothesis import reject

from service.contract.examples import EXAMPLE_GRAPH
from service.core.grading import grade
from service.core.graphs import GraphError
from tools.server import ROOT

SEED_GRAPH = EXAMPLE_GRAPH

__all__ = ["ROOT", "SEED_GRAPH", "grade_or_reject", "leaf", "op"]


def leaf(node_id, data) -> dict:
    """A leaf node of a request."""
    return {"id": node_id, "op": "value", "data": data}


def op(node_id, name, *children, **extra) -> dict:
    """An op node of a request."""
    return {"id": node_id, "op": name, "children": list(children), **extra}


def grade_or_reject(*args, **kwargs) -> dict:
    """grade(...), or reject a random graph that grading refuses as documented: a reference local
    gradient beyond the doubles though the evaluation is not (1/x of log at a subnormal x, on a node
    the output does not depend on, which evaluation never differentiates)."""
    try:
        return grade(*args, **kwargs)
    except GraphError as error:
        assert error.kind == "numeric-error" and error.detail == "A local gradient is not a finite number.", error
        reject()
