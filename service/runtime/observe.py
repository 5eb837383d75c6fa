"""Every request, seen from outside the app: its request id, one JSON log line, its metrics, and the
Server-Timing header of its phases.

`RequestObserver` wraps the Flask app's WSGI callable, so it sees every answer the app gives, errors
included, and times a request until its last byte is handed to the server. The app tells it what only
the app knows through the request's record (service/core/record.py): the phases, the graphs' size, the
problem type of a refusal; and the route, noted after each request.

The log line replaces gunicorn's access log (gunicorn.conf.py turns that off): gunicorn's format atoms
cannot say how many nodes a graph had or how much of a body was read, and do not escape for JSON. No
body, header value or query string is logged, so neither a graph nor a bearer token can reach the log;
only the path, which the routes keep free of data.
"""

import contextlib
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from flask import Flask, Response, request

from service.core import record
from service.runtime import metrics

#: A request id from the client is used when it is this short and this plain; else one is made.
REQUEST_ID = re.compile(r"[A-Za-z0-9._~:+/=-]{1,128}")
#: The longest path written to the log: a log line stays one write, so lines of workers never interleave.
MAX_LOGGED_PATH = 1024
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"})


@dataclass(slots=True)
class Exchange:
    """What is known of one request while it is served, besides its record."""

    method: str
    path: str
    record: record.RequestRecord
    route: str | None = None
    status: int = 0
    body_bytes: int = 0
    response_bytes: int | None = None
    finished: bool = False


_current: ContextVar[Exchange | None] = ContextVar("valuegraph_exchange", default=None)


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is a plain, short one; a new random one otherwise."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


class CountingInput:
    """The request body stream, counting the bytes the app reads from it."""

    def __init__(self, stream, exchange: Exchange) -> None:
        self._stream, self._exchange = stream, exchange

    def _counted(self, data: bytes) -> bytes:
        self._exchange.body_bytes += len(data)
        return data

    def read(self, *args) -> bytes:
        return self._counted(self._stream.read(*args))

    def readline(self, *args) -> bytes:
        return self._counted(self._stream.readline(*args))

    def readlines(self, *args) -> list[bytes]:
        return [self._counted(line) for line in self._stream.readlines(*args)]

    def __iter__(self):
        return (self._counted(line) for line in self._stream)


class ObservedBody:
    """The app's answer, passed through; `finish` runs once, when its last part has been taken or when the
    server closes it, whichever comes first (a test client may read the answer and never close it)."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[], None]) -> None:
        self._body, self._finish = body, finish

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._finish()

    def close(self) -> None:
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._finish()


class RequestObserver:
    """WSGI middleware: request id in and out, Server-Timing, metrics and the log line of every request."""

    def __init__(self, app: Callable, write: Callable[[bytes], None]) -> None:
        self.app, self.write = app, write

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        exchange = Exchange(
            method if method in METHODS else "other",
            (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))[:MAX_LOGGED_PATH],
            record.start(request_id_from(environ.get("HTTP_X_REQUEST_ID"))),
        )
        _current.set(exchange)
        environ["wsgi.input"] = CountingInput(environ["wsgi.input"], exchange)
        metrics.IN_FLIGHT.inc()

        def observed_start_response(status: str, headers: list, exc_info=None):
            exchange.status = int(status.split(" ", 1)[0])
            exchange.response_bytes = next(
                (int(value) for name, value in headers if name.lower() == "content-length"), None
            )
            headers.append(("X-Request-ID", exchange.record.request_id))
            if exchange.record.phases:
                headers.append(("Server-Timing", server_timing(exchange.record.phases)))
            return start_response(status, headers, exc_info)

        def finish() -> None:
            if not exchange.finished:
                exchange.finished = True
                self.finish(exchange, time.perf_counter() - started)

        try:
            answer = self.app(environ, observed_start_response)
        except BaseException:
            exchange.status = exchange.status or 500
            finish()
            raise
        return ObservedBody(answer, finish)

    def finish(self, exchange: Exchange, seconds: float) -> None:
        _current.set(None)
        record.stop()
        facts = exchange.record
        route = exchange.route or "unmatched"
        metrics.IN_FLIGHT.dec()
        metrics.requests(route, exchange.method, exchange.status).inc()
        metrics.latency(route).observe(seconds)
        metrics.WORKER_REQUESTS.inc()
        if exchange.body_bytes and exchange.status != 413:
            metrics.ADMITTED_BODY_BYTES.inc(exchange.body_bytes)
        if facts.nodes is not None:
            metrics.GRAPH_NODES.observe(facts.nodes)
        if facts.problem_type is not None:
            metrics.REFUSALS.labels(facts.problem_type, str(exchange.status)).inc()
        self.write(log_line(exchange, seconds))


def log_line(exchange: Exchange, seconds: float) -> bytes:
    return orjson.dumps(
        {
            "time": datetime.now(UTC),
            "request_id": exchange.record.request_id,
            "method": exchange.method,
            "path": exchange.path,
            "route": exchange.route,
            "status": exchange.status,
            "duration_ms": round(seconds * 1000, 3),
            "nodes": exchange.record.nodes,
            "body_bytes": exchange.body_bytes,
            "response_bytes": exchange.response_bytes,
            "problem": exchange.record.problem_type,
            "pid": os.getpid(),
        },
        option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z,
    )


def server_timing(phases: record.Phases) -> str:
    """The phases as a Server-Timing header value: `parse;dur=1.234, validate;dur=0.5` (milliseconds), a
    phase that ran several times (once per item of a batch) as their sum, so that the header's size does
    not grow with the request."""
    total: dict[str, float] = {}
    for name, seconds in phases:
        total[name] = total.get(name, 0.0) + seconds
    return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in total.items())


_stdout_lock = threading.Lock()


def write_to_stdout(line: bytes) -> None:
    """One whole line per write, flushed, so a line is never split or held back in a buffer."""
    with _stdout_lock, contextlib.suppress(OSError, ValueError):
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


def _note_route(response: Response) -> Response:
    exchange = _current.get()
    if exchange is not None:
        exchange.route = request.url_rule.rule if request.url_rule else None
    return response


def register(app: Flask, write: Callable[[bytes], None] = write_to_stdout) -> None:
    app.after_request(_note_route)
    app.wsgi_app = RequestObserver(app.wsgi_app, write)
