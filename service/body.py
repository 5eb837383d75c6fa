"""Reading a request's body: its size limit, its encoding, its framing and its pace, each refused as
problem details instead of surfacing as a 500.

The body is read straight from the server's input stream. Under gunicorn that stream can raise on
malformed chunked framing (gunicorn's ParseException) or when the client sends too slowly
(`ClientTooSlow`, raised by service/worker.py's sockets); both are the client's doing, so they are
answered 400 and 408.
"""

from flask import current_app, request

from service.errors import Problem
from service.lifecycle import ClientTooSlow

try:
    from gunicorn.http.errors import NoMoreData, ParseException
except ImportError:  # the app also runs under other WSGI servers (the tests' client, werkzeug)
    NoMoreData = ParseException = ()

IDENTITY = ("", "identity")


def request_body() -> bytes:
    """The body, refused with 413 when it is over MAX_CONTENT_LENGTH, read straight from the server:
    Content-Length says how much, or, for a chunked body, reading one byte past the limit tells."""
    encoding = request.environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in IDENTITY:
        raise Problem(
            415,
            "about:blank",
            "Unsupported Media Type",
            f"Content-Encoding {encoding[:64]!r} is not supported; send the body uncompressed (identity).",
        )
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    length = request.content_length
    if length is not None and length > limit:
        raise body_too_large(limit)
    if length is None and not request.environ.get("wsgi.input_terminated"):
        return b""
    try:
        body = request.environ["wsgi.input"].read(limit + 1 if length is None else length)
    except ParseException as error:
        raise Problem(400, "about:blank", "Bad Request", f"The body's framing is malformed: {error}.") from None
    except NoMoreData:
        raise Problem(400, "about:blank", "Bad Request", "The body ended before its declared length.") from None
    except ClientTooSlow as error:
        raise Problem(408, "about:blank", "Request Timeout", f"{error}") from None
    if len(body) > limit:
        raise body_too_large(limit)
    return body


def body_too_large(limit: int) -> Problem:
    return Problem(
        413,
        "about:blank",
        "Content Too Large",
        f"The body is over the limit of {limit} bytes (VALUEGRAPH_MAX_BODY_BYTES).",
    )
