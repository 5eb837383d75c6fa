"""POST /v1/evaluate: request bytes -> JSON -> valid graph -> Values -> forward, backward -> response."""
import gc
from contextlib import contextmanager

import orjson
from flask import Blueprint, current_app, request

from schemas import GraphRequestSchema
from service import graph
from service.errors import Problem

bp = Blueprint("api", __name__)


@contextmanager
def cyclic_gc_paused():
    """A big graph is millions of container objects and no reference cycles; left on, the cyclic
    collector walks them over and over and takes most of the time (`make bench` shows how much)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@bp.post("/v1/evaluate")
def evaluate():
    with cyclic_gc_paused():
        return _evaluate()


def _evaluate():
    if request.mimetype != "application/json":
        raise Problem(415, "about:blank", "Unsupported Media Type",
                      f"The body must be application/json, not {request.mimetype or 'untyped'}.")
    try:
        document = orjson.loads(request.get_data(cache=False))
    except orjson.JSONDecodeError as error:
        raise Problem(400, "/problems/invalid-json", "The body is not valid JSON", f"{error}.") from None
    request_graph = GraphRequestSchema(max_nodes=current_app.config["MAX_NODES"]).load(document)
    nodes = request_graph["nodes"]
    output, values = graph.evaluate(nodes, request_graph.get("output"))
    body = orjson.dumps({
        "output": output,
        "nodes": [{"id": node["id"], "data": value.data, "grad": value.grad} for node, value in zip(nodes, values)],
    })
    return current_app.response_class(body, mimetype="application/json")
