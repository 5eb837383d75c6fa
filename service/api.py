"""POST /v1/evaluate: request bytes -> JSON -> valid graph -> Values -> forward, backward -> response."""

import orjson
from flask import Blueprint, Response, current_app, request

from schemas import is_valid_request
from service import graph
from service.errors import Problem
from service.gcpause import cyclic_gc_paused

bp = Blueprint("api", __name__)


@bp.post("/v1/evaluate")
def evaluate() -> Response:
    with cyclic_gc_paused():
        request_graph = parse_graph_request()
        nodes = request_graph["nodes"]
        output, values = graph.evaluate(nodes, request_graph.get("output"))
        return current_app.response_class(evaluation_json(output, nodes, values), mimetype="application/json")


def parse_graph_request() -> dict:
    """The request's graph, valid by the contract: a refusal raises, with the schemas' explanation."""
    document = parse_json()
    if is_valid_request(document, current_app.config["MAX_NODES"]):
        return document
    return current_app.extensions["valuegraph.request_schema"].load(document)


def parse_json() -> object:
    if request.mimetype != "application/json":
        raise Problem(
            415,
            "about:blank",
            "Unsupported Media Type",
            f"The body must be application/json, not {request.mimetype or 'untyped'}.",
        )
    try:
        return orjson.loads(request_body())
    except orjson.JSONDecodeError as error:
        raise Problem(400, "/problems/invalid-json", "The body is not valid JSON", f"{error}.") from None


def request_body() -> bytes:
    """The body, refused with 413 when it is over MAX_CONTENT_LENGTH, read straight from the server:
    Content-Length says how much, or, for a chunked body, reading one byte past the limit tells."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise body_too_large(limit)
    if length is None and not request.environ.get("wsgi.input_terminated"):
        return b""
    body = request.environ["wsgi.input"].read(limit + 1 if length is None else length)
    if len(body) > limit:
        raise body_too_large(limit)
    return body


def body_too_large(limit: int) -> Problem:
    return Problem(
        413,
        "about:blank",
        "Content Too Large",
        f"The body is over the limit of {limit} bytes (VALUEGRAPH_MAX_BODY_BYTES).",
    )


def evaluation_json(output: graph.NodeId, nodes: list[dict], values: list, slice_size: int = 10_000) -> bytes:
    """The 200 body, serialized a slice of nodes at a time: a dict per node for all of a big graph at
    once would cost more memory than its Values."""
    slices = (
        orjson.dumps(
            [
                {"id": node["id"], "data": value.data, "grad": value.grad}
                for node, value in zip(nodes[start : start + slice_size], values[start : start + slice_size])
            ]
        )[1:-1]
        for start in range(0, len(nodes), slice_size)
    )
    return b'{"output":%b,"nodes":[%b]}' % (orjson.dumps(output), b",".join(slices))
