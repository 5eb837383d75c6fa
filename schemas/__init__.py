"""The marshmallow schemas: valuegraph's contract, and the source of openapi.yaml."""

from schemas.graph import (
    EvaluationSchema,
    GraphRequestSchema,
    LeafNodeSchema,
    NodeResultSchema,
    OperationNodeSchema,
    RecordedNodeSchema,
    node_schema_for,
)
from schemas.problem import ProblemErrorSchema, ProblemSchema
from schemas.validation import is_valid_request

__all__ = [
    "EvaluationSchema",
    "GraphRequestSchema",
    "LeafNodeSchema",
    "NodeResultSchema",
    "OperationNodeSchema",
    "ProblemErrorSchema",
    "ProblemSchema",
    "RecordedNodeSchema",
    "is_valid_request",
    "node_schema_for",
]
