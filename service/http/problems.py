"""Every error as RFC 9457 problem details, whatever raised it: never an HTML page, never a bare 500.

Each problem's wording is made here, once; marshmallow's nested messages are flattened here, once, to
(path, message) pairs that each route's explanation turns into entries naming the node and the field.
"""

import logging

import orjson
from flask import Flask, Response, current_app
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from service.contract.graph import is_id
from service.core import record
from service.core.deadline import DeadlineExceeded
from service.core.graphs import Fault, GraphError
from service.http.problem_types import title

PROBLEM_MIMETYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 1
#: The most entries one problem's `errors` lists: room for the 100 items of a list or unknown keys of
#: a node the schemas explain (service/contract/graph.py MAX_EXPLAINED) and their counts, and a bound on any other.
MAX_ENTRIES = 300

Path = tuple[str | int, ...]


class Problem(Exception):
    """An error response: status, type (a URI reference), title, detail and any extra members."""

    def __init__(self, status: int, type_: str, title: str, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.headers = status, headers or {}
        self.body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}


def problem_response(problem: Problem) -> Response:
    """The problem's answer, carrying the request's id; its type is recorded for the metrics."""
    body = problem.body
    request_record = record.current()
    if request_record is not None:
        request_record.problem_type = body.get("type")
        body = {**body, "request_id": request_record.request_id}
    response = current_app.response_class(orjson.dumps(body), status=problem.status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(problem.headers)
    return response


def from_http_exception(error: HTTPException) -> Problem:
    headers = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else None
    return Problem(error.code, "about:blank", error.name, error.description, headers)


# --- marshmallow's refusals ----------------------------------------------------------------------------


#: marshmallow's own words, said in the contract's: "data" is a field of ours, and "input type" says
#: nothing of what was wanted.
MARSHMALLOW_WORDS = {
    "Missing data for required field.": "Required, and missing.",
    "Invalid input type.": "Not a JSON object: a JSON object is required here.",
}


def message_paths(messages: dict | list, path: Path = ()) -> list[tuple[Path, str]]:
    """marshmallow's nested messages as (path, message) pairs: the path is the keys and list indices
    that lead to the message (`("submitted", 3, "local_grads")`); marshmallow's `_schema` adds none."""
    if isinstance(messages, list):
        return [(path, MARSHMALLOW_WORDS.get(text, text)) for text in messages]
    pairs = []
    for key, inner in messages.items():
        pairs += message_paths(inner, path if key == "_schema" else (*path, key))
    return pairs


def field_path(path: Path) -> str | None:
    """A path as a field's name: `submitted[3].local_grads[1]`, `inputs.a`; None for the whole request."""
    name = ""
    for key in path:
        name += f"[{key}]" if isinstance(key, int) else f".{key}" if name else str(key)
    return name or None


def graph_entry(path: Path, message: str, nodes: object) -> dict:
    """One entry of an invalid graph's `errors`: a node's field names the node (its id, its index)."""
    if path[:1] == ("nodes",) and len(path) > 1 and isinstance(path[1], int):
        node = nodes[path[1]]
        named = {"node": node["id"]} if isinstance(node, dict) and is_id(node.get("id")) else {}
        return {**named, "index": path[1], "field": field_path(path[2:]), "message": message}
    return {"field": path[0] if path else None, "message": message}


def invalid_graph_request(error: ValidationError) -> Problem:
    """The schemas' refusal of a graph request, one entry per node and field, capped (`listed`)."""
    nodes = error.data.get("nodes") if isinstance(error.data, dict) else None
    return invalid_graph(
        [graph_entry(path, message, nodes) for path, message in message_paths(error.normalized_messages())]
    )


def invalid_graph(errors: list[dict]) -> Problem:
    errors = listed(errors)
    return Problem(
        422,
        "/problems/invalid-graph",
        title("invalid-graph"),
        f"{len(errors)} problem{'s' if len(errors) > 1 else ''} found; see errors.",
        errors=errors,
    )


def field_entries(error: ValidationError) -> list[dict]:
    """The schemas' refusal of a request that is not a graph, one entry per field, named by its path."""
    return listed(
        [
            {"field": field_path(path), "message": message}
            for path, message in message_paths(error.normalized_messages())
        ]
    )


def field_problem(error: ValidationError, status: int, problem_type: str, title: str) -> Problem:
    """The schemas' refusal of a request that is not a graph (an expression, a query string)."""
    errors = field_entries(error)
    detail = errors[0]["message"] if len(errors) == 1 else f"{len(errors)} problems found; see errors."
    return Problem(status, problem_type, title, detail, errors=errors)


def listed(errors: list[dict]) -> list[dict]:
    """At most MAX_ENTRIES entries, the last counting those left out: a refusal's size is bounded,
    whatever the request."""
    if len(errors) <= MAX_ENTRIES:
        return errors
    more = len(errors) - MAX_ENTRIES + 1
    return [*errors[: MAX_ENTRIES - 1], {"field": None, "message": f"{more} more problems; the first are listed."}]


# --- the evaluation's refusals -------------------------------------------------------------------------


def from_graph_error(error: GraphError) -> Problem:
    errors = [fault_entry(fault) for fault in error.faults]
    if error.more:
        errors.append(
            {"field": None, "message": f"{error.more} more like these; the first {len(error.faults)} are listed."}
        )
    return Problem(422, f"/problems/{error.kind}", title(error.kind), error.detail, errors=errors)


def fault_entry(fault: Fault) -> dict:
    """A fault as one entry of a problem's `errors`: the node's id and position where it is a node's."""
    entry = {"node": fault.node, "index": fault.index} if fault.index is not None else {}
    entry.update(field=fault.field, message=fault.message)
    entry.update((name, getattr(fault, name)) for name in ("op", "inputs", "cycle") if getattr(fault, name) is not None)
    return entry


def over_memory_budget(needed: int, budget: int, ever: bool) -> Problem:
    """413 for a request that could never fit a worker's memory budget, 503 for one that does not fit now."""
    shown_needed, shown_budget = f"{needed:,}", f"{budget:,}"
    if not ever:
        return Problem(
            413,
            "/problems/over-memory-budget",
            title("over-memory-budget", 413),
            f"A body this large may need up to {shown_needed} bytes of memory to evaluate; a worker's budget "
            f"is {shown_budget} bytes (VALUEGRAPH_MEMORY_BUDGET_BYTES). Send a smaller graph.",
        )
    return Problem(
        503,
        "/problems/over-memory-budget",
        title("over-memory-budget", 503),
        f"The requests in progress hold this worker's memory budget ({shown_budget} bytes, "
        f"VALUEGRAPH_MEMORY_BUDGET_BYTES); this one needs up to {shown_needed} more. Retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def from_deadline_exceeded(error: DeadlineExceeded) -> Problem:
    return Problem(
        504,
        "/problems/deadline-exceeded",
        title("deadline-exceeded"),
        f"The evaluation ran past the deadline of {error.seconds:g} seconds (VALUEGRAPH_DEADLINE_SECONDS) "
        "and was stopped.",
    )


# --- pictures ------------------------------------------------------------------------------------------


def too_large_to_draw(message: str, field: str = "nodes") -> Problem:
    """422 for a picture that is not drawn: too many nodes or edges (`field` "nodes"), or too large for
    the format asked (`field` "format")."""
    return Problem(
        422,
        "/problems/graph-too-large-to-draw",
        title("graph-too-large-to-draw"),
        message,
        errors=[{"field": field, "message": message}],
    )


def format_unavailable() -> Problem:
    message = (
        "SVG pictures are drawn by Graphviz's dot, which is not installed where this service runs. "
        "format=mermaid and format=dot answer the picture as text (`dot -Tsvg` draws the latter); "
        "format=json gives its content."
    )
    return Problem(
        406,
        "/problems/format-unavailable",
        title("format-unavailable"),
        message,
        errors=[{"field": "format", "message": message}],
    )


def drawing_failed(reason: str) -> Problem:
    return Problem(
        503,
        "/problems/drawing-failed",
        title("drawing-failed"),
        f"Graphviz's dot failed ({reason}); format=dot answers the picture's text.",
    )


def register(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(HTTPException, lambda error: problem_response(from_http_exception(error)))
    app.register_error_handler(GraphError, lambda error: problem_response(from_graph_error(error)))
    app.register_error_handler(DeadlineExceeded, lambda error: problem_response(from_deadline_exceeded(error)))

    @app.errorhandler(Exception)
    def unexpected(error):
        logging.getLogger(__name__).exception("unexpected error")
        return problem_response(
            Problem(500, "about:blank", "Internal Server Error", "The server failed; the error is logged.")
        )
