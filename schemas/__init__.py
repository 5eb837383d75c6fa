"""The marshmallow schemas: valuegraph's contract, and the source of openapi.yaml."""

from schemas.graph import (
    OPERATIONS,
    EvaluationSchema,
    GraphRequestSchema,
    LeafNodeSchema,
    NodeResultSchema,
    OperationNodeSchema,
    RecordedNodeSchema,
    node_schema_for,
)
from schemas.problem import ProblemErrorSchema, ProblemSchema

__all__ = [
    "OPERATIONS",
    "EvaluationSchema",
    "GraphRequestSchema",
    "LeafNodeSchema",
    "NodeResultSchema",
    "OperationNodeSchema",
    "ProblemErrorSchema",
    "ProblemSchema",
    "RecordedNodeSchema",
    "node_schema_for",
]
