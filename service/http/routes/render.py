"""POST /v1/render: a picture of an evaluated graph; the drawing is in service/core/render.py."""

from flask import Blueprint, Response, current_app, request
from marshmallow import ValidationError

from service.contract.graph import is_valid_request
from service.contract.render import RenderQuerySchema
from service.core import graphs, render
from service.http.answer import answer, validated
from service.http.problem_types import title
from service.http.problems import Problem, field_problem, invalid_graph_request

bp = Blueprint("render", __name__)


@bp.post("/v1/render")
def render_graph() -> Response:
    try:
        query = RenderQuerySchema().load(request.args.to_dict())
    except ValidationError as error:
        raise field_problem(error, 400, "/problems/invalid-parameter", title("invalid-parameter")) from None
    picture_format = query["format"]
    return answer(lambda document, checkpoint: picture(document, picture_format), render.MEDIA_TYPES[picture_format])


def picture(document: object, format: str) -> bytes:
    limit = current_app.config["MAX_RENDER_NODES"]
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if isinstance(nodes, list) and len(nodes) > limit:
        message = (
            f"A picture is drawn of at most {limit} nodes (VALUEGRAPH_MAX_RENDER_NODES); this graph has {len(nodes)}."
        )
        raise Problem(
            422,
            "/problems/graph-too-large-to-draw",
            title("graph-too-large-to-draw"),
            message,
            errors=[{"field": "nodes", "message": message}],
        )
    request_graph = validated(
        document,
        lambda document: is_valid_request(document, limit),
        current_app.extensions["valuegraph.render_schema"],
        invalid_graph_request,
    )
    nodes = request_graph["nodes"]
    output, values = graphs.evaluate(nodes, request_graph.get("output"))
    drawn = render.render(nodes, output, values, format)
    return drawn.encode() if isinstance(drawn, str) else drawn
