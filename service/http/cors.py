"""Optional CORS, for web pages on other origins that call the service from a browser
(VALUEGRAPH_CORS_ORIGINS: exact origins, or `*`; off when unset, and then it costs nothing).

A browser first sends a preflight (OPTIONS with Access-Control-Request-Method) for a JSON POST or a
request with Authorization or X-Request-ID; it is answered here, before authentication, since a
browser never sends credentials with it: 204 with the route's methods (Allow, as
service/http/allowed_methods.py makes it), the headers a client may send, and how long to remember
that. Every other answer to an allowed origin names it and exposes X-Request-ID and Server-Timing,
which a page's script could not read otherwise. An origin not allowed gets the same answers without
these headers, and its browser keeps them from the page.

Written here rather than with flask-cors: the whole policy is these few lines, with the 204 preflight
and the exposed headers exactly as documented, and no regular-expression origin matching to get wrong.
"""

from flask import Flask, Response, request

ALLOWED_HEADERS = "Content-Type, Authorization, X-Request-ID"
EXPOSED_HEADERS = "X-Request-ID, Server-Timing"
#: How long a browser may reuse a preflight's answer (Chromium caps it at 2 hours).
PREFLIGHT_MAX_AGE_SECONDS = 7200


def register(app: Flask) -> None:
    """Answer preflights and mark answers for the configured origins; nothing at all when there are none."""
    origins = frozenset(app.config["CORS_ORIGINS"])
    if not origins:
        return
    any_origin = "*" in origins

    def allowed(origin: str | None) -> bool:
        return origin is not None and (any_origin or origin in origins)

    def mark(response: Response, origin: str) -> Response:
        response.headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
        return response

    @app.before_request
    def answer_preflight() -> Response | None:
        origin = request.headers.get("Origin")
        if (
            request.method != "OPTIONS"
            or "Access-Control-Request-Method" not in request.headers
            or request.url_rule is None
            or not allowed(origin)
        ):
            return None
        response = app.make_default_options_response()
        response.headers["Access-Control-Allow-Methods"] = response.headers.get("Allow", "")
        response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
        return mark(response, origin)

    @app.after_request
    def expose(response: Response) -> Response:
        if not any_origin:  # the answer depends on the Origin header: a cache must not mix them up
            response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if allowed(origin) and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            mark(response, origin)
        return response
