"""POST /v1/evaluate: request bytes -> JSON -> valid graph -> Values -> forward, backward -> response."""

import functools
import gc
import threading
from contextlib import contextmanager

import orjson
from flask import Blueprint, current_app, request

from schemas import GraphRequestSchema
from service import fastpath, graph
from service.errors import Problem

bp = Blueprint("api", __name__)


_gc_pause_lock = threading.Lock()
_gc_pauses = 0


@contextmanager
def cyclic_gc_paused():
    """A big graph is millions of container objects and no reference cycles; left on, the cyclic
    collector walks them over and over (orjson.loads of a 1,000,000-node graph alone took 2.5 s with
    it on, 0.45 s with it paused). Paused while any of the worker's threads evaluates."""
    global _gc_pauses
    with _gc_pause_lock:
        _gc_pauses += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                gc.enable()


@bp.post("/v1/evaluate")
def evaluate():
    with cyclic_gc_paused():
        return _evaluate()


def _evaluate():
    if request.mimetype != "application/json":
        raise Problem(
            415,
            "about:blank",
            "Unsupported Media Type",
            f"The body must be application/json, not {request.mimetype or 'untyped'}.",
        )
    try:
        document = orjson.loads(request_body())
    except orjson.JSONDecodeError as error:
        raise Problem(400, "/problems/invalid-json", "The body is not valid JSON", f"{error}.") from None
    if current_app.config["FAST_PATH"] and (answer := fastpath.evaluate(document, current_app.config["MAX_NODES"])):
        return current_app.response_class(answer, mimetype="application/json")
    request_graph = request_schema(current_app.config["MAX_NODES"]).load(document)
    nodes = request_graph["nodes"]
    output, values = graph.evaluate(nodes, request_graph.get("output"))
    return current_app.response_class(evaluation_json(output, nodes, values), mimetype="application/json")


@functools.cache
def request_schema(max_nodes):
    """One schema instance per limit: making one deep-copies its fields, which costs more than
    loading a small graph with it."""
    return GraphRequestSchema(max_nodes=max_nodes)


def request_body():
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


def body_too_large(limit):
    return Problem(
        413,
        "about:blank",
        "Content Too Large",
        f"The body is over the limit of {limit} bytes (VALUEGRAPH_MAX_BODY_BYTES).",
    )


def evaluation_json(output, nodes, values, slice_size=10_000):
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
