"""Every error as RFC 9457 problem details, whatever raised it: never an HTML page, never a bare 500."""

import logging

import orjson
from flask import Flask, Response, current_app
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from schemas.graph import is_id
from service import observe
from service.graph import Fault, GraphError
from service.limits import DeadlineExceeded, OverBudget

PROBLEM_MIMETYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 1
#: The most entries one problem's `errors` lists: room for the 100 items of a list or unknown keys of
#: a node the schemas explain (schemas/graph.py MAX_EXPLAINED) and their counts, and a bound on any other.
MAX_ENTRIES = 300
GRAPH_PROBLEMS = {
    "invalid-graph": "The graph is not valid",
    "numeric-error": "The graph cannot be evaluated in finite numbers",
}


class Problem(Exception):
    """An error response: status, type (a URI reference), title, detail and any extra members."""

    def __init__(self, status: int, type_: str, title: str, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.headers = status, headers or {}
        self.body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}


def problem_response(problem: Problem) -> Response:
    body = observe.refusal(problem.body)
    response = current_app.response_class(orjson.dumps(body), status=problem.status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(problem.headers)
    return response


def from_http_exception(error: HTTPException) -> Problem:
    headers = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else None
    return Problem(error.code, "about:blank", error.name, error.description, headers)


def from_validation_error(error: ValidationError) -> Problem:
    """marshmallow's nested messages, flattened to one entry per node and field, capped (`listed`)."""
    nodes = error.data.get("nodes") if isinstance(error.data, dict) else None
    errors = []
    for key, messages in error.normalized_messages().items():
        if key == "nodes" and isinstance(messages, dict):
            for position, node_messages in messages.items():
                if isinstance(position, int):
                    node = nodes[position]
                    named = {"node": node["id"]} if isinstance(node, dict) and is_id(node.get("id")) else {}
                    errors += [
                        {**named, "index": position, "field": field, "message": text}
                        for field, text in _flatten(node_messages)
                    ]
                else:
                    errors += [{"field": "nodes", "message": text} for text in node_messages]
        else:
            errors += [{"field": None if key == "_schema" else key, "message": text} for _, text in _flatten(messages)]
    return invalid_graph(errors)


def invalid_graph(errors: list[dict]) -> Problem:
    errors = listed(errors)
    return Problem(
        422,
        "/problems/invalid-graph",
        "The graph is not valid",
        f"{len(errors)} problem{'s' if len(errors) > 1 else ''} found; see errors.",
        errors=errors,
    )


def listed(errors: list[dict]) -> list[dict]:
    """At most MAX_ENTRIES entries, the last counting those left out: a refusal's size is bounded,
    whatever the request."""
    if len(errors) <= MAX_ENTRIES:
        return errors
    more = len(errors) - MAX_ENTRIES + 1
    return [*errors[: MAX_ENTRIES - 1], {"field": None, "message": f"{more} more problems; the first are listed."}]


def _flatten(messages, field=None):
    """(field, message) pairs from marshmallow's messages: a list, or a dict by field name or list index."""
    if isinstance(messages, list):
        return [(field, text) for text in messages]
    pairs = []
    for key, inner in messages.items():
        name = f"{field}[{key}]" if isinstance(key, int) else field if key == "_schema" else key
        pairs += _flatten(inner, name)
    return pairs


def from_graph_error(error: GraphError) -> Problem:
    errors = [fault_entry(fault) for fault in error.faults]
    if error.more:
        errors.append(
            {"field": None, "message": f"{error.more} more like these; the first {len(error.faults)} are listed."}
        )
    return Problem(422, f"/problems/{error.kind}", GRAPH_PROBLEMS[error.kind], error.detail, errors=errors)


def fault_entry(fault: Fault) -> dict:
    """A fault as one entry of a problem's `errors`: the node's id and position where it is a node's."""
    entry = {"node": fault.node, "index": fault.index} if fault.index is not None else {}
    entry.update(field=fault.field, message=fault.message)
    entry.update((name, getattr(fault, name)) for name in ("op", "inputs", "cycle") if getattr(fault, name) is not None)
    return entry


def from_over_budget(error: OverBudget) -> Problem:
    needed, budget = f"{error.needed:,}", f"{error.budget:,}"
    if not error.ever:
        return Problem(
            413,
            "/problems/over-memory-budget",
            "The request needs more memory than a worker may use",
            f"A body this large may need up to {needed} bytes of memory to evaluate; a worker's budget "
            f"is {budget} bytes (VALUEGRAPH_MEMORY_BUDGET_BYTES). Send a smaller graph.",
        )
    return Problem(
        503,
        "/problems/over-memory-budget",
        "The service is busy",
        f"The requests in progress hold this worker's memory budget ({budget} bytes, "
        f"VALUEGRAPH_MEMORY_BUDGET_BYTES); this one needs up to {needed} more. Retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def from_deadline_exceeded(error: DeadlineExceeded) -> Problem:
    return Problem(
        504,
        "/problems/deadline-exceeded",
        "The evaluation took too long",
        f"The evaluation ran past the deadline of {error.seconds:g} seconds (VALUEGRAPH_DEADLINE_SECONDS) "
        "and was stopped.",
    )


def register(app: Flask) -> None:
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(HTTPException, lambda error: problem_response(from_http_exception(error)))
    app.register_error_handler(ValidationError, lambda error: problem_response(from_validation_error(error)))
    app.register_error_handler(GraphError, lambda error: problem_response(from_graph_error(error)))
    app.register_error_handler(OverBudget, lambda error: problem_response(from_over_budget(error)))
    app.register_error_handler(DeadlineExceeded, lambda error: problem_response(from_deadline_exceeded(error)))

    @app.errorhandler(Exception)
    def unexpected(error):
        logging.getLogger(__name__).exception("unexpected error")
        return problem_response(
            Problem(500, "about:blank", "Internal Server Error", "The server failed; the error is logged.")
        )
