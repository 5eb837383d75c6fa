"""The ways in for people rather than programs: POST /v1/expression (a formula instead of a graph)
and POST /v1/render (a picture of a graph). The logic is in service/expression.py and
service/render.py; this module reads the request and writes the answer."""

import functools

from flask import Blueprint, Response, current_app, request
from marshmallow import ValidationError

from schemas import GraphRequestSchema, is_valid_request
from schemas.expression import ExpressionRequestSchema
from schemas.render import RenderQuerySchema
from service import expression, graph, render
from service.api import answer, json_bytes
from service.errors import Problem, listed
from service.graph import Checkpoint

bp = Blueprint("tools", __name__)

EXPRESSION_PROBLEMS = {
    "invalid-expression": "The expression is not valid",
    "numeric-error": "The graph cannot be evaluated in finite numbers",
}


@bp.post("/v1/expression")
def evaluate_expression() -> Response:
    return answer(expression_body)


def expression_body(document: object, checkpoint: Checkpoint) -> bytes:
    try:
        request_body = ExpressionRequestSchema().load(document)
    except ValidationError as error:
        raise refused(error, 422, "/problems/invalid-expression", EXPRESSION_PROBLEMS["invalid-expression"]) from None
    try:
        evaluated = expression.evaluate(
            request_body["expression"],
            request_body.get("inputs", {}),
            current_app.config["MAX_EXPRESSION_LENGTH"],
            current_app.config["MAX_EXPRESSION_NODES"],
        )
    except expression.ExpressionError as error:
        raise Problem(
            422, f"/problems/{error.kind}", EXPRESSION_PROBLEMS[error.kind], error.detail, errors=listed(error.errors)
        ) from None
    return json_bytes(evaluated)


@bp.post("/v1/render")
def render_graph() -> Response:
    try:
        query = RenderQuerySchema().load(request.args.to_dict())
    except ValidationError as error:
        raise refused(error, 400, "/problems/invalid-parameter", "A query parameter is not valid") from None
    picture_format = query["format"]
    return answer(lambda document, checkpoint: _render(document, picture_format), render.MEDIA_TYPES[picture_format])


def refused(error: ValidationError, status: int, problem_type: str, title: str) -> Problem:
    """A marshmallow refusal as a problem whose entries name fields the dotted way (`inputs.a`)."""
    errors = listed(
        [
            {"field": field, "message": message}
            for field, messages in _flatten(error.normalized_messages())
            for message in messages
        ]
    )
    detail = errors[0]["message"] if len(errors) == 1 else f"{len(errors)} problems found; see errors."
    return Problem(status, problem_type, title, detail, errors=errors)


def _render(document: object, format: str) -> bytes:
    limit = current_app.config["MAX_RENDER_NODES"]
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if isinstance(nodes, list) and len(nodes) > limit:
        message = (
            f"A picture is drawn of at most {limit} nodes (VALUEGRAPH_MAX_RENDER_NODES); this graph has {len(nodes)}."
        )
        raise Problem(
            422,
            "/problems/graph-too-large-to-draw",
            "The graph is too large to draw",
            message,
            errors=[{"field": "nodes", "message": message}],
        )
    request_graph = document if is_valid_request(document, limit) else _graph_schema(limit).load(document)
    nodes = request_graph["nodes"]
    output, values = graph.evaluate(nodes, request_graph.get("output"))
    picture = render.render(nodes, output, values, format)
    return picture.encode() if isinstance(picture, str) else picture


@functools.cache
def _graph_schema(max_nodes: int) -> GraphRequestSchema:
    return GraphRequestSchema(max_nodes=max_nodes)


def _flatten(messages: dict | list, field: str | None = None) -> list[tuple[str | None, list[str]]]:
    """marshmallow's nested messages as (dotted field, messages) pairs: `inputs.a`, not a nest."""
    if isinstance(messages, list):
        return [(field, messages)]
    pairs = []
    for key, inner in messages.items():
        name = field if key == "_schema" else f"{field}.{key}" if field else str(key)
        pairs += _flatten(inner, name)
    return pairs
