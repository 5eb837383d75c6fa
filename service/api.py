"""POST /v1/evaluate: request bytes -> JSON -> valid graph -> Values -> forward, backward -> response."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
from flask import Blueprint, Response, current_app, request

from schemas import is_valid_request
from service import fastpath, graph
from service.body import body_too_large, request_body
from service.errors import Problem
from service.gcpause import cyclic_gc_paused
from service.limits import Deadline
from service.observe import note_graph_size
from service.timing import phase

bp = Blueprint("api", __name__)


@bp.post("/v1/evaluate")
def evaluate() -> Response:
    return answer(evaluation_body)


def answer(body_of: Callable[[object, graph.Checkpoint], bytes], mimetype: str = "application/json") -> Response:
    """The one way a body is admitted, read and parsed (415, 413, 400, 503), then answered by `body_of`
    within the deadline (504)."""
    deadline = Deadline(current_app.config["DEADLINE_SECONDS"])
    with cyclic_gc_paused(), admitted_body() as body:
        document = parse_json(body)
        return current_app.response_class(body_of(document, deadline.check), mimetype=mimetype)


def evaluation_body(document: object, checkpoint: graph.Checkpoint) -> bytes:
    """The 200 body of one graph request: the compiled fast path's when it answers, which is exactly the
    reference path's; else the reference path's, which also explains every refusal."""
    if current_app.config["FAST_PATH"]:
        with phase("fastpath"):
            answer_bytes = fastpath.evaluate(document, current_app.config["MAX_NODES"])
        if answer_bytes is not None:
            note_graph_size(len(document["nodes"]))
            return answer_bytes
    request_graph = valid_graph_request(document)
    checkpoint()
    nodes = request_graph["nodes"]
    note_graph_size(len(nodes))
    output, values = graph.evaluate(nodes, request_graph.get("output"), checkpoint)
    with phase("write"):
        return evaluation_json(output, nodes, values, checkpoint)


@contextmanager
def admitted_body() -> Iterator[bytes]:
    """The JSON body, holding its place in the worker's memory budget until the answer is made.

    A body of known length that could never fit is refused before it is read, so the refusal costs
    nothing; while a body arrives it holds only its own size of the budget, so that a slow client
    holds little; once read, it is admitted for what evaluating it may cost.
    """
    if request.mimetype != "application/json":
        raise Problem(
            415,
            "about:blank",
            "Unsupported Media Type",
            f"The body must be application/json, not {request.mimetype or 'untyped'}.",
        )
    budget = current_app.extensions["valuegraph.memory_budget"]
    length, limit = request.content_length, current_app.config["MAX_CONTENT_LENGTH"]
    if length is None:
        body = request_body()
    else:
        if length > limit:
            raise body_too_large(limit)
        budget.refuse_if_never_fits(length)
        with budget.admit(length, per_body_byte=1):
            body = request_body()
    with budget.admit(len(body)):
        yield body


def valid_graph_request(document: object) -> dict:
    """The graph request, valid by the contract: a refusal raises, with the schemas' explanation."""
    with phase("validate"):
        if is_valid_request(document, current_app.config["MAX_NODES"]):
            return document
        return current_app.extensions["valuegraph.request_schema"].load(document)


def parse_json(body: bytes) -> object:
    try:
        with phase("parse"):
            return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, "/problems/invalid-json", "The body is not valid JSON", f"{error}.") from None


def evaluation_json(
    output: graph.NodeId,
    nodes: list[dict],
    values: list,
    checkpoint: graph.Checkpoint = lambda: None,
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


def json_bytes(value: object) -> bytes:
    """orjson's JSON, or the standard library's where orjson cannot write a number: an integer past 64
    bits, which the seed's int arithmetic makes (a grad summed over 2**64 paths of adds). The numbers'
    values are the same; only such a slice is written the slower way."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
