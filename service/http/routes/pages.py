"""The pages for people: the landing page, the interactive API docs, the playground and a page for each
problem type. HTML from the templates in service/http/templates, assets from routes/assets.py; nothing
from another site, no inline script or style, and no token needed to open them (service/http/auth.py).
"""

import functools
import json

from flask import Blueprint, Response, current_app, redirect, render_template, request
from markupsafe import Markup, escape

from service.contract.examples import EXAMPLE_GRAPH, EXPRESSION_EXAMPLE
from service.core import graphs
from service.http.problem_types import EXAMPLE_REQUEST_ID, PROBLEM_TYPES
from service.http.problems import Problem
from service.http.routes.assets import (
    CONTENT_SECURITY_POLICY,
    DOCS_CONTENT_SECURITY_POLICY,
    asset_url,
    with_page_headers,
)
from service.http.routes.evaluate import evaluation_json
from service.http.routes.meta import spec_document

bp = Blueprint("pages", __name__)


@bp.app_context_processor
def page_helpers() -> dict:
    return {"asset_url": asset_url, "default_origin": DEFAULT_ORIGIN}


@bp.app_template_filter("code")
def code_spans(text: str):
    """The text, escaped, with its `backquoted` parts as <code>."""
    parts = str(escape(text)).split("`")
    return Markup("".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)))


def page(template: str, policy: str = CONTENT_SECURITY_POLICY, **context) -> Response:
    """A page: revalidated on every visit (its ETag makes that a 304 when nothing changed)."""
    response = current_app.response_class(render_template(template, **context), mimetype="text/html")
    response.add_etag()
    response.cache_control.no_cache = True
    return with_page_headers(response.make_conditional(request), policy)


#: The address a page's curl commands name until origin.js writes the one the browser reached: a page
#: never repeats the request's Host header, which the client chooses.
DEFAULT_ORIGIN = "http://localhost:8000"


@functools.cache
def example_answer() -> str:
    output, values = graphs.evaluate(EXAMPLE_GRAPH["nodes"])
    return evaluation_json(output, EXAMPLE_GRAPH["nodes"], values).decode()


def api_operations() -> list[tuple[str, str, str]]:
    """(method, path, summary) of each API operation, as the contract states them."""
    return [
        (method.upper(), path, operation["summary"])
        for path, item in spec_document()["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
        if method != "options"
    ]


@bp.get("/")
def index() -> Response:
    return page(
        "index.html",
        example_body='{"nodes": [\n' + ",\n".join(f"  {json.dumps(node)}" for node in EXAMPLE_GRAPH["nodes"]) + "\n]}",
        example_answer=example_answer(),
        operations=api_operations(),
        problem_types=PROBLEM_TYPES.values(),
    )


@bp.get("/docs")
def docs() -> Response:
    return page("docs.html", DOCS_CONTENT_SECURITY_POLICY)


@bp.get("/redoc")
def redoc() -> Response:
    """ReDoc is not served (no Python package ships it apart from another framework): /docs is."""
    return redirect("/docs", 302)


@bp.get("/playground")
def playground() -> Response:
    return page(
        "playground.html",
        example_graph=json.dumps(EXAMPLE_GRAPH, indent=2),
        example_expression=EXPRESSION_EXAMPLE,
    )


@bp.get("/problems")
def problems() -> Response:
    return page("problems.html", problem_types=PROBLEM_TYPES.values())


@bp.get("/problems/<name>")
def problem_type(name: str) -> Response:
    problem = PROBLEM_TYPES.get(name)
    if problem is None:
        raise Problem(404, "about:blank", "Not Found", f"There is no problem type {name!r}; /problems lists them.")
    example = problem.example
    body = example.body if example else None
    return page(
        "problem.html",
        problem=problem,
        request_id=EXAMPLE_REQUEST_ID,
        example_body=body if body is None or isinstance(body, str) else json.dumps(body),
        example_answer=json.dumps(example.answer, indent=2, ensure_ascii=False) if example else None,
    )
