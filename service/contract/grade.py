"""The body of POST /v1/grade (an evaluation request plus what a submission computed) and its answer.

As for a graph request, `is_valid_grade_request` restates the schemas' rules in plain Python, so that a
valid request skips marshmallow's machinery; marshmallow runs only to explain a refusal.
"""

from marshmallow import Schema, fields, validate

from service.contract.graph import (
    CappedList,
    GraphRequestSchema,
    Id,
    Number,
    StrictSchema,
    is_id,
    is_number,
    is_valid_request,
)
from service.core.grading import DEFAULT_TOLERANCE, ROOT_CAUSE_KINDS, VERDICTS

_SUBMITTED_KEYS = frozenset(("id", "data", "grad", "local_grads"))
_TOLERANCE_KEYS = frozenset(("rtol", "atol"))
_GRADE_KEYS = frozenset(("nodes", "output", "submitted", "tolerance"))
_GRAPH_KEYS = ("nodes", "output")


class SubmittedSchema(StrictSchema):
    """What the submission computed for one node; every field but `id` is optional."""

    id = Id(required=True, metadata={"description": "The node's id in `nodes`; at most one entry per node."})
    data = Number(metadata={"description": "The submission's forward value of the node."})
    grad = Number(metadata={"description": "The submission's d(output)/d(node)."})
    local_grads = CappedList(
        Number(),
        is_number,
        metadata={
            "description": "One per child, in the node's children order; only for a node with children. For neg, "
            "sub and div, which the reference Value class builds from several Values, the local gradient for a listed child is "
            "what its backward pass passes to that child per unit of the node's grad through the hidden Values "
            "(a - b: 1 and -1; a / b: 1/b and -a/b**2)."
        },
    )


_NON_NEGATIVE = validate.Range(min=0, error="A tolerance must be a number >= 0.")


class ToleranceSchema(StrictSchema):
    """A submitted number s matches the reference r when |s - r| <= atol + rtol * |r| (numpy.isclose with
    the reference as b). rtol = atol = 0 means bit-exact."""

    rtol = Number(
        validate=_NON_NEGATIVE, metadata={"description": f"Relative tolerance. Default {DEFAULT_TOLERANCE.rtol}."}
    )
    atol = Number(
        validate=_NON_NEGATIVE, metadata={"description": f"Absolute tolerance. Default {DEFAULT_TOLERANCE.atol:g}."}
    )


class GradeRequestSchema(GraphRequestSchema):
    """The body of POST /v1/grade: the graph exactly as for /v1/evaluate, plus `submitted` and `tolerance`."""

    submitted = CappedList(
        fields.Nested(SubmittedSchema),
        lambda entry: _submitted_is_valid(entry),
        required=True,
        metadata={"description": "The submission's values for any subset of the nodes."},
    )
    tolerance = fields.Nested(ToleranceSchema)


def is_valid_grade_request(document: object, max_nodes: int | None = None) -> bool:
    """True exactly when GradeRequestSchema(max_nodes=max_nodes).load(document) would succeed."""
    if type(document) is not dict or not document.keys() <= _GRADE_KEYS:
        return False
    submitted, tolerance = document.get("submitted"), document.get("tolerance", {})
    return (
        type(submitted) is list
        and all(map(_submitted_is_valid, submitted))
        and type(tolerance) is dict
        and tolerance.keys() <= _TOLERANCE_KEYS
        and all(is_number(x) and x >= 0 for x in tolerance.values())
        and is_valid_request({key: document[key] for key in _GRAPH_KEYS if key in document}, max_nodes)
    )


def _submitted_is_valid(entry):
    if type(entry) is not dict or not entry.keys() <= _SUBMITTED_KEYS or not is_id(entry.get("id")):
        return False
    local_grads = entry.get("local_grads", [])
    return (
        all(is_number(entry[key]) for key in ("data", "grad") if key in entry)
        and type(local_grads) is list
        and all(map(is_number, local_grads))
    )


class VerdictSchema(Schema):
    """Per submitted field: "match", "mismatch" (a root cause, or explained by one) or "not-submitted"."""

    data = fields.String(required=True, validate=validate.OneOf(VERDICTS))
    grad = fields.String(required=True, validate=validate.OneOf(VERDICTS))
    local_grads = fields.String(required=True, validate=validate.OneOf(VERDICTS))


class GradedNodeSchema(Schema):
    id = Id(required=True)
    data = fields.Float(required=True, metadata={"description": "The reference data."})
    grad = fields.Float(required=True, metadata={"description": "The reference grad."})
    local_grads = fields.List(
        fields.Float(),
        metadata={
            "description": "The reference local gradients, one per child, for every node with children (for neg, "
            "sub and div: per unit of the node's grad, through the Values the reference class builds)."
        },
    )
    verdict = fields.Nested(VerdictSchema, required=True)


class ScoreSchema(Schema):
    checked = fields.Integer(required=True, metadata={"description": "Submitted fields (data, grad, local_grads)."})
    matched = fields.Integer(required=True, metadata={"description": "Submitted fields that match."})


class RootCauseSchema(Schema):
    """A mismatch that no earlier mismatch explains: the thing to fix."""

    node = Id(required=True)
    kind = fields.String(
        required=True,
        validate=validate.OneOf(ROOT_CAUSE_KINDS),
        metadata={
            "description": "forward: the data mismatches while the children's data match (the op's forward rule). "
            "local-gradient: a local gradient mismatches while the children's data match (the op's derivative rule). "
            "accumulation: the grad mismatches while the grads and local gradients of every node that uses it match "
            "(the backward pass combines the contributions wrongly). A mismatch explained by an earlier one is never "
            "a root cause; only its verdict says mismatch."
        },
    )
    field = fields.String(required=True, validate=validate.OneOf(("data", "local_grads", "grad")))
    message = fields.String(
        required=True,
        metadata={"description": "For the student: the node, its op, expected and submitted, the likely mistake."},
    )
    expected = fields.Raw(
        required=True, metadata={"description": "The reference: a number, or the list of local gradients."}
    )
    submitted = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": "What was submitted; null for a local-gradient cause inferred at a node whose local "
            "gradients were not submitted (its only child's grad is wrong while its own grad matches)."
        },
    )


class GradeSchema(Schema):
    """The answer to POST /v1/grade."""

    output = Id(required=True)
    passed = fields.Boolean(required=True, metadata={"description": "Every submitted field matches."})
    score = fields.Nested(ScoreSchema, required=True)
    nodes = fields.List(
        fields.Nested(GradedNodeSchema), required=True, metadata={"description": "Every node, in request order."}
    )
    root_causes = fields.List(
        fields.Nested(RootCauseSchema),
        required=True,
        metadata={
            "description": "In the forward order of their nodes (children first): the first is the first to fix."
        },
    )
