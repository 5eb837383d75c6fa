"""The contract's part about the pages for people (service/http/routes/pages.py) and their assets
(service/http/routes/assets.py): each an HTML page or a named file, open without a token."""

import copy

from apispec import APISpec

from service.http.problem_types import PROBLEM_TYPES
from service.http.routes.assets import ASSET_MAX_AGE_SECONDS, ASSETS

PAGES = {
    "/": (
        "index",
        "The landing page: what the service is, with links to the docs, the contract, health and the playground.",
    ),
    "/docs": (
        "docs",
        "Interactive API docs of this contract (Swagger UI, served from this service, nothing from elsewhere).",
    ),
    "/playground": (
        "playground",
        "The playground: an expression or a graph evaluated with this API, drawn, with every node's data and grad.",
    ),
    "/problems": ("problems", "The problem types this service answers with, each linked to its page."),
}

#: The headers of every page and asset: (header, component's name, description).
PAGE_HEADERS = (
    (
        "Content-Security-Policy",
        "ContentSecurityPolicy",
        "Only this origin: no inline script or style, no request to another site.",
    ),
    ("ETag", "ETag", "The content's tag, for a conditional request (If-None-Match)."),
    (
        "Cache-Control",
        "CacheControl",
        f"Pages: no-cache (revalidated on each visit); assets: public, max-age={ASSET_MAX_AGE_SECONDS}.",
    ),
)


def answers(description: str, media_type: str, any_route: dict, **more: dict) -> dict:
    """200 with the page or file and its headers, 304 for a current copy, and what any route answers."""
    return {
        200: {
            "description": description,
            "headers": {header: component for header, component, _ in PAGE_HEADERS},
            "content": {media_type: {"schema": {"type": "string"}}},
        },
        304: {"description": "The copy the client has (If-None-Match) is current: no body."},
        **more,
        **copy.deepcopy(any_route),
    }


def add_pages(spec: APISpec, any_route: dict) -> None:
    """GET of each page, /redoc's redirect, each problem type's page, and each asset."""
    for _, component, description in PAGE_HEADERS:
        spec.components.header(component, {"description": description, "schema": {"type": "string"}})
    for path, (name, summary) in PAGES.items():
        spec.path(
            path=path,
            operations={
                "get": {
                    "summary": summary,
                    "operationId": f"{name}_page",
                    "responses": answers(summary, "text/html", any_route),
                }
            },
        )
    spec.path(
        path="/redoc",
        operations={
            "get": {
                "summary": "ReDoc is not served here: redirects to the interactive docs, /docs.",
                "operationId": "redoc_page",
                "responses": {
                    302: {
                        "description": "See /docs.",
                        "headers": {"Location": {"description": "/docs", "schema": {"type": "string"}}},
                    },
                    **copy.deepcopy(any_route),
                },
            }
        },
    )
    spec.path(
        path="/problems/{name}",
        operations={
            "get": {
                "summary": "A problem type's page: when it happens, what to do, an example. A problem's `type` is "
                "this page's path.",
                "operationId": "problem_type_page",
                "parameters": [
                    {
                        "in": "path",
                        "name": "name",
                        "required": True,
                        "schema": {"type": "string", "enum": list(PROBLEM_TYPES)},
                    }
                ],
                "responses": answers(
                    "The problem type explained.",
                    "text/html",
                    any_route,
                    **{
                        "404": {
                            "description": "No problem type has this name.",
                            "content": {"application/problem+json": {"schema": "Problem"}},
                        }
                    },
                ),
            }
        },
    )
    for name, asset in ASSETS.items():
        spec.path(
            path=f"/assets/{name}",
            operations={
                "get": {
                    "summary": asset.about,
                    "description": "A file the pages load. They add `?v=` and the start of its digest, which this "
                    "route ignores, so that a new version is fetched anew.",
                    "operationId": "asset_" + name.replace(".", "_").replace("-", "_"),
                    "responses": answers("The file.", asset.media_type, any_route),
                }
            },
        )
