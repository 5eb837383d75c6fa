"""The bodies of POST /v1/evaluate/batch and POST /v1/grade/batch: many graphs, each answered on its own.

The envelope is all that can refuse the whole request: its items are any JSON values, each validated
(as a GraphRequest or a GradeRequest) and answered on its own, in request order.
"""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.contract.grade import GradeSchema
from service.contract.graph import EvaluationSchema, StrictSchema
from service.contract.problem import ProblemSchema


class BatchRequestSchema(StrictSchema):
    """{"graphs": [...]}: at most `max_graphs` items and `max_nodes` nodes in all (the service's limits)."""

    graphs = fields.List(
        fields.Raw(),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The requests, each evaluated on its own; an invalid one spoils no other."},
    )

    def __init__(self, *, max_graphs=None, max_nodes=None, **kwargs):
        super().__init__(**kwargs)
        self.max_graphs, self.max_nodes = max_graphs, max_nodes

    @validates_schema
    def check_limits(self, document, **kwargs):
        messages = batch_limits_exceeded(document["graphs"], self.max_graphs, self.max_nodes)
        if messages:
            raise ValidationError(messages, "graphs")


def is_valid_batch(document: object, max_graphs: int | None = None, max_nodes: int | None = None) -> bool:
    """True exactly when BatchRequestSchema(...).load(document) would succeed: a valid envelope skips
    marshmallow, which runs only to explain a refusal."""
    if type(document) is not dict or document.keys() != {"graphs"}:
        return False
    graphs = document["graphs"]
    return type(graphs) is list and not batch_limits_exceeded(graphs, max_graphs, max_nodes)


def batch_limits_exceeded(graphs: list, max_graphs: int | None, max_nodes: int | None) -> list[str]:
    """The messages of the limits the list breaks (and emptiness)."""
    messages = []
    if not graphs:
        messages.append("A batch needs at least one graph.")
    if max_graphs is not None and len(graphs) > max_graphs:
        messages.append(f"A batch may have at most {max_graphs} graphs; this one has {len(graphs)}.")
    if max_nodes is not None:
        total = sum(len(g["nodes"]) for g in graphs if type(g) is dict and type(g.get("nodes")) is list)
        if total > max_nodes:
            messages.append(f"A batch may have at most {max_nodes} nodes in all; this one has {total}.")
    return messages


class EvaluateBatchResultSchema(Schema):
    """One graph's answer: its status and either the evaluation (200) or the problem (4xx)."""

    status = fields.Integer(required=True, metadata={"description": "The status /v1/evaluate gives this graph."})
    evaluation = fields.Nested(EvaluationSchema, metadata={"description": "When status is 200."})
    problem = fields.Nested(ProblemSchema, metadata={"description": "When status is not 200."})


class EvaluateBatchSchema(Schema):
    """The answer to POST /v1/evaluate/batch: one result per graph, in request order."""

    results = fields.List(fields.Nested(EvaluateBatchResultSchema), required=True)


class GradeBatchResultSchema(Schema):
    """One grade request's answer: its status and either the grade (200) or the problem (4xx)."""

    status = fields.Integer(required=True, metadata={"description": "The status /v1/grade gives this request."})
    grade = fields.Nested(GradeSchema, metadata={"description": "When status is 200."})
    problem = fields.Nested(ProblemSchema, metadata={"description": "When status is not 200."})


class GradeBatchSchema(Schema):
    """The answer to POST /v1/grade/batch: one result per grade request, in request order."""

    results = fields.List(fields.Nested(GradeBatchResultSchema), required=True)
