"""A batch, {"graphs": [...]}: each item answered on its own, in order, as its own request would be;
only a bad envelope refuses it all. Used by POST /v1/evaluate/batch and POST /v1/grade/batch."""

from collections.abc import Iterable

import orjson
from flask import current_app

from service.contract.batch import is_valid_batch
from service.core.fastpath import ItemBytes
from service.core.graphs import GraphError
from service.core.record import phase
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
    return results_json(graphs, answer_item, member, checkpoint)


def batch_body_of_parts(
    parts: list[bytes | ItemBytes], body: bytes, answer_item: ItemAnswer, member: bytes, checkpoint: Checkpoint
) -> bytes:
    """The answer of a batch whose items the fast path answered in `parts` (fastpath.evaluate_batch), but
    for those it left, given as where their bytes are in `body`: each of those parsed and answered here,
    in its place, as batch_body answers it."""

    def items():
        for part in parts:
            if type(part) is bytes:
                yield part
            else:
                with phase("parse"):
                    item = orjson.loads(memoryview(body)[part[0] : part[1]])
                yield item

    return results_json(items(), answer_item, member, checkpoint)


def results_json(items: Iterable[object], answer_item: ItemAnswer, member: bytes, checkpoint: Checkpoint) -> bytes:
    """{"results": [...]} of the items, in order; an item already answered comes as its result's bytes."""
    results, entries_left = [], MAX_BATCH_ENTRIES
    for item in items:
        if type(item) is bytes:
            results.append(item)
            continue
        checkpoint()
        status, body = item_result(answer_item, item, checkpoint, explain=entries_left > 0)
        if status != 200:
            listed = len(body.get("errors", ()))
            body, entries_left = (body, entries_left - listed) if listed <= entries_left else (without_entries(body), 0)
            body = orjson.dumps(body)
        before, after = item_framing(status, member if status == 200 else b"problem")
        results.append(before + body + after)
    return b'{"results":[%b]}' % b",".join(results)


def item_framing(status: int, member: bytes) -> tuple[bytes, bytes]:
    """What goes before and after an item's answer (its 200 body or its problem) among the results."""
    return b'{"status":%d,"%b":' % (status, member), b"}"


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
    except Problem as error:
        problem = error
    return problem.status, problem.body
