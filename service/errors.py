"""Every error as RFC 9457 problem details, whatever raised it: never an HTML page, never a bare 500."""

import logging

import orjson
from flask import current_app
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from schemas.graph import is_id
from service import observe
from service.graph import GraphError

PROBLEM_MIMETYPE = "application/problem+json"
GRAPH_PROBLEMS = {
    "invalid-graph": "The graph is not valid",
    "numeric-error": "The graph cannot be evaluated in finite numbers",
}


class Problem(Exception):
    """An error response: status, type (a URI reference), title, detail and any extra members."""

    def __init__(self, status, type_, title, detail, headers=None, **extra):
        super().__init__(detail)
        self.status, self.headers = status, headers or {}
        self.body = {"type": type_, "title": title, "status": status, "detail": detail, **extra}


def problem_response(problem):
    body = observe.refusal(problem.body)
    response = current_app.response_class(orjson.dumps(body), status=problem.status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(problem.headers)
    return response


def from_http_exception(error):
    headers = {"Allow": ", ".join(error.valid_methods)} if getattr(error, "valid_methods", None) else None
    return Problem(error.code, "about:blank", error.name, error.description, headers)


def from_validation_error(error):
    """marshmallow's nested messages, flattened to one entry per node and field."""
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
    return Problem(
        422,
        "/problems/invalid-graph",
        "The graph is not valid",
        f"{len(errors)} problem{'s' if len(errors) > 1 else ''} found; see errors.",
        errors=errors,
    )


def _flatten(messages, field=None):
    """(field, message) pairs from marshmallow's messages: a list, or a dict by field name or list index."""
    if isinstance(messages, list):
        return [(field, text) for text in messages]
    pairs = []
    for key, inner in messages.items():
        name = f"{field}[{key}]" if isinstance(key, int) else None if key == "_schema" else key
        pairs += _flatten(inner, name)
    return pairs


def from_graph_error(error):
    return Problem(422, f"/problems/{error.kind}", GRAPH_PROBLEMS[error.kind], error.detail, errors=error.errors)


def register(app):
    app.register_error_handler(Problem, problem_response)
    app.register_error_handler(HTTPException, lambda error: problem_response(from_http_exception(error)))
    app.register_error_handler(ValidationError, lambda error: problem_response(from_validation_error(error)))
    app.register_error_handler(GraphError, lambda error: problem_response(from_graph_error(error)))

    @app.errorhandler(Exception)
    def unexpected(error):
        logging.getLogger(__name__).exception("unexpected error")
        return problem_response(
            Problem(500, "about:blank", "Internal Server Error", "The server failed; the error is logged.")
        )
