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
from service.api import admitted_body, json_bytes, parse_json
from service.errors import Problem, listed

bp = Blueprint("tools", __name__)

EXPRESSION_PROBLEMS = {
    "invalid-expression": "The expression is not valid",
    "numeric-error": "The graph cannot be evaluated in finite numbers",
}


@bp.post("/v1/expression")
def evaluate_expression() -> Response:
    with admitted_body() as body:
        return _evaluate_expression(parse_json(body))


def _evaluate_expression(document: object) -> Response:
    try:
        request_body = ExpressionRequestSchema().load(document)
    except ValidationError as error:
        errors = listed(
            [
                {"field": field, "message": message}
                for field, messages in _flatten(error.normalized_messages())
                for message in messages
            ]
        )
        raise Problem(
            422,
            "/problems/invalid-expression",
            EXPRESSION_PROBLEMS["invalid-expression"],
            errors[0]["message"] if len(errors) == 1 else f"{len(errors)} problems found; see errors.",
            errors=errors,
        ) from None
    try:
        answer = expression.evaluate(
            request_body["expression"],
            request_body.get("inputs", {}),
            current_app.config["MAX_EXPRESSION_LENGTH"],
            current_app.config["MAX_EXPRESSION_NODES"],
        )
    except expression.ExpressionError as error:
        raise Problem(
            422, f"/problems/{error.kind}", EXPRESSION_PROBLEMS[error.kind], error.detail, errors=listed(error.errors)
        ) from None
    return current_app.response_class(json_bytes(answer), mimetype="application/json")


@bp.post("/v1/render")
def render_graph() -> Response:
    try:
        query = RenderQuerySchema().load(request.args.to_dict())
    except ValidationError as error:
        errors = listed(
            [
                {"field": field, "message": message}
                for field, messages in _flatten(error.normalized_messages())
                for message in messages
            ]
        )
        raise Problem(
            400, "/problems/invalid-parameter", "A query parameter is not valid", errors[0]["message"], errors=errors
        ) from None
    with admitted_body() as body:
        return _render(parse_json(body), query["format"])


def _render(document: object, format: str) -> Response:
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
    return current_app.response_class(picture, mimetype=render.MEDIA_TYPES[format])


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
