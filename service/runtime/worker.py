"""valuegraph's gunicorn worker: gunicorn's threaded worker (gthread) whose event loop does all of a
connection's reading and writing, so that no client, however slow, holds a thread.

The loop reads a request's head and then its whole body, without waiting and at a minimum pace, the
body's bytes held in the worker's memory budget as they arrive; it hands the parsed request to a thread,
which runs the app and hands back the answer's bytes at once; and the loop writes them, at the same pace.
Connections rotate over the workers, readiness turns 503 on SIGTERM, and what the server answers itself
is problem details. Why threads and not an async worker, and each bound: docs/operations.md, "The HTTP
server".
"""

import contextlib
import errno
import heapq
import itertools
import selectors
import socket
import struct
import sys
import time
from collections import deque
from functools import partial

import orjson
from gunicorn import util
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import InvalidHeader, NoMoreData, ParseException, UnsupportedTransferCoding
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from service.runtime import lifecycle
from service.runtime.chunked import ChunkedBody
from service.runtime.config import ConfigError, from_environment, server_from_environment
from service.runtime.memory import MemoryBudget, OverBudget, give_freed_blocks_back

#: How long a connection that is being closed is still read from, what arrives dropped: closing with a
#: request's rest unread would reset the connection and could destroy the answer before it is read.
LINGER_SECONDS = 2.0
#: The most bytes one read takes from a connection.
READ_SIZE = 1 << 20
#: The most bytes read from one connection before the loop turns to the others.
READ_PER_TURN = 4 * READ_SIZE
#: The same for a chunked body, which the loop decodes as it reads.
CHUNKED_PER_TURN = 64 * 1024
#: The most chunks the loop decodes in one turn, over all connections: a few milliseconds (the decoder
#: takes about 2 µs a chunk), so that bodies sent in tiny chunks slow the others by no more than that;
#: they go on in the next turns, and one that cannot keep the minimum rate so gets its 408.
CHUNKS_PER_TURN = 2000
#: Buffers given to one sendmsg().
SEND_BUFFERS = 64
#: As the compose nginx answers the same (deploy/nginx/nginx.conf.template).
TRANSFER_CODING_DETAIL = (
    "Transfer-Encoding is not supported, except chunked alone: send the body with a Content-Length, or chunked."
)
BARE_LF_DETAIL = "The request's head is malformed: each of its lines must end with CRLF (\\r\\n), not a bare LF."
#: gunicorn names these two statuses wrongly ("Bad Request").
REASONS = {500: "Internal Server Error", 501: "Not Implemented"}


class Pace:
    """The time a client has to move bytes: `grace` seconds, then as long as it moves at least `min_rate`
    bytes a second, with at most `grace` seconds saved up by moving faster. So a client that stalls is
    cut off within `grace` seconds, however much it moved before."""

    __slots__ = ("grace", "min_rate", "deadline")

    def __init__(self, grace: float, min_rate: float, now: float):
        self.grace, self.min_rate, self.deadline = grace, min_rate, now + grace

    def moved(self, count: int, now: float) -> None:
        self.deadline = min(self.deadline + count / self.min_rate, now + self.grace)


class LoopSocket(socket.socket):
    """A client connection that only the worker's event loop reads and writes, never waiting. gunicorn's
    code, in a thread, sees the socket it expects: `recv` gives its parser the head the loop handed over,
    `send` and `sendall` keep what an answer writes for the loop to send."""

    def loop_mode(self) -> None:
        super().setblocking(False)
        self.handed = b""
        self.outgoing: deque[memoryview] = deque()
        self.outgoing_bytes = 0

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.handed:
            raise BlockingIOError(errno.EAGAIN, "the event loop handed over no more bytes")
        data, self.handed = self.handed[:size], self.handed[size:]
        return data

    def sendall(self, data, flags: int = 0) -> None:
        if data:
            self.outgoing.append(memoryview(bytes(data)).cast("B"))
            self.outgoing_bytes += len(self.outgoing[-1])

    def send(self, data, flags: int = 0) -> int:
        self.sendall(data)
        return len(data)

    def setblocking(self, flag: bool) -> None:
        pass

    def settimeout(self, value) -> None:
        pass

    def gettimeout(self) -> float:
        return 0.0

    def receive_into(self, buffer) -> int:
        """The loop's read: raises BlockingIOError when nothing has arrived."""
        return super().recv_into(buffer)

    def send_outgoing(self) -> int:
        """The loop's write: what waits to be sent, as much as the client takes now (an answer's head and
        body leave in one system call), and the count of bytes sent."""
        sent_in_all = 0
        while self.outgoing:
            try:
                sent = self.sendmsg(list(itertools.islice(self.outgoing, SEND_BUFFERS)))
            except BlockingIOError:
                break
            sent_in_all += sent
            self.outgoing_bytes -= sent
            while sent:
                first = self.outgoing[0]
                if len(first) > sent:
                    self.outgoing[0], sent = first[sent:], 0
                else:
                    sent -= len(first)
                    self.outgoing.popleft()
        return sent_in_all


class ReceivedBody:
    """A request body the event loop has received whole, read as gunicorn's Body is (`wsgi.input`), never
    touching the socket."""

    failed = False

    def __init__(self, data: bytes | bytearray = b""):
        self._data, self._at = data, 0

    def read(self, size: int | None = None) -> bytes:
        left = len(self._data) - self._at
        if size is None or size < 0 or size >= left:
            size = left
        if self._at == 0 and size == len(self._data):
            data, self._data = bytes(self._data), b""
            return data
        data = bytes(memoryview(self._data)[self._at : self._at + size])
        self._at += size
        return data

    def readline(self, size: int | None = None) -> bytes:
        end = self._data.find(b"\n", self._at)
        stop = len(self._data) if end < 0 else end + 1
        if size is not None and size >= 0:
            stop = min(stop, self._at + size)
        return self.read(stop - self._at) if stop > self._at else b""

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(self)

    def __iter__(self):
        while line := self.readline():
            yield line

    @property
    def size(self) -> int:
        return len(self._data) - self._at

    def discard(self) -> None:
        self._data, self._at = b"", 0


class RefusedBody(ReceivedBody):
    """A body the loop found malformed, cut short or too large for the memory budget: reading it raises
    what the app answers (400, 503), and the connection closes after the answer."""

    failed = True

    def __init__(self, error: Exception):
        super().__init__()
        self.error = error

    def read(self, size: int | None = None) -> bytes:
        raise self.error

    readline = read


class HandedParser(RequestParser):
    """gunicorn's request parser, run by the event loop: the request it parsed there is the thread's next."""

    handed = None

    def __next__(self):
        if self.handed is not None:
            request, self.handed = self.handed, None
            return request
        return super().__next__()


class LoopConn(TConn):
    """A connection, and where the event loop is with it: `state` is head, body, thread (a thread has the
    request), write, idle (kept alive), linger or closed."""

    def __init__(self, cfg, sock: LoopSocket, client, server):
        super().__init__(cfg, sock, client, server)
        self.data_ready = True  # a thread never waits for data
        self.parser = HandedParser(cfg, sock, client)
        self.state = "head"
        self.received = bytearray()  # read from the socket, not yet taken: a head, or the next request
        self.searched = 0  # of `received`, for a head's end
        self.deadline: float | None = None
        self.timer: float | None = None  # the earliest deadline in the worker's timers
        self.pace: Pace | None = None
        self.request = None
        self.body: bytearray | None = None
        self.length = 0
        self.chunked: ChunkedBody | None = None
        self.held = 0  # of the memory budget, for `received` and `body`
        self.answer_held = 0
        self.keep_alive = False
        self.events = 0
        self.on_event = None


class _Captured:
    """Stands in for a client socket to catch the status line of gunicorn's own error page."""

    def __init__(self):
        self.data = b""

    def gettimeout(self):
        return 0.0

    def sendall(self, data):
        self.data += data


def problem_bytes(status: int, reason: str, detail: str) -> bytes:
    """A whole HTTP/1.1 answer carrying an RFC 9457 problem, for errors found before the app runs."""
    body = orjson.dumps({"type": "about:blank", "title": reason, "status": status, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/problem+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def refuses_transfer_coding(error: Exception) -> bool:
    """Whether gunicorn refused the request for its Transfer-Encoding (an unknown coding, or one it
    cannot frame a request by)."""
    return isinstance(error, UnsupportedTransferCoding) or (
        isinstance(error, InvalidHeader) and getattr(error, "hdr", None) == "TRANSFER-ENCODING"
    )


class PacedThreadWorker(ThreadWorker):
    """gthread, with the bounds of the module's docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = server_from_environment()
        self.client_grace = float(settings["client_grace_seconds"])
        self.client_min_rate = float(settings["client_min_bytes_per_second"])
        self.keepalive_requests = settings["keepalive_requests"]
        self.max_head = settings["max_head_bytes"]
        self.timers: list[tuple[float, int, LoopConn]] = []
        self.timer_order = itertools.count()
        self.scratch = memoryview(bytearray(READ_SIZE))
        self.chunk_allowance = CHUNKS_PER_TURN
        self.paused_chunked: set[LoopConn] = set()
        self.max_body = 0
        self.memory_budget = MemoryBudget(sys.maxsize, 0.0)

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
        if cfg.is_ssl:
            raise ConfigError("TLS is ended in front of the service (nginx, the Ingress), not by gunicorn: no certfile")

    def init_process(self):
        if not give_freed_blocks_back():
            self.log.warning(
                "Freed memory may stay in this worker: glibc's mallopt is missing or refused the mmap threshold"
            )
        super().init_process()

    def load_wsgi(self):
        """The app's body limit and memory budget, which the loop applies while a body arrives."""
        super().load_wsgi()
        limit = (getattr(self.wsgi, "config", None) or {}).get("MAX_CONTENT_LENGTH")
        self.max_body = limit if limit is not None else from_environment()["MAX_CONTENT_LENGTH"]
        budget = getattr(self.wsgi, "extensions", {}).get("valuegraph.memory_budget")
        if budget is not None:
            self.memory_budget = budget

    # --- the loop's bookkeeping -----------------------------------------------------------------------

    def _watch(self, conn: LoopConn, events: int) -> None:
        if conn.events == events:
            return
        if conn.events:
            self.poller.modify(conn.sock, events, conn.on_event)
        else:
            self.poller.register(conn.sock, events, conn.on_event)
        conn.events = events

    def _unwatch(self, conn: LoopConn) -> None:
        if conn.events:
            self.poller.unregister(conn.sock)
            conn.events = 0

    def _set_deadline(self, conn: LoopConn, deadline: float | None) -> None:
        conn.deadline = deadline
        if deadline is not None and (conn.timer is None or deadline < conn.timer):
            conn.timer = deadline
            heapq.heappush(self.timers, (deadline, next(self.timer_order), conn))

    def wait_for_and_dispatch_events(self, timeout):
        """A turn of the loop: its events, then the chunked bodies paused for want of the turn's allowance."""
        self.chunk_allowance = CHUNKS_PER_TURN
        if self.paused_chunked:
            timeout = 0.0
        elif self.timers:
            timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        for conn in list(self.paused_chunked):
            if self.chunk_allowance <= 0:
                break
            self.paused_chunked.discard(conn)
            if conn.state == "body":
                self._read_body(conn)

    def murder_pending(self):
        """Act on the connections whose deadline has passed (gthread calls this after every turn)."""
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            timer, _, conn = heapq.heappop(self.timers)
            if timer != conn.timer:
                continue
            conn.timer = None
            if conn.deadline is None or conn.state in ("closed", "thread", "idle"):
                continue
            if conn.deadline > now:
                self._set_deadline(conn, conn.deadline)
            else:
                self._expired(conn)

    def _expired(self, conn: LoopConn) -> None:
        client = conn.client[0] if isinstance(conn.client, tuple) else conn.client
        if conn.state == "head" and conn.received:
            self.log.warning("Closed a connection from %s: its request head was not sent in time", client)
            self._refuse(
                conn,
                408,
                "Request Timeout",
                f"The request's head did not arrive within {self.client_grace:g} s (VALUEGRAPH_CLIENT_GRACE_SECONDS).",
            )
        elif conn.state == "body":
            self.log.warning("Closed a connection from %s: its request body was sent too slowly", client)
            self._refuse(
                conn,
                408,
                "Request Timeout",
                f"The request's body stalled: a body must keep arriving at {self.client_min_rate:g} bytes a second, "
                f"after a grace of {self.client_grace:g} s (VALUEGRAPH_CLIENT_MIN_BYTES_PER_SECOND, "
                "VALUEGRAPH_CLIENT_GRACE_SECONDS).",
            )
        elif conn.state == "write":
            self.log.warning("Closed a connection from %s: it reads its answer too slowly", client)
            self._close(conn, reset=True)
        else:
            self._close(conn)

    def _close(self, conn: LoopConn, reset: bool = False) -> None:
        """Close, giving back what the connection held; `reset` drops what the kernel still holds to send
        (a client that does not read would otherwise keep it there)."""
        if conn.state == "closed":
            return
        self._unwatch(conn)
        self.paused_chunked.discard(conn)
        if conn.state == "idle":
            with contextlib.suppress(ValueError):
                self.keepalived_conns.remove(conn)
        self._release(conn)
        self.memory_budget.release(conn.answer_held)
        conn.answer_held = 0
        conn.state = "closed"
        self.nr_conns -= 1
        if reset:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def _release(self, conn: LoopConn) -> None:
        self.memory_budget.release(conn.held)
        conn.held = 0

    # --- reading a request ----------------------------------------------------------------------------

    def accept(self, listener):
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        sock = LoopSocket(client.family, client.type, client.proto, fileno=client.detach())
        sock.loop_mode()
        conn = LoopConn(self.cfg, sock, address, listener.getsockname())
        conn.on_event = partial(self._on_event, conn)
        self._await_head(conn)

    def _on_event(self, conn: LoopConn, _fileobj) -> None:
        """One connection's event; a fault in handling it closes that connection, never the loop that
        serves every other one."""
        try:
            self._dispatch(conn)
        except Exception:
            self.log.exception("Closing a connection whose event could not be handled")
            self._close(conn, reset=True)

    def _dispatch(self, conn: LoopConn) -> None:
        if conn.state == "write":
            self._write(conn)
        elif conn.state == "body":
            self._read_body(conn)
        elif conn.state == "linger":
            self._linger(conn)
        elif conn.state in ("head", "idle"):
            self._read_head(conn)

    def _await_head(self, conn: LoopConn) -> None:
        """A request's head must come whole within the grace; bytes already received may hold it."""
        conn.state, conn.searched = "head", 0
        self._set_deadline(conn, time.monotonic() + self.client_grace)
        self._watch(conn, selectors.EVENT_READ)
        if conn.received:
            self._head_arrived(conn)

    def _read_head(self, conn: LoopConn) -> None:
        if conn.state == "idle":
            self.keepalived_conns.remove(conn)
            self._await_head(conn)
        try:
            count = conn.sock.receive_into(self.scratch[: self.max_head])
        except BlockingIOError:
            return
        except OSError:
            count = 0
        if not count:
            self._close(conn)
            return
        conn.received += self.scratch[:count]
        self._head_arrived(conn)

    def _head_arrived(self, conn: LoopConn) -> None:
        """Parse the head once its end has arrived. A blank line of bare LFs ends no head, and no header may
        hold an LF: such a head is refused at once, not waited for until the grace runs out."""
        start = max(0, conn.searched - 3)
        end = conn.received.find(b"\r\n\r\n", start, self.max_head)
        conn.searched = len(conn.received)
        if end >= 0:
            self._parse(conn, end + 4)
        elif conn.received.find(b"\n\n", start, self.max_head) >= 0:
            self._refuse(conn, 400, "Bad Request", BARE_LF_DETAIL)
        elif len(conn.received) >= self.max_head:
            self._parse(conn, self.max_head)

    def _parse(self, conn: LoopConn, end: int) -> None:
        """gunicorn's parser reads the head here, in the loop; its refusals (400, 414, 431, 501) are answered
        at once. Then the body is read, or the request handed to a thread when it has none to read."""
        conn.sock.handed = bytes(conn.received[:end])
        del conn.received[:end]
        try:
            request = next(conn.parser)
        except StopIteration:
            self._close(conn)
            return
        except BlockingIOError:
            if end >= self.max_head:
                detail = f"The request's head is over {self.max_head} bytes (VALUEGRAPH_MAX_HEAD_BYTES)."
                self._refuse(conn, 431, "Request Header Fields Too Large", detail)
            else:
                self._refuse(conn, 400, "Bad Request", "The request's head is malformed.")
            return
        except Exception as error:
            self.handle_error(None, conn.sock, conn.client, error)
            self._write_answer(conn, keep_alive=False)
            return
        finally:
            rest = conn.parser.unreader.take_buffered() + conn.sock.handed
            conn.sock.handed = b""
            conn.received[0:0] = rest
        codings = [value for name, value in request.headers if name == "TRANSFER-ENCODING"]
        if codings and (len(codings) > 1 or codings[0].strip(" \t").lower() != "chunked"):
            self.log.warning("Invalid request from ip=%s: Transfer-Encoding %r", conn.client[0], ", ".join(codings))
            self._refuse(conn, 501, REASONS[501], TRANSFER_CODING_DETAIL)
            return
        conn.request = request
        if isinstance(request.body.reader, ChunkedReader):
            conn.chunked = ChunkedBody(
                request.limit_request_field_size or 8190, request.max_buffer_headers or 8190 * 32
            )
        else:
            conn.length, conn.chunked = request.body.reader.length, None
            if not conn.length:
                self._hand_over(conn, ReceivedBody())
                return
            if conn.length > self.max_body or self.memory_budget.never_fits(conn.length, request.path):
                request.must_close = True  # the app refuses it from its length, unread
                self._hand_over(conn, ReceivedBody())
                return
        if request._expected_100_continue and not conn.received:
            with contextlib.suppress(OSError):
                socket.socket.send(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.state, conn.body = "body", bytearray()
        conn.pace = Pace(self.client_grace, self.client_min_rate, time.monotonic())
        self._set_deadline(conn, conn.pace.deadline)
        self._read_body(conn)

    def _read_body(self, conn: LoopConn) -> None:
        """Read what has arrived of the body, holding each byte in the memory budget before it is read;
        hand the request to a thread once the body is whole."""
        budget, read = self.memory_budget, 0
        per_turn = READ_PER_TURN if conn.chunked is None else CHUNKED_PER_TURN
        while not self._take_received(conn):
            if read >= per_turn or conn in self.paused_chunked:
                break
            wanted = CHUNKED_PER_TURN if conn.chunked is not None else min(READ_SIZE, conn.length - len(conn.body))
            self._balance(conn)
            if not budget.try_hold(wanted):
                needed = len(conn.body) + wanted if conn.chunked is not None else conn.length
                self._hand_over(conn, RefusedBody(OverBudget(needed, budget.budget, ever=True)))
                return
            try:
                count = conn.sock.receive_into(self.scratch[:wanted])
            except BlockingIOError:
                budget.release(wanted)
                break
            except OSError:
                budget.release(wanted)
                self._close(conn)
                return
            budget.release(wanted - count)
            conn.held += count
            if not count:
                self._hand_over(conn, RefusedBody(NoMoreData(b"")))
                return
            read += count
            conn.pace.moved(count, time.monotonic())
            (conn.body if conn.chunked is None else conn.received).extend(self.scratch[:count])
        if conn.state == "body":
            self._balance(conn)
            self._set_deadline(conn, conn.pace.deadline)

    def _take_received(self, conn: LoopConn) -> bool:
        """Move the body's bytes from what was received into the body; True once the request has left
        the body's reading (handed to a thread, or refused)."""
        if conn.chunked is None:
            taken = min(conn.length - len(conn.body), len(conn.received))
            if taken:
                conn.body += conn.received[:taken]
                del conn.received[:taken]
            if len(conn.body) < conn.length:
                return False
            self._hand_over(conn, ReceivedBody(conn.body))
            return True
        try:
            chunks = conn.chunked.chunks
            ended = conn.chunked.feed(conn.received, conn.body, self.max_body, self.chunk_allowance)
            self.chunk_allowance -= conn.chunked.chunks - chunks
            if conn.chunked.paused:
                self.paused_chunked.add(conn)
            arriving = len(conn.body) + conn.chunked.data_left
            if arriving > self.max_body or self.memory_budget.never_fits(arriving, conn.request.path):
                self._cut_off(conn, arriving)
                return True
            if not ended:
                return False
            if conn.chunked.trailers:
                conn.request.trailers = conn.request.parse_headers(conn.chunked.trailers, from_trailer=True)
        except ParseException as error:
            self._hand_over(conn, RefusedBody(error))
            return True
        self._hand_over(conn, ReceivedBody(conn.body))
        return True

    def _balance(self, conn: LoopConn) -> None:
        """Hold in the budget exactly what the connection keeps: chunked framing, once removed, is given back."""
        self._hold_exactly(conn, len(conn.received) + len(conn.body))

    def _hold_exactly(self, conn: LoopConn, count: int) -> None:
        if count < conn.held:
            self.memory_budget.release(conn.held - count)
        else:
            self.memory_budget.hold(count - conn.held)
        conn.held = count

    def _cut_off(self, conn: LoopConn, arriving: int) -> None:
        """A chunked body past the limit, or past what its endpoint could ever fit in the memory budget (or a
        chunk whose declared size would take it past): dropped, and the request handed over as one that
        declares a body of the size that arrived, or one byte over the limit, which the app refuses (413)
        from its length, as it refuses such a Content-Length."""
        request = conn.request
        request.headers = [(name, value) for name, value in request.headers if name != "TRANSFER-ENCODING"]
        request.headers.append(("CONTENT-LENGTH", str(min(arriving, self.max_body + 1))))
        request.must_close = True
        self._hand_over(conn, ReceivedBody())

    def _hand_over(self, conn: LoopConn, body: ReceivedBody) -> None:
        self.paused_chunked.discard(conn)
        request, conn.request = conn.request, None
        request.body = body
        request._expected_100_continue = False
        if body.failed:
            request.must_close = True
        conn.body = conn.chunked = None
        self._hold_exactly(conn, body.size)  # until a thread takes the request: queued bodies count too
        conn.parser.handed = request
        conn.state = "thread"
        self._set_deadline(conn, None)
        self._unwatch(conn)
        self.enqueue_req(conn)

    # --- in a thread ----------------------------------------------------------------------------------

    def handle_request(self, req, conn):
        """The body's bytes leave the loop's hold as the app takes them: it admits them itself."""
        self._release(conn)
        if conn.parser.req_count >= self.keepalive_requests:
            req.must_close = True
        return super().handle_request(req, conn)

    def _keepalive_after(self, conn, keepalive):
        """The body was received whole: what the app did not read of it is dropped, not drained."""
        body = conn.parser.mesg.body
        if not keepalive or body.failed:
            return False
        body.discard()
        return True

    def handle_error(self, req, client, addr, exc):
        """gunicorn's status for a request it refuses itself, as problem+json instead of an HTML page."""
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)
        if not captured.data:
            return
        _, code, reason = captured.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        status = int(code)
        detail = f"{exc}" if status < 500 else "The server failed; the error is logged."
        if refuses_transfer_coding(exc):
            status, detail = 501, TRANSFER_CODING_DETAIL
        try:
            util.write_nonblock(client, problem_bytes(status, REASONS.get(status, reason), detail[:1000]))
        except Exception:
            self.log.debug("Failed to send error message.")

    # --- writing the answer ---------------------------------------------------------------------------

    def finish_request(self, conn, fs):
        """A thread has made the answer: the loop writes it."""
        try:
            keep_alive = not fs.cancelled() and bool(fs.result())
        except Exception:
            keep_alive = False
        if conn.sock.fileno() < 0:  # gunicorn closed it in the thread, after a failure mid-answer
            self._close(conn)
            return
        self._write_answer(conn, keep_alive)

    def _refuse(self, conn: LoopConn, status: int, reason: str, detail: str) -> None:
        self.paused_chunked.discard(conn)
        conn.request = conn.body = conn.chunked = None
        self._release(conn)
        conn.sock.sendall(problem_bytes(status, reason, detail))
        self._write_answer(conn, keep_alive=False)

    def _write_answer(self, conn: LoopConn, keep_alive: bool) -> None:
        """The answer waiting in the socket is written as fast as the client reads it, and held in the
        memory budget until then; a client that falls behind the pace is cut off."""
        conn.keep_alive, conn.state = keep_alive, "write"
        conn.answer_held = conn.sock.outgoing_bytes
        self.memory_budget.hold(conn.answer_held)
        conn.pace = Pace(self.client_grace, self.client_min_rate, time.monotonic())
        self._write(conn)

    def _write(self, conn: LoopConn) -> None:
        try:
            sent = conn.sock.send_outgoing()
        except OSError:
            self._close(conn)
            return
        if conn.sock.outgoing:
            conn.pace.moved(sent, time.monotonic())
            self._set_deadline(conn, conn.pace.deadline)
            self._watch(conn, selectors.EVENT_WRITE)
            return
        self.memory_budget.release(conn.answer_held)
        conn.answer_held = 0
        if conn.keep_alive:
            self._keep_idle(conn)
        else:
            self._linger_before_closing(conn)

    def _keep_idle(self, conn: LoopConn) -> None:
        if conn.received:  # the next request, pipelined
            self._await_head(conn)
            return
        conn.state = "idle"
        self._release(conn)  # gthread's murder_keepalived closes idle connections without asking
        self._set_deadline(conn, None)
        conn.set_timeout()
        if not self.alive:
            conn.timeout = min(conn.timeout, time.monotonic() + STOP_KEEPALIVE_LINGER)
        self.keepalived_conns.append(conn)
        self._watch(conn, selectors.EVENT_READ)

    def _linger_before_closing(self, conn: LoopConn) -> None:
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(conn)
            return
        conn.state, conn.received = "linger", bytearray()
        self._set_deadline(conn, time.monotonic() + LINGER_SECONDS)
        self._watch(conn, selectors.EVENT_READ)
        self._linger(conn)

    def _linger(self, conn: LoopConn) -> None:
        for _ in range(READ_PER_TURN // READ_SIZE):
            try:
                if not conn.sock.receive_into(self.scratch):
                    break
            except BlockingIOError:
                return
            except OSError:
                break
        else:
            return
        self._close(conn)

    # --- stopping -------------------------------------------------------------------------------------

    def set_accept_enabled(self, enabled):
        """Once stopping, close the listening sockets too: while any process holds one open, the kernel
        still completes connections that nobody will accept; closed, new connections are refused."""
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:
            for listener in self.sockets:
                listener.close()

    def handle_exit(self, sig, frame):
        lifecycle.stopping.set()
        super().handle_exit(sig, frame)
