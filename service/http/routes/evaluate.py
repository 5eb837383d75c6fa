"""POST /v1/evaluate and POST /v1/evaluate/batch: a graph's every node with its data and grad.

request bytes -> the compiled fast path's whole answer, or: JSON -> valid graph -> Values -> forward,
backward -> the answer's JSON. Both paths answer the same bytes; the reference path also explains every
refusal. The fast path reads the request's bytes itself, so these routes take the body unparsed.
"""

import orjson
from flask import Blueprint, Response, current_app

from service.contract.graph import LeafNodeSchema, OperationNodeSchema, RecordedNodeSchema, is_valid_request
from service.core import fastpath, graphs
from service.core.deadline import Deadline
from service.core.record import note_graph_size, phase
from service.core.traversal import Checkpoint
from service.http.answer import answer, json_bytes, parse_json, validated
from service.http.batch import batch_body, batch_body_of_parts, item_framing, unexplained
from service.http.problems import invalid_graph_request

bp = Blueprint("evaluate", __name__)

#: Whether the contract lets a node carry a `label`: the fast path then reads past it (no answer echoes it).
NODES_MAY_HAVE_LABELS = all(
    "label" in schema().fields for schema in (LeafNodeSchema, OperationNodeSchema, RecordedNodeSchema)
)


def unparsed(body: bytes) -> bytes:
    """The body as it came: the fast path reads JSON itself; when it declines, parse_json parses it."""
    return body


@bp.post("/v1/evaluate")
def evaluate() -> Response:
    return answer(evaluation_body, parse=unparsed)


@bp.post("/v1/evaluate/batch")
def evaluate_batch() -> Response:
    return answer(evaluation_batch_body, parse=unparsed)


def evaluation_body(body: bytes, deadline: Deadline) -> bytes:
    """The 200 body of POST /v1/evaluate: the compiled fast path's when it answers, which is exactly the
    reference path's; else the reference path's, which also explains every refusal."""
    config = current_app.config
    if config["FAST_PATH"]:
        with phase("fastpath"):
            answered = fastpath.evaluate(body, config["MAX_NODES"], deadline, NODES_MAY_HAVE_LABELS)
        if answered is not None:
            answer_bytes, nodes = answered
            note_graph_size(nodes)
            return answer_bytes
    return reference_evaluation(parse_json(body), deadline)


def evaluation_batch_body(body: bytes, deadline: Deadline) -> bytes:
    """The 200 body of POST /v1/evaluate/batch: the items the fast path answers (in one call), and the
    others answered by the reference path in their place; or all by the reference path."""
    config = current_app.config
    if config["FAST_PATH"]:
        limits = (config["MAX_BATCH_GRAPHS"], config["MAX_BATCH_NODES"], config["MAX_NODES"])
        with phase("fastpath"):
            answered = fastpath.evaluate_batch(
                body, item_framing(200, b"evaluation"), limits, deadline, NODES_MAY_HAVE_LABELS
            )
        if answered is not None:
            parts, nodes = answered
            if nodes:
                note_graph_size(nodes)
            return batch_body_of_parts(parts, body, reference_evaluation, b"evaluation", deadline)
    return batch_body(parse_json(body), reference_evaluation, b"evaluation", deadline)


def reference_evaluation(document: object, checkpoint: Checkpoint, explain: bool = True) -> bytes:
    """The reference path's 200 body of one graph request, which also explains every refusal (unless, in a
    batch whose answer has no room left, `explain` is false)."""
    request_graph = validated(
        document,
        lambda document: is_valid_request(document, current_app.config["MAX_NODES"]),
        current_app.extensions["valuegraph.request_schema"],
        invalid_graph_request,
        None if explain else unexplained("invalid-graph"),
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
