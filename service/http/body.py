"""Reading a request's body: its media type and encoding, its size limit, its framing and its pace,
each refused as problem details instead of surfacing as a 500.

The body is read straight from the server's input stream. Under gunicorn, the worker's event loop has
received the whole body before the app runs (service/runtime/worker.py); the stream then raises what
the loop found: malformed chunked framing (gunicorn's ParseException) or a body cut short (NoMoreData),
the client's doing, answered 400. A server that reads as the app reads may raise a TimeoutError for a
client too slow, answered 408.
"""

from flask import current_app, request

from service.http.problems import Problem

try:
    from gunicorn.http.errors import NoMoreData, ParseException
except ImportError:  # the app also runs under other WSGI servers (the tests' client, werkzeug)
    NoMoreData = ParseException = ()

IDENTITY = ("", "identity")


def check_media_type() -> None:
    """415 unless the body is application/json in UTF-8 (RFC 8259 has no other charset), sent uncompressed."""
    if request.mimetype != "application/json":
        raise unsupported_media_type(f"The body must be application/json, not {request.mimetype or 'untyped'}.")
    charset = request.mimetype_params.get("charset", "utf-8")
    if charset.lower() != "utf-8":
        raise unsupported_media_type(
            f"JSON is UTF-8 (RFC 8259): send the body in UTF-8, with charset=utf-8 or none, not charset={charset[:64]!r}."
        )
    encoding = request.environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in IDENTITY:
        raise unsupported_media_type(
            f"Content-Encoding {encoding[:64]!r} is not supported; send the body uncompressed (identity)."
        )


def declared_length() -> int | None:
    """The body's Content-Length (None for a chunked body); 413 when it is over MAX_CONTENT_LENGTH."""
    length = request.content_length
    if length is not None and length > current_app.config["MAX_CONTENT_LENGTH"]:
        raise body_too_large()
    return length


def read_body(length: int | None) -> bytes:
    """The body, read straight from the server: `length` bytes, or, for a chunked body, until it ends or
    one byte past the limit (413)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if length is None and not request.environ.get("wsgi.input_terminated"):
        return b""
    try:
        body = request.environ["wsgi.input"].read(limit + 1 if length is None else length)
    except ParseException as error:
        raise Problem(400, "about:blank", "Bad Request", f"The body's framing is malformed: {error}.") from None
    except NoMoreData:
        raise Problem(400, "about:blank", "Bad Request", "The body ended before its declared length.") from None
    except TimeoutError as error:
        raise Problem(408, "about:blank", "Request Timeout", f"{error}") from None
    if len(body) > limit:
        raise body_too_large()
    return body


def unsupported_media_type(detail: str) -> Problem:
    return Problem(415, "about:blank", "Unsupported Media Type", detail)


def body_too_large() -> Problem:
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    return Problem(
        413,
        "about:blank",
        "Content Too Large",
        f"The body is over the limit of {limit} bytes (VALUEGRAPH_MAX_BODY_BYTES).",
    )
