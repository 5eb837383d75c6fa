"""POST /v1/render: a picture of an evaluated graph. What it shows is service/core/render.py's; the
languages are service/core/mermaid.py's and service/core/dot.py's; SVG is Graphviz's (service/http/graphviz.py)."""

from flask import Blueprint, Response, current_app, request
from marshmallow import ValidationError

from service.contract.graph import forget_frames, is_valid_request
from service.contract.render import RenderQuerySchema
from service.core import graphs, render
from service.core.dot import dot
from service.core.mermaid import MermaidRefuses, mermaid
from service.core.record import note_graph_size, phase
from service.core.traversal import Checkpoint
from service.http import graphviz
from service.http.answer import answer, json_bytes, validated
from service.http.problem_types import title
from service.http.problems import (
    drawing_failed,
    field_problem,
    format_unavailable,
    invalid_graph_request,
    too_large_to_draw,
)

bp = Blueprint("render", __name__)

#: Graphviz's SVG is within a small multiple of its dot text; more means something went wrong.
SVG_BYTES_PER_DOT_BYTE = 32
SVG_BASE_BYTES = 1 << 20
#: An SVG answer is a picture, never a page that runs anything.
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


@bp.post("/v1/render")
def render_graph() -> Response:
    try:
        query = RenderQuerySchema().load(request.args.to_dict())
    except ValidationError as error:
        forget_frames(error)
        raise field_problem(error, 400, "/problems/invalid-parameter", title("invalid-parameter")) from None
    picture_format, precision = query["format"], query["precision"]
    if picture_format == "svg" and graphviz.dot_program() is None:
        raise format_unavailable()
    response = answer(
        lambda document, checkpoint: picture(document, picture_format, precision, checkpoint),
        render.MEDIA_TYPES[picture_format],
    )
    if picture_format == "svg":
        response.headers.update(SVG_HEADERS)
    return response


def picture(document: object, picture_format: str, precision: int | None, checkpoint: Checkpoint) -> bytes:
    """The picture's bytes: the graph checked against the drawing limits before anything else is done
    with it, then validated, evaluated and drawn, within the deadline."""
    refuse_if_too_large(document)
    request_graph = validated(
        document,
        lambda document: is_valid_request(document, current_app.config["MAX_RENDER_NODES"]),
        current_app.extensions["valuegraph.render_schema"],
        invalid_graph_request,
    )
    nodes = request_graph["nodes"]
    note_graph_size(len(nodes))
    output, values = graphs.evaluate(nodes, request_graph.get("output"), checkpoint)
    with phase("draw"):
        drawn = render.picture(nodes, output, values, checkpoint)
        if picture_format == "json":
            return json_bytes(render.as_json(drawn))
        if picture_format == "mermaid":
            try:
                return mermaid(drawn, precision, checkpoint).encode()
            except MermaidRefuses as refusal:
                raise too_large_to_draw(
                    f"Mermaid would refuse this picture: {refusal.reason}. format=svg or format=dot draws it "
                    "with Graphviz; format=json gives its content.",
                    "format",
                ) from None
        dot_text = dot(drawn, precision, checkpoint).encode()
    if picture_format == "dot":
        return dot_text
    with phase("graphviz"):
        return svg(dot_text, checkpoint)


def refuse_if_too_large(document: object) -> None:
    """422 for a graph of more nodes or edges than a picture is drawn of: counted before the graph is
    validated (the lengths of its lists), so that such a refusal costs next to nothing."""
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if not isinstance(nodes, list):
        return
    max_nodes, max_edges = current_app.config["MAX_RENDER_NODES"], current_app.config["MAX_RENDER_EDGES"]
    if len(nodes) > max_nodes:
        raise too_large_to_draw(
            f"A picture is drawn of at most {max_nodes} nodes (VALUEGRAPH_MAX_RENDER_NODES); this graph has {len(nodes)}."
        )
    edges = sum(
        len(node["children"]) for node in nodes if isinstance(node, dict) and isinstance(node.get("children"), list)
    )
    if edges > max_edges:
        raise too_large_to_draw(
            f"A picture is drawn of at most {max_edges} edges (VALUEGRAPH_MAX_RENDER_EDGES, the children listed "
            f"over all nodes); this graph has {edges}."
        )


def svg(dot_text: bytes, checkpoint: Checkpoint) -> bytes:
    """Graphviz's picture, its memory held in the worker's budget while dot runs."""
    seconds, memory = current_app.config["GRAPHVIZ_SECONDS"], current_app.config["GRAPHVIZ_MEMORY_BYTES"]
    instead = "format=dot answers the picture's text, format=json its content."
    try:
        with current_app.extensions["valuegraph.memory_budget"].admit(memory):
            return graphviz.draw_svg(
                dot_text, checkpoint, SVG_BASE_BYTES + SVG_BYTES_PER_DOT_BYTE * len(dot_text), seconds, memory
            )
    except graphviz.GraphvizUnavailable:
        raise format_unavailable() from None
    except graphviz.OutputTooLarge:
        raise too_large_to_draw(
            f"Graphviz drew more than a picture of this graph may take; {instead}", "format"
        ) from None
    except graphviz.TooSlow:
        raise too_large_to_draw(
            f"Graphviz did not lay this graph out within {seconds:g} seconds (VALUEGRAPH_GRAPHVIZ_SECONDS); {instead}",
            "format",
        ) from None
    except graphviz.OutOfMemory:
        raise too_large_to_draw(
            f"Graphviz needed more than {memory} bytes of memory to lay this graph out "
            f"(VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES); {instead}",
            "format",
        ) from None
    except graphviz.GraphvizFailed as failure:
        raise drawing_failed(failure.reason) from None
