"""The body of POST /v1/grade (an evaluation request plus what a submission computed) and its answer.

As for a graph request, `is_valid_grade_request` restates the schemas' rules in plain Python, so that a
valid request skips marshmallow's machinery; marshmallow runs only to explain a refusal.
"""

import math

from marshmallow import Schema, ValidationError, fields, validate

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
from service.core import rounding
from service.core.grading import (
    DEFAULT_TOLERANCE,
    EXERCISED_RULES,
    FIELDS,
    MAX_ROOT_CAUSES,
    NON_FINITE,
    ROOT_CAUSE_KINDS,
    VERDICTS,
)
from service.core.mistakes import MISTAKES
from service.core.ops import OPS

_SUBMITTED_KEYS = frozenset(("id", "data", "grad", "local_grads"))
_TOLERANCE_KEYS = frozenset(("rtol", "atol"))
_GRADE_KEYS = frozenset(("nodes", "output", "submitted", "tolerance", "required"))
_GRAPH_KEYS = ("nodes", "output")


def is_submitted_number(value: object) -> bool:
    """A number a submission may hold: any finite JSON number, or one of the names of the non-finite ones."""
    return is_number(value) or (type(value) is str and value in NON_FINITE)


class SubmittedNumber(Number):
    """A student's number: finite, or "NaN", "Infinity", "-Infinity" (which the service also reads from the
    bare tokens NaN, Infinity and -Infinity that Python's json module writes, in `submitted` only). A
    non-finite number is graded as a mismatch, never refused."""

    default_error_messages = {
        "invalid": 'Not a valid number: {shown}; a JSON number, or "NaN", "Infinity" or "-Infinity", is required.'
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is str and value in NON_FINITE:
            return value
        if type(value) is float and not math.isfinite(value):
            raise self.make_error("invalid", shown=repr(value))
        return super()._deserialize(value, attr, data, **kwargs)


class SubmittedSchema(StrictSchema):
    """What the submission computed for one node; every field but `id` is optional."""

    id = Id(required=True, metadata={"description": "The node's id in `nodes`; at most one entry per node."})
    data = SubmittedNumber(metadata={"description": "The submission's forward value of the node."})
    grad = SubmittedNumber(metadata={"description": "The submission's d(output)/d(node)."})
    local_grads = CappedList(
        SubmittedNumber(),
        is_submitted_number,
        metadata={
            "description": "One per child, in the node's children order; only for a node with children. For neg, "
            "sub and div, which the reference Value class builds from several Values, the local gradient for a listed child is "
            "what its backward pass passes to that child per unit of the node's grad through the hidden Values "
            "(a - b: 1 and -1; a / b: 1/b and -a/b**2)."
        },
    )


_NON_NEGATIVE = validate.Range(min=0, error="A tolerance must be a number >= 0.")


class ToleranceSchema(StrictSchema):
    """An explicit tolerance, instead of the rounding-aware one: a submitted number s matches the reference
    r when |s - r| <= atol + rtol * |r| (numpy.isclose with the reference as b). rtol = atol = 0 means
    bit-exact."""

    rtol = Number(
        validate=_NON_NEGATIVE, metadata={"description": f"Relative tolerance. Default {DEFAULT_TOLERANCE.rtol}."}
    )
    atol = Number(
        validate=_NON_NEGATIVE, metadata={"description": f"Absolute tolerance. Default {DEFAULT_TOLERANCE.atol:g}."}
    )


class RequiredFields(fields.List):
    """The fields a submission must give for every node they apply to (local_grads: nodes with children)."""

    def __init__(self, **kwargs):
        super().__init__(fields.String(validate=validate.OneOf(FIELDS)), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        fields_given = super()._deserialize(value, attr, data, **kwargs)
        if len(set(fields_given)) != len(fields_given):
            raise ValidationError("Each field may be required once.")
        return fields_given


class GradeRequestSchema(GraphRequestSchema):
    """The body of POST /v1/grade: the graph exactly as for /v1/evaluate, plus `submitted`, and optionally
    `tolerance` and `required`."""

    submitted = CappedList(
        fields.Nested(SubmittedSchema),
        lambda entry: _submitted_is_valid(entry),
        required=True,
        metadata={"description": "The submission's values for any subset of the nodes."},
    )
    tolerance = fields.Nested(
        ToleranceSchema,
        metadata={
            "description": "Without it, a number is accepted within the rounding a correct computation in "
            "another order or composition can make (the answer's `tolerance` says how it is bounded)."
        },
    )
    required = RequiredFields(
        metadata={
            "description": "Fields the submission must give for every node: a node without one gets the "
            'verdict "missing" there, which fails the grade (local_grads: only nodes with children).',
            "uniqueItems": True,
        }
    )


def is_valid_grade_request(document: object, max_nodes: int | None = None) -> bool:
    """True exactly when GradeRequestSchema(max_nodes=max_nodes).load(document) would succeed."""
    if type(document) is not dict or not document.keys() <= _GRADE_KEYS:
        return False
    submitted, tolerance, required = (
        document.get("submitted"),
        document.get("tolerance", {}),
        document.get("required", []),
    )
    return (
        type(submitted) is list
        and all(map(_submitted_is_valid, submitted))
        and type(required) is list
        and all(type(name) is str and name in FIELDS for name in required)
        and len(set(required)) == len(required)
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
        all(is_submitted_number(entry[key]) for key in ("data", "grad") if key in entry)
        and type(local_grads) is list
        and all(map(is_submitted_number, local_grads))
    )


class VerdictSchema(Schema):
    """Per field: "match", "mismatch" (a root cause, or explained by one), "not-submitted", or "missing"
    (not submitted though the request requires it: a failure)."""

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


class FieldScoreSchema(Schema):
    checked = fields.Integer(required=True, metadata={"description": "Nodes whose field was checked."})
    matched = fields.Integer(required=True, metadata={"description": "Of those, the ones that match."})
    missing = fields.Integer(required=True, metadata={"description": "Of those, the ones required but not submitted."})


class FieldScoresSchema(Schema):
    data = fields.Nested(FieldScoreSchema, required=True)
    grad = fields.Nested(FieldScoreSchema, required=True)
    local_grads = fields.Nested(FieldScoreSchema, required=True)


class ScoreSchema(Schema):
    checked = fields.Integer(
        required=True,
        metadata={"description": "Fields checked: the submitted ones (data, grad, local_grads) and the missing ones."},
    )
    matched = fields.Integer(required=True, metadata={"description": "Fields that match."})
    fields_ = fields.Nested(
        FieldScoresSchema, required=True, data_key="fields", metadata={"description": "The same, per field."}
    )


class ToleranceRuleSchema(Schema):
    """How a submitted number was accepted."""

    rule = fields.String(
        required=True,
        validate=validate.OneOf(("rounding", "explicit")),
        metadata={
            "description": "rounding (no tolerance given): each number within a bound on the rounding a correct "
            "computation in another order or composition can make: its own operation's roundings, times "
            "safety_factor units of roundoff, plus what its inputs' bounds carry through it (for a grad, the "
            "sum of the absolute contributions, not the result, which may cancel to 0); the root causes give the "
            "bound as `allowed`. explicit: |s - r| <= atol + rtol * |r|."
        },
    )
    safety_factor = fields.Integer(metadata={"description": f"rounding: {rounding.SAFETY_FACTOR}."})
    unit_roundoff = fields.Float(metadata={"description": "rounding: 2**-53."})
    rtol = fields.Float(metadata={"description": "explicit: the relative tolerance."})
    atol = fields.Float(metadata={"description": "explicit: the absolute tolerance."})


class CandidateSchema(Schema):
    """A known mistake whose numbers reproduce the submission's at this root cause."""

    mistake = fields.String(
        required=True,
        validate=validate.OneOf([mistake.key for mistake in MISTAKES]),
        metadata={"description": "The mistake's name."},
    )
    rule = fields.String(
        required=True,
        metadata={
            "description": "Where it is: an op's name, or 'the backward pass'.",
            "enum": [*OPS, "the backward pass"],
        },
    )
    message = fields.String(required=True, metadata={"description": "The mistake and its fix, for the student."})


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
            "a root cause; only its verdict says mismatch. Where the known mistakes that fit all point at one place "
            "(a grads-only submission shows a wrong derivative rule as a wrong grad one node below), the root cause "
            "is put there, with `submitted` null."
        },
    )
    field = fields.String(required=True, validate=validate.OneOf(FIELDS))
    message = fields.String(
        required=True,
        metadata={
            "description": "For the student: the node, its op, expected and submitted, and the mistake the numbers "
            "fit, or every mistake they fit, most likely first; when none does, only what is known."
        },
    )
    expected = fields.Raw(
        required=True, metadata={"description": "The reference: a number, or the list of local gradients."}
    )
    submitted = fields.Raw(
        required=True,
        allow_none=True,
        metadata={
            "description": 'What was submitted ("NaN", "Infinity", "-Infinity" for those); null for a cause placed '
            "at a field that was not submitted."
        },
    )
    allowed = fields.Raw(
        required=True,
        metadata={"description": "How far from `expected` a number is accepted here (a list for local gradients)."},
    )
    candidates = fields.List(
        fields.Nested(CandidateSchema),
        required=True,
        metadata={
            "description": "The known mistakes that reproduce the submitted numbers here, most likely first "
            "(those that reproduce every submitted number before those that reproduce these); empty when none does."
        },
    )


class GradeSchema(Schema):
    """The answer to POST /v1/grade."""

    output = Id(required=True)
    passed = fields.Boolean(
        required=True, metadata={"description": "Every checked field matches, and at least one was checked."}
    )
    score = fields.Nested(ScoreSchema, required=True)
    tolerance = fields.Nested(ToleranceRuleSchema, required=True)
    exercised = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": 'What a pass on this graph covers: the ops it uses ("recorded" for recorded nodes), then '
            + "; ".join(f"{name}: {meaning}" for name, meaning in EXERCISED_RULES.items())
            + ".",
        },
    )
    nodes = fields.List(
        fields.Nested(GradedNodeSchema), required=True, metadata={"description": "Every node, in request order."}
    )
    root_causes = fields.List(
        fields.Nested(RootCauseSchema),
        required=True,
        metadata={
            "description": "In the forward order of their nodes (children first): the first is the first to fix. "
            f"At most {MAX_ROOT_CAUSES}."
        },
    )
    root_causes_not_listed = fields.Integer(
        metadata={"description": f"How many root causes there are past the first {MAX_ROOT_CAUSES}."}
    )
