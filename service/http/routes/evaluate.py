"""POST /v1/evaluate and POST /v1/evaluate/batch: a graph's every node with its data and grad.

request bytes -> JSON -> the compiled fast path's whole answer, or: valid graph -> Values -> forward,
backward -> the answer's JSON. Both paths answer the same bytes; the reference path also explains every
refusal.
"""

import orjson
from flask import Blueprint, Response, current_app

from service.contract.graph import is_valid_request
from service.core import fastpath, graphs
from service.core.record import note_graph_size, phase
from service.core.traversal import Checkpoint
from service.http.answer import answer, json_bytes, validated
from service.http.batch import batch_body, unexplained
from service.http.problems import invalid_graph_request

bp = Blueprint("evaluate", __name__)


@bp.post("/v1/evaluate")
def evaluate() -> Response:
    return answer(evaluation_body)


@bp.post("/v1/evaluate/batch")
def evaluate_batch() -> Response:
    return answer(lambda document, checkpoint: batch_body(document, evaluation_body, b"evaluation", checkpoint))


def evaluation_body(document: object, checkpoint: Checkpoint, explain: bool = True) -> bytes:
    """The 200 body of one graph request: the compiled fast path's when it answers, which is exactly the
    reference path's; else the reference path's, which also explains every refusal (unless, in a batch
    whose answer has no room left, `explain` is false)."""
    if current_app.config["FAST_PATH"]:
        with phase("fastpath"):
            answer_bytes = fastpath.evaluate(document, current_app.config["MAX_NODES"])
        if answer_bytes is not None:
            note_graph_size(len(document["nodes"]))
            return answer_bytes
    request_graph = validated(
        document,
        lambda document: is_valid_request(document, current_app.config["MAX_NODES"]),
        current_app.extensions["valuegraph.request_schema"],
        invalid_graph_request,
        None if explain else lambda: unexplained("invalid-graph"),
    )
    checkpoint()
    nodes = request_graph["nodes"]
    note_graph_size(len(nodes))
    output, values = graphs.evaluate(nodes, request_graph.get("output"), checkpoint)
    with phase("write"):
        return evaluation_json(output, nodes, values, checkpoint)


def evaluation_json(
    output: graphs.NodeId,
    nodes: list[dict],
    values: list,
    checkpoint: Checkpoint = lambda: None,
    slice_size: int = 10_000,
) -> bytes:
    """The 200 body, serialized a slice of nodes at a time: a dict per node for all of a big graph at
    once would cost more memory than its Values."""

    def slice_json(start):
        checkpoint()
        return json_bytes(
            [
                {"id": node["id"], "data": value.data, "grad": value.grad}
                for node, value in zip(nodes[start : start + slice_size], values[start : start + slice_size])
            ]
        )[1:-1]

    slices = (slice_json(start) for start in range(0, len(nodes), slice_size))
    return b'{"output":%b,"nodes":[%b]}' % (orjson.dumps(output), b",".join(slices))
