"""A batch, {"graphs": [...]}: each item answered on its own, in order, as its own request would be;
only a bad envelope refuses it all. Used by POST /v1/evaluate/batch and POST /v1/grade/batch."""

import orjson
from flask import current_app

from service.contract.batch import is_valid_batch
from service.core.graphs import GraphError
from service.core.traversal import Checkpoint
from service.http.answer import ItemAnswer, validated
from service.http.problem_types import title
from service.http.problems import Problem, field_entries, from_graph_error

#: The most problem entries (`errors`) one batch answer lists, over all its items: each item's problem
#: lists at most 100, and past this the items' problems keep their type and detail but list none, so
#: that a batch of invalid graphs cannot answer many times its own size.
MAX_BATCH_ENTRIES = 1000


def batch_body(document: object, answer_item: ItemAnswer, member: bytes, checkpoint: Checkpoint) -> bytes:
    """{"results": [...]}: each item answered on its own, in order; only a bad envelope refuses it all."""
    config = current_app.config
    graphs = validated(
        document,
        lambda document: is_valid_batch(document, config["MAX_BATCH_GRAPHS"], config["MAX_BATCH_NODES"]),
        current_app.extensions["valuegraph.batch_schema"],
        invalid_batch,
    )["graphs"]
    results, entries_left = [], MAX_BATCH_ENTRIES
    for item in graphs:
        checkpoint()
        status, body = item_result(answer_item, item, checkpoint, explain=entries_left > 0)
        if status != 200:
            listed = len(body.get("errors", ()))
            body, entries_left = (body, entries_left - listed) if listed <= entries_left else (without_entries(body), 0)
            body = orjson.dumps(body)
        results.append(b'{"status":%d,"%b":%b}' % (status, member if status == 200 else b"problem", body))
    return b'{"results":[%b]}' % b",".join(results)


def invalid_batch(error) -> Problem:
    errors = field_entries(error)
    return Problem(
        422,
        "/problems/invalid-batch",
        "The batch is not valid",
        f"{len(errors)} problem{'s' if len(errors) > 1 else ''} found; see errors.",
        errors=errors,
    )


def unexplained(kind: str) -> Problem:
    """An invalid item's problem once the batch's answer has listed all the entries it may."""
    return Problem(
        422,
        f"/problems/{kind}",
        title(kind),
        f"Not explained: the batch's answer already lists its {MAX_BATCH_ENTRIES} problem entries.",
    )


def without_entries(problem: dict) -> dict:
    """An item's problem past the batch's entries: its type and detail, none of its entries."""
    trimmed = {key: value for key, value in problem.items() if key != "errors"}
    trimmed["detail"] += f" Not listed: this batch's answer lists at most {MAX_BATCH_ENTRIES} problem entries."
    return trimmed


def item_result(
    answer_item: ItemAnswer, item: object, checkpoint: Checkpoint, explain: bool
) -> tuple[int, bytes | dict]:
    """(status, body) of one item, as its own request would get them: its answer's bytes, or its
    problem; past the batch's entries (`explain` false), an invalid item's problem says so without the
    cost of explaining it. The deadline is the whole batch's: past it, the batch is answered 504 as
    /v1/evaluate would be."""
    try:
        return 200, answer_item(item, checkpoint, explain)
    except GraphError as error:
        problem = from_graph_error(error)
        return problem.status, problem.body
    except Problem as error:
        return error.status, error.body
