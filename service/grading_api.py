"""POST /v1/grade, /v1/evaluate/batch and /v1/grade/batch.

A request is admitted, parsed and timed as POST /v1/evaluate's is (service.api, service.limits); one
document becomes one answer body through `evaluation_body` or `grade_body`, which call the same
functions as /v1/evaluate; a batch runs them once per item and turns each item's problem into its
own result, so that one bad graph spoils no other.
"""

from collections.abc import Callable

import orjson
from flask import Blueprint, Response, current_app
from marshmallow import ValidationError

from schemas.batch import is_valid_batch
from schemas.grade import DEFAULT_ATOL, DEFAULT_RTOL, is_valid_grade_request
from schemas.graph import is_id
from service import api, graph
from service.errors import Problem, from_graph_error, from_validation_error, invalid_graph, listed
from service.grading import Tolerance, grade

bp = Blueprint("grading", __name__)

Checkpoint = Callable[[], None]


@bp.post("/v1/grade")
def grade_route() -> Response:
    return api.answer(grade_body)


@bp.post("/v1/evaluate/batch")
def evaluate_batch() -> Response:
    return api.answer(lambda document, checkpoint: batch_body(document, api.evaluation_body, b"evaluation", checkpoint))


@bp.post("/v1/grade/batch")
def grade_batch() -> Response:
    return api.answer(lambda document, checkpoint: batch_body(document, grade_body, b"grade", checkpoint))


def grade_body(document: object, checkpoint: Checkpoint) -> bytes:
    """The 200 body of POST /v1/grade for this document; raises a Problem or GraphError otherwise."""
    try:
        grade_request = (
            document
            if is_valid_grade_request(document, current_app.config["MAX_NODES"])
            else current_app.extensions["valuegraph.grade_schema"].load(document)
        )
    except ValidationError as error:
        raise grade_validation_problem(error) from None
    checkpoint()
    nodes = grade_request["nodes"]
    output, values = graph.evaluate(nodes, grade_request.get("output"), checkpoint)
    given = grade_request.get("tolerance", {})
    tolerance = Tolerance(rtol=float(given.get("rtol", DEFAULT_RTOL)), atol=float(given.get("atol", DEFAULT_ATOL)))
    body = grade(nodes, output, values, grade_request["submitted"], tolerance)
    checkpoint()
    return api.json_bytes(body)


def batch_body(
    document: object, answer_item: Callable[[object, Checkpoint], bytes], member: bytes, checkpoint: Checkpoint
) -> bytes:
    """{"results": [...]}: each item answered on its own, in order; only a bad envelope refuses it all."""
    config = current_app.config
    try:
        if not is_valid_batch(document, config["MAX_BATCH_GRAPHS"], config["MAX_BATCH_NODES"]):
            document = current_app.extensions["valuegraph.batch_schema"].load(document)
        graphs = document["graphs"]
    except ValidationError as error:
        errors = listed([{"field": field, "message": text} for field, text in _paths(error.normalized_messages())])
        raise Problem(
            422,
            "/problems/invalid-batch",
            "The batch is not valid",
            f"{len(errors)} problem{'s' if len(errors) > 1 else ''} found; see errors.",
            errors=errors,
        ) from None
    results, entries_left = [], MAX_BATCH_ENTRIES
    for item in graphs:
        checkpoint()
        status, body = item_result(answer_item, item, checkpoint)
        if status != 200:
            body = within_the_batchs_entries(body, entries_left)
            entries_left -= len(body.get("errors", ()))
            body = orjson.dumps(body)
        results.append(b'{"status":%d,"%b":%b}' % (status, member if status == 200 else b"problem", body))
    return b'{"results":[%b]}' % b",".join(results)


#: The most problem entries (`errors`) one batch answer lists, over all its items: each item's problem
#: lists at most 100, and past this the items' problems keep their type and detail but list none, so
#: that a batch of invalid graphs cannot answer many times its own size.
MAX_BATCH_ENTRIES = 1000


def within_the_batchs_entries(problem: dict, entries_left: int) -> dict:
    """The item's problem, or, past the batch's entries, the problem without its list of entries."""
    if len(problem.get("errors", ())) <= entries_left:
        return problem
    trimmed = {key: value for key, value in problem.items() if key != "errors"}
    trimmed["detail"] += f" Not listed: this batch's answer lists at most {MAX_BATCH_ENTRIES} problem entries."
    return trimmed


def item_result(
    answer_item: Callable[[object, Checkpoint], bytes], item: object, checkpoint: Checkpoint
) -> tuple[int, bytes | dict]:
    """(status, body) of one item, as its own request would get them: its answer's bytes, or its
    problem. The deadline is the whole batch's: past it, the batch is answered 504 as /v1/evaluate
    would be."""
    try:
        return 200, answer_item(item, checkpoint)
    except ValidationError as error:
        problem = from_validation_error(error)
    except graph.GraphError as error:
        problem = from_graph_error(error)
    except Problem as error:
        problem = error
    return problem.status, problem.body


def grade_validation_problem(error: ValidationError) -> Problem:
    """The graph's problems as /v1/evaluate names them, and the submission's by entry and field
    (`submitted[3].local_grads[1]`, `tolerance.rtol`)."""
    messages = error.normalized_messages()
    graph_messages = {key: value for key, value in messages.items() if key not in ("submitted", "tolerance")}
    errors = []
    if graph_messages:
        errors += from_validation_error(ValidationError(graph_messages, data=error.data)).body["errors"]
    document = error.data if isinstance(error.data, dict) else {}
    entries = document.get("submitted")
    for field, text in _paths({key: messages[key] for key in ("submitted", "tolerance") if key in messages}):
        named = {}
        if field.startswith("submitted[") and isinstance(entries, list):
            entry = entries[int(field[len("submitted[") : field.index("]")])]
            if isinstance(entry, dict) and is_id(entry.get("id")):
                named = {"node": entry["id"]}
        errors.append({**named, "field": field, "message": text})
    return invalid_graph(errors)


def _paths(messages, prefix=""):
    """(field path, message) pairs from marshmallow's nested messages: `submitted[3].data`."""
    if isinstance(messages, list):
        return [(prefix or None, text) for text in messages]
    pairs = []
    for key, inner in messages.items():
        if key == "_schema":
            path = prefix
        elif isinstance(key, int):
            path = f"{prefix}[{key}]"
        else:
            path = f"{prefix}.{key}" if prefix else key
        pairs += _paths(inner, path)
    return pairs
