"""What the tests share: the project's root, the reference class's example, and node helpers."""

import math

from hypothesis import event, reject

from service.contract.examples import EXAMPLE_GRAPH
from service.core.grading import grade
from service.core.graphs import GraphError, unit_flow
from tools.server import ROOT

SEED_GRAPH = EXAMPLE_GRAPH

__all__ = ["ROOT", "SEED_GRAPH", "grade_or_reject", "leaf", "op"]


def leaf(node_id, data) -> dict:
    """A leaf node of a request."""
    return {"id": node_id, "op": "value", "data": data}


def op(node_id, name, *children, **extra) -> dict:
    """An op node of a request."""
    return {"id": node_id, "op": name, "children": list(children), **extra}


def grade_or_reject(nodes: list[dict], *args, **kwargs) -> dict:
    """grade(nodes, ...), or reject a random graph that grading refuses as documented (docs/grading.md): a
    reference local gradient beyond the doubles though the evaluation is not (1/x of log at a subnormal
    x, on a node the output does not depend on, which evaluation never differentiates). The refusal is
    checked: the named node's local gradients, made afresh by the reference op, are not all finite."""
    try:
        return grade(nodes, *args, **kwargs)
    except GraphError as error:
        assert error.kind == "numeric-error" and error.detail == "A local gradient is not a finite number.", error
        (fault,) = error.faults
        try:
            flows = unit_flow(nodes[fault.index], fault.inputs, 1)
        except ArithmeticError:  # Python's float power raises where the result leaves the doubles
            flows = [math.inf]
        assert not all(map(math.isfinite, flows)), fault
        event("rejected: a reference local gradient beyond the doubles")
        reject()
