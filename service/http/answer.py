"""The one answer path of every POST route: request bytes are admitted against the worker's memory
budget and read (415, 413, 408, 503), parsed (400), validated or explained (422), answered within the
deadline (504), and written.

A route gives `answer` the function that turns the parsed document into its answer's bytes; everything
else a request goes through is here, once.
"""

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
from flask import Response, current_app
from marshmallow import Schema, ValidationError

from service.core.deadline import Deadline
from service.core.record import phase
from service.core.traversal import Checkpoint
from service.http.body import check_media_type, declared_length, read_body
from service.http.problems import Problem

#: A route's answer from the parsed document, given the request's deadline (a Checkpoint, and its end for the fast path).
AnswerBytes = Callable[[object, Deadline], bytes]
#: A batch item's answer: like AnswerBytes, and told whether its refusal may still be explained.
ItemAnswer = Callable[[object, Checkpoint, bool], bytes]


def answer(
    body_of: AnswerBytes, mimetype: str = "application/json", parse: Callable[[bytes], object] | None = None
) -> Response:
    """The one way a body is admitted, read and parsed (415, 413, 400, 503), then answered by `body_of`
    within the deadline (504). `parse` is parse_json unless a route reads more than JSON. The cyclic GC
    is paused once the body is admitted: a request waiting for the budget holds nothing paused."""
    deadline = Deadline(current_app.config["DEADLINE_SECONDS"])
    with admitted_body() as body, current_app.extensions["valuegraph.gc_pause"]():
        document = (parse or parse_json)(body)
        return current_app.response_class(body_of(document, deadline), mimetype=mimetype)


@contextmanager
def admitted_body() -> Iterator[bytes]:
    """The JSON body, holding its place in the worker's memory budget until the answer is made.

    A body of known length that could never fit is refused before it is read, so the refusal costs
    nothing; while a body arrives it holds only its own size of the budget, so that a slow client
    holds little; once read, it is admitted for what evaluating it may cost.
    """
    check_media_type()
    budget = current_app.extensions["valuegraph.memory_budget"]
    length = declared_length()
    if length is None:
        with phase("read"):
            body = read_body(None)
    else:
        budget.refuse_if_never_fits(length)
        with budget.admit(length, per_body_byte=1), phase("read"):
            body = read_body(length)
    with budget.admit(len(body)):
        yield body


def parse_json(body: bytes) -> object:
    try:
        with phase("parse"):
            return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Problem(400, "/problems/invalid-json", "The body is not valid JSON", f"{error}.") from None


#: A JSON string, or one of the bare tokens for the non-finite numbers that Python's json module writes.
_STRING_OR_NON_FINITE = re.compile(rb'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def parse_json_with_non_finite(body: bytes) -> object:
    """JSON, or JSON with the bare tokens NaN, Infinity and -Infinity, read as the strings "NaN",
    "Infinity" and "-Infinity": how a grader's submission written by Python's json.dumps holds a
    student's non-finite numbers. Where a schema takes no such string, it refuses it by name."""
    try:
        with phase("parse"):
            return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        refusal = error
    with phase("parse"):
        named = _STRING_OR_NON_FINITE.sub(lambda match: b'"%b"' % match[1] if match[1] else match[0], body)
        if named != body:
            try:
                return orjson.loads(named)
            except orjson.JSONDecodeError:
                pass
    raise Problem(400, "/problems/invalid-json", "The body is not valid JSON", f"{refusal}.")


def validated(
    document: object,
    is_valid: Callable[[object], bool],
    schema: Schema,
    explain: Callable[[ValidationError], Problem],
    unexplained: Problem | None = None,
) -> dict:
    """The request, valid by the contract: the document itself when the fast validator accepts it,
    else what the schema loads; a refusal raises the problem `explain` makes of the schema's messages,
    or, when the answer has no room left to list why (a batch's), `unexplained` at once."""
    with phase("validate"):
        if is_valid(document):
            return document
        if unexplained is not None:
            raise unexplained
        try:
            return schema.load(document)
        except ValidationError as error:
            raise explain(error) from None


def json_bytes(value: object) -> bytes:
    """orjson's JSON, or the standard library's where orjson cannot write a number: an integer past 64
    bits, which the reference class's int arithmetic makes (a grad summed over 2**64 paths of adds).
    The numbers' values are the same; only such a slice is written the slower way."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
