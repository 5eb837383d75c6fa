"""valuegraph's gunicorn worker: gunicorn's gthread worker with clients held to a pace (a request's head
read in the event loop, its body and answer moving at a minimum rate), connections that rotate over
the workers, readiness that turns 503 on SIGTERM, and gunicorn's own error answers as problem details.
Why threads and not an async worker, and each bound: docs/operations.md, "The HTTP server".
"""

import contextlib
import errno
import selectors
import socket
import time
from functools import partial

import orjson
from gunicorn import http, util
from gunicorn.workers.gthread import TConn, ThreadWorker

from service.runtime import lifecycle
from service.runtime.config import server_from_environment
from service.runtime.lifecycle import ClientTooSlow

# Larger than any request line plus headers a client sends in practice; a head that is not whole by then
# is handed to a thread, where gunicorn's own limits (414, 431) apply.
HEAD_LIMIT = 65536


class PacedSocket(socket.socket):
    """A client connection whose blocking reads and writes must keep up an average pace.

    A phase (reading a request, writing its answer) may take `grace` seconds plus its bytes divided
    by `min_rate`; each blocking call waits at most until then. Outside a phase (gunicorn's own
    lingering close) the socket is an ordinary one.
    """

    SLICE = 256 * 1024
    HELD_HEAD_JOINS_AT_MOST = 1024 * 1024
    grace: float = 10.0
    min_rate: float = 65536.0

    def pace(self, grace: float, min_rate: float) -> None:
        self.grace, self.min_rate = grace, min_rate
        self._held_head = b""
        self._requested_timeout = None
        self._phase = None
        self._phase_start = 0.0
        self._phase_bytes = 0

    def begin_request(self) -> None:
        self._phase, self._phase_start, self._phase_bytes = "read", time.monotonic(), 0

    def _enter(self, phase: str) -> None:
        if self._phase != phase:
            self._phase, self._phase_start, self._phase_bytes = phase, time.monotonic(), 0

    def _remaining(self, more: int = 0) -> float:
        deadline = self._phase_start + self.grace + (self._phase_bytes + more) / self.min_rate
        return deadline - time.monotonic()

    def recv(self, size: int, flags: int = 0) -> bytes:
        """First without waiting (one system call, as gunicorn's own); only when nothing has arrived
        yet, wait as long as the pace allows."""
        if self._phase is None or self._requested_timeout == 0.0:
            return super().recv(size, flags)
        self._enter("read")
        try:
            data = super().recv(size, flags | socket.MSG_DONTWAIT)
        except BlockingIOError:
            data = self._recv_in_time(size, flags)
        self._phase_bytes += len(data)
        return data

    def _recv_in_time(self, size: int, flags: int) -> bytes:
        remaining = self._remaining()
        if remaining <= 0:
            raise self._too_slow("send its request")
        requested = self._requested_timeout
        super().settimeout(remaining if requested is None else min(requested, remaining))
        try:
            return super().recv(size, flags)
        except TimeoutError:
            if requested is not None and self._remaining() > 0:
                raise  # the caller's own, shorter timeout
            raise self._too_slow("send its request") from None
        finally:
            super().settimeout(requested)

    def sendall(self, data, flags: int = 0) -> None:
        """An answer's head waits for its body, so that the two leave in one write: gunicorn writes them
        apart, and a worker killed between the two writes would leave the client (or a proxy, which
        can then no longer send the request to another replica) a head without its body. A body over
        HELD_HEAD_JOINS_AT_MOST is not copied to join it: its own writes leave that window open anyway."""
        if self._held_head:
            head, self._held_head = self._held_head, b""
            if len(data) > self.HELD_HEAD_JOINS_AT_MOST:
                self._send_paced(head, flags)
            else:
                data = head + bytes(data)
        elif bytes(data[:7]) == b"HTTP/1." and bytes(data[9:10]) != b"1" and bytes(data[-4:]) == b"\r\n\r\n":
            self._held_head = bytes(data)
            return None
        return self._send_paced(data, flags)

    def send_held_head(self) -> None:
        """Send a held head that no body followed (a 204, a HEAD, an empty body): the answer is complete."""
        if self._held_head:
            head, self._held_head = self._held_head, b""
            self._send_paced(head, 0)

    def _send_paced(self, data, flags: int) -> None:
        """send() in slices, each first without waiting; when the client's buffers are full, each is
        given the time the pace allows for what has been sent so far plus the slice, so a client that
        stops reading is cut off within the grace and one slice's time, whatever the size of the answer."""
        if self._phase is None or self._requested_timeout == 0.0:
            return super().sendall(data, flags)
        self._enter("write")
        view = memoryview(data).cast("B")
        while view:
            piece = view[: self.SLICE]
            try:
                sent = super().send(piece, flags | socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = self._send_in_time(piece, flags)
            self._phase_bytes += sent
            view = view[sent:]
        return None

    def _send_in_time(self, piece, flags: int) -> int:
        remaining = self._remaining(len(piece))
        if remaining <= 0:
            raise self._stopped_reading()
        requested = self._requested_timeout
        super().settimeout(remaining)
        try:
            return super().send(piece, flags)
        except TimeoutError:
            raise self._stopped_reading() from None
        finally:
            if self._phase is not None:
                super().settimeout(requested)

    def _stopped_reading(self) -> BrokenPipeError:
        self._phase = None
        return BrokenPipeError(errno.EPIPE, "the client reads its answer too slowly; connection closed")

    def settimeout(self, value) -> None:
        self._requested_timeout = value
        super().settimeout(value)

    def setblocking(self, flag: bool) -> None:
        self._requested_timeout = None if flag else 0.0
        super().setblocking(flag)

    def gettimeout(self):
        return self._requested_timeout

    def shutdown(self, how: int) -> None:
        self._phase = None
        super().shutdown(how)

    def _too_slow(self, what: str) -> ClientTooSlow:
        self._phase = None
        return ClientTooSlow(
            f"The client did not {what} within {self.grace:g} s plus 1 s per {self.min_rate:g} bytes "
            "(VALUEGRAPH_CLIENT_GRACE_SECONDS, VALUEGRAPH_CLIENT_MIN_BYTES_PER_SECOND)."
        )


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


class PacedThreadWorker(ThreadWorker):
    """gthread, with the bounds of the module's docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings = server_from_environment()
        self.client_grace = float(settings["client_grace_seconds"])
        self.client_min_rate = float(settings["client_min_bytes_per_second"])
        self.keepalive_requests = settings["keepalive_requests"]

    def accept(self, listener):
        """Accept, then wait for the request's head in the event loop (gthread waits in a thread)."""
        if self.cfg.is_ssl:
            return super().accept(listener)
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return None
        self.nr_conns += 1
        paced = PacedSocket(client.family, client.type, client.proto, fileno=client.detach())
        paced.pace(self.client_grace, self.client_min_rate)
        conn = TConn(self.cfg, paced, address, listener.getsockname())
        conn.head = bytearray()
        self._wait_for_head(conn)
        return None

    def _wait_for_head(self, conn):
        conn.timeout = time.monotonic() + self.client_grace
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn, self.pending_conns))

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request: its head is read in the event loop too."""
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        conn.head = bytearray()
        return self._read_head(conn, self.keepalived_conns, client)

    def _read_head(self, conn, queue, _client=None):
        """Read what has arrived; once the head is whole (or larger than any head gunicorn accepts), hand
        the connection to a thread, the bytes read put back in front of its parser. A client that has
        not sent its head within the grace is closed by murder_pending, with no thread ever held."""
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.poller.unregister(conn.sock)
            queue.remove(conn)
            self.nr_conns -= 1
            conn.close()
            return
        conn.head += data
        if b"\r\n\r\n" not in conn.head and len(conn.head) < HEAD_LIMIT:
            if queue is self.keepalived_conns:
                self.poller.unregister(conn.sock)
                queue.remove(conn)
                self._wait_for_head(conn)
            return
        self.poller.unregister(conn.sock)
        queue.remove(conn)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        conn.data_ready = True
        self.enqueue_req(conn)

    def murder_pending(self):
        """Close the connections whose head did not come within the grace, with a 408 problem to those
        that sent part of one."""
        now = time.monotonic()
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            if getattr(conn, "head", None):
                self.log.warning("Closed a connection from %s: its request head was not sent in time", conn.client[0])
                detail = (
                    f"The request's head did not arrive within {self.client_grace:g} s "
                    "(VALUEGRAPH_CLIENT_GRACE_SECONDS)."
                )
                with contextlib.suppress(OSError):
                    conn.sock.send(problem_bytes(408, "Request Timeout", detail), socket.MSG_DONTWAIT)
            self.nr_conns -= 1
            conn.close()

    def handle(self, conn):
        conn.sock.begin_request()
        return super().handle(conn)

    def handle_request(self, req, conn):
        if conn.parser.req_count >= self.keepalive_requests:
            req.must_close = True
        try:
            return super().handle_request(req, conn)
        finally:
            send_held_head = getattr(conn.sock, "send_held_head", None)
            if send_held_head is not None:
                send_held_head()

    def _keepalive_after(self, conn, keepalive):
        try:
            return super()._keepalive_after(conn, keepalive)
        except ClientTooSlow:
            return False

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

    def handle_error(self, req, client, addr, exc):
        """gunicorn's status for a request it refuses itself, as problem+json instead of an HTML page."""
        if isinstance(exc, ClientTooSlow):
            self.log.warning("Closed a connection from %s: %s", (addr or ("",))[0], exc)
            status, reason, detail = 408, "Request Timeout", str(exc)
        else:
            captured = _Captured()
            super().handle_error(req, captured, addr, exc)
            if not captured.data:
                return
            _, code, reason = captured.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status = int(code)
            detail = f"{exc}" if status < 500 else "The server failed; the error is logged."
        try:
            util.write_nonblock(client, problem_bytes(status, reason, detail[:1000]))
        except Exception:
            self.log.debug("Failed to send error message.")
