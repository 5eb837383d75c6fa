"""The fast path and the reference path side by side, on a request's bytes: what tests/test_fastpath.py and
the fuzzer (tests/fuzz/fuzz_fastpath.c, `make fuzz`) compare.

`reference` is the reference path's 200 body for the bytes or None where it refuses; `fast` is the C
extension's body or None where it declines. The batch is compared through the service's own code
(service/http/batch.py) in an app context, fast path against reference path.
"""

import functools
import math
import struct

import orjson
from marshmallow import ValidationError

from service.contract.graph import GraphRequestSchema
from service.core import _fastpath, graphs
from service.http.app import create_app
from service.http.batch import batch_body, batch_body_of_parts, item_framing
from service.http.problems import Problem
from service.http.routes.evaluate import evaluation_json, reference_evaluation

MAX_NODES = 1_000_000
#: A deadline that never comes (time.monotonic's clock).
NEVER = math.inf


@functools.cache
def request_schema(max_nodes):
    return GraphRequestSchema(max_nodes=max_nodes)


def reference_of_document(document, max_nodes=MAX_NODES):
    """The reference path's 200 body for a parsed request, or None where it refuses it (a 4xx)."""
    try:
        request_graph = request_schema(max_nodes).load(document)
        output, values = graphs.evaluate(request_graph["nodes"], request_graph.get("output"))
    except (ValidationError, graphs.GraphError):
        return None
    return evaluation_json(output, request_graph["nodes"], values)


def reference(body: bytes, max_nodes=MAX_NODES):
    """The reference path's 200 body for the request's bytes, or None where it refuses them (400, 422)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return reference_of_document(document, max_nodes)


def fast(body: bytes, max_nodes=MAX_NODES, labels=True, deadline=NEVER):
    """The fast path's 200 body for the request's bytes (labels allowed, as the contract allows them), or None
    where it declines; it checks the node count it returns against the answer's."""
    answered = _fastpath.evaluate(body, max_nodes, deadline, labels)
    if answered is None:
        return None
    answer, nodes = answered
    assert nodes == answer.count(b'{"id":'), "the node count differs from the answer's"
    return answer


@functools.cache
def batch_app(max_graphs=10_000, max_batch_nodes=MAX_NODES, max_nodes=MAX_NODES):
    return create_app(
        {"TESTING": True, "MAX_BATCH_GRAPHS": max_graphs, "MAX_BATCH_NODES": max_batch_nodes, "MAX_NODES": max_nodes}
    )


def reference_batch(body: bytes, limits=(10_000, MAX_NODES, MAX_NODES)):
    """The reference path's 200 body for a batch's bytes (service/http/batch.py, every item on the
    reference path), or None where the whole batch is refused."""
    with batch_app(*limits).app_context():
        try:
            return batch_body(orjson.loads(body), reference_evaluation, b"evaluation", lambda: None)
        except (orjson.JSONDecodeError, Problem):
            return None


def fast_batch(body: bytes, limits=(10_000, MAX_NODES, MAX_NODES), labels=True, deadline=NEVER):
    """The batch's 200 body with the fast path answering what it takes (in one call) and the reference
    path the items it leaves, as the service answers it; None where the fast path declines the whole batch."""
    answered = _fastpath.evaluate_batch(body, *item_framing(200, b"evaluation"), *limits, deadline, labels)
    if answered is None:
        return None
    parts, _ = answered
    with batch_app(*limits).app_context():
        return batch_body_of_parts(parts, body, reference_evaluation, b"evaluation", lambda: None)


def check(body: bytes) -> None:
    """The fuzzer's check of one input: wherever the fast path answers (a request, a batch, and a leaf
    holding the double of the input's first 8 bytes), it answers the reference path's bytes."""
    answered = fast(body)
    if answered is not None:
        assert answered == reference(body), "the fast path's answer differs from the reference path's"
    batch = fast_batch(body)
    if batch is not None:
        assert batch == reference_batch(body), "the fast path's batch answer differs from the reference path's"
    if len(body) >= 8:
        (x,) = struct.unpack("<d", body[:8])
        if math.isfinite(x):
            leaf = b'{"nodes":[{"id":0,"data":%b}]}' % repr(x).encode()
            assert fast(leaf) == reference(leaf), f"{x!r} is written differently"
