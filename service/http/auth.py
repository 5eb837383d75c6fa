"""Optional bearer-token authentication: on when VALUEGRAPH_TOKENS or VALUEGRAPH_TOKENS_FILE names a token.

Open without a token: the health probes, because a kubelet or a load balancer probes without
credentials and they say nothing about the traffic; the contract, because it is what tells a client
how to authenticate; and the pages for people (the landing page, the docs, the playground, the
problem types' pages and their assets), because a browser cannot send a token with a page it is asked
to open, and they hold nothing but what the contract says (the playground's own calls to the API carry
the token its user types). Everything else needs one: the evaluation routes, an unknown path (so that a
stranger learns nothing about the routes), and /metrics, because its counts and timings describe the
users' traffic (Prometheus sends a bearer token with `authorization: {credentials_file: ...}`).

A token is compared with each configured one by their SHA-256 digests, with hmac.compare_digest and
without stopping at the first match: neither the time to answer nor its length says how much of a
token, or which one, was right.
"""

import hashlib
import hmac

from flask import Flask, request

from service.http.problems import Problem

#: Paths open without a token: the health probes, the contract and the pages (the spec reads this too).
OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.yaml", "/openapi.json", "/", "/docs", "/redoc", "/playground", "/problems"}
)
#: Open too: every path under these, the problem types' pages and the pages' assets.
OPEN_PREFIXES = ("/problems/", "/assets/")

REALM = 'Bearer realm="valuegraph"'


def is_open(path: str) -> bool:
    """True for a path served without a token (a path of the app or of the spec, `/problems/{name}`)."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def is_accepted(given: str, digests: tuple[bytes, ...]) -> bool:
    """True when `given` is one of the tokens whose digests are `digests`; takes the same time for any `given`."""
    given_digest = digest(given)
    matches = [hmac.compare_digest(given_digest, known) for known in digests]
    return any(matches)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header (the scheme in any case), or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthorized(token_sent: bool) -> Problem:
    if token_sent:
        return Problem(
            401,
            "about:blank",
            "Unauthorized",
            "The bearer token is not valid.",
            {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    return Problem(
        401,
        "about:blank",
        "Unauthorized",
        "This service needs a bearer token: send the header Authorization: Bearer TOKEN.",
        {"WWW-Authenticate": REALM},
    )


def register(app: Flask) -> None:
    """Require a token on every route but OPEN_PATHS, if any token is configured."""
    tokens = (*app.config["API_TOKENS"], *app.config["API_TOKENS_FROM_FILE"])
    if not tokens:
        return
    digests = tuple(digest(token) for token in tokens)

    @app.before_request
    def authenticate() -> None:
        if is_open(request.path):
            return
        token = bearer_token(request.headers.get("Authorization"))
        if token is None or not is_accepted(token, digests):
            raise unauthorized(token_sent=token is not None)
