"""`python -m bench.slow_clients`: the server alone against slow clients, and its small-graph
throughput, for one or more source trees (this one, and e.g. an older commit to compare with).

Scenarios, each against a fresh gunicorn started from the tree's gunicorn.conf.py with 2 workers:
- throughput: the seed example POSTed on 16 keep-alive connections for a few seconds (requests/s);
- slow headers: 20 connections send a request's headers a byte a second while 12 normal requests are
  made one after another, each given 5 s: how many fail;
- no readers: 8 clients pipeline requests for large answers and never read them, while 11 health checks
  are made one a second, each given 5 s: how many fail;
- stalled upload: a body announced as 1,000,000 bytes stops after 1,000: how long until the server
  closes the connection (at most 40 s are waited);
- stalled uploads: 30 connections send a head with `Content-Length: 100000` and stall (each reconnects
  when the server closes it, so 30 are stalled throughout), while 4 clients make normal requests for
  15 s, each on a new connection and given 5 s: the share served and their p50 and p99;
- non-readers: the same with 30 clients that pipeline requests for ~2 MB answers and never read them;
- tiny chunks: the same with 30 clients sending chunked bodies of 1-byte chunks as fast as they can;
- a non-reader alone: how long the server holds its connection (at most 90 s are waited);
- with --cpu-only: the CPU one worker spends per small request, less sensitive to a busy machine than
  the throughput.

    python -m bench.slow_clients                      # this tree
    git archive dad988e | tar -x -C /tmp/before
    python -m bench.slow_clients --tree /tmp/before --tree .   # before and after, in one run
"""

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress
from pathlib import Path

import orjson

from service.contract.examples import EXAMPLE_GRAPH as SEED
from tools.server import free_port, worker_pids


def request_bytes(body: bytes, path: str = "/v1/evaluate") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@contextmanager
def server(tree: Path, log_dir: Path, workers: int = 2, **extra_env):
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), **extra_env}
    env.pop("PYTHONPATH", None)
    log = log_dir / f"gunicorn-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not answers(port, "/readyz"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log.read_text()}")
            time.sleep(0.1)
        time.sleep(0.5)  # the second worker
        yield port, process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def answers(port: int, path: str, timeout: float = 5.0, body: bytes | None = None) -> bool:
    """Whether a request on a new connection gets a whole 2xx answer within `timeout` seconds."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            if body is None:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            else:
                sock.sendall(request_bytes(body).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
            data = b""
            start = time.monotonic()
            while chunk := sock.recv(65536):
                data += chunk
                if time.monotonic() - start > timeout:
                    return False
            return data.startswith(b"HTTP/1.1 2")
    except OSError:
        return False


def throughput(port: int, seconds: float, connections: int = 16) -> float:
    """Requests/s of the seed example on `connections` keep-alive connections (reopened when the server
    closes one); raises on any answer but 200."""
    return asyncio.run(_throughput(port, request_bytes(orjson.dumps(SEED)), connections, seconds))


async def _throughput(port, request, connections, seconds):
    deadline = time.perf_counter() + seconds

    async def connection():
        done = 0
        while time.perf_counter() < deadline:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            closing = False
            while not closing and time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"the server answered {head.splitlines()[0]!r}")
                await reader.readexactly(int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)))
                closing = re.search(rb"(?i)connection:\s*close", head) is not None
                done += 1
            writer.close()
        return done

    start = time.perf_counter()
    counts = await asyncio.gather(*(connection() for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - start)


def slow_headers(port: int, slow: int = 20, normal: int = 12) -> int:
    """Failed normal requests while `slow` connections drip their headers."""
    stop = threading.Event()
    head = request_bytes(orjson.dumps(SEED))

    def drip():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                for byte in head[:-4]:
                    if stop.wait(1.0):
                        return
                    sock.sendall(bytes([byte]))
        except OSError:
            pass

    drippers = [threading.Thread(target=drip, daemon=True) for _ in range(slow)]
    for thread in drippers:
        thread.start()
    time.sleep(2)
    failed = sum(not answers(port, "", body=orjson.dumps(SEED)) for _ in range(normal))
    stop.set()
    return failed


def large_graph(n: int) -> bytes:
    nodes = [{"id": 0, "op": "value", "data": 1.0}, {"id": "k", "op": "value", "data": 0.5}]
    nodes += [{"id": i, "op": "add", "children": [i - 1, "k"]} for i in range(1, n)]
    return orjson.dumps({"nodes": nodes})


def no_readers(port: int, clients: int = 8, checks: int = 11) -> int:
    """Failed health checks while `clients` connections never read their (large) answers."""
    pipelined = request_bytes(large_graph(50_000)) * 4
    sockets = []
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        threading.Thread(target=_send_quietly, args=(sock, pipelined), daemon=True).start()
        sockets.append(sock)
    time.sleep(3)
    failed = 0
    for _ in range(checks):
        failed += not answers(port, "/healthz")
        time.sleep(1)
    for sock in sockets:
        sock.close()
    return failed


def _send_quietly(sock, data):
    with suppress(OSError):
        sock.sendall(data)


def stalled_upload(port: int, limit: float = 40.0) -> float:
    """Seconds until the server closes a connection whose body stalled, at most `limit`."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(
            b"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n" + b" " * 1000
        )
        start = time.monotonic()
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        return time.monotonic() - start


class Peers:
    """`count` hostile clients, each reconnecting once the server lets go of it, until stopped: so that
    `count` of them are connected whenever normal requests are measured. They never read.

    `released(sock, seconds_held)` says when a peer stops holding its connection and reconnects; by
    default, once the server on this machine's loopback closes its end (`held_by_server`)."""

    def __init__(
        self,
        port: int,
        count: int,
        send: bytes,
        receive_buffer: int | None = None,
        host: str = "127.0.0.1",
        released: Callable[[socket.socket, float], bool] | None = None,
    ):
        self.port, self.send, self.receive_buffer, self.host = port, send, receive_buffer, host
        self.released = released or self._released_by_server
        self.stop, self.connections = threading.Event(), 0
        self.threads = [threading.Thread(target=self._peer, daemon=True) for _ in range(count)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _released_by_server(self, sock: socket.socket, seconds_held: float) -> bool:
        return not held_by_server(self.port, sock.getsockname()[1])

    def _peer(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    if self.receive_buffer:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
                    self.connections += 1
                    threading.Thread(target=_send_quietly, args=(sock, self.send), daemon=True).start()
                    start = time.monotonic()
                    while not self.stop.wait(0.25) and not self.released(sock, time.monotonic() - start):
                        pass
            except OSError:
                self.stop.wait(0.1)


def held_by_server(port: int, client_port: int) -> bool:
    """Whether the server still holds its end of the loopback connection from `client_port`
    (/proc/net/tcp): a process owns it (an inode), or it waits in the listening socket's queue to be
    accepted (established, no inode yet). Once the server closes it, its end is gone, or left to the
    kernel (no inode, no longer established) while it still tries to deliver what was written to a
    client that does not read."""
    local, remote = f"0100007F:{port:04X}", f"0100007F:{client_port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if fields[1] == local and fields[2] == remote:
                return fields[9] != "0" or fields[3] == "01"
    return False


def normal_requests(port: int, seconds: float, clients: int = 4, timeout: float = 5.0) -> dict:
    """The seed example POSTed by `clients` clients for `seconds`, each request on a new connection and
    given `timeout` seconds: how many were made, the share served (200), and their p50 and p99."""
    body = orjson.dumps(SEED)
    deadline = time.monotonic() + seconds
    outcomes = []

    def client():
        while time.monotonic() < deadline:
            start = time.perf_counter()
            served = answers(port, "", timeout=timeout, body=body)
            outcomes.append((served, time.perf_counter() - start))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = sorted(elapsed for _, elapsed in outcomes)
    return {
        "normal_requests": len(outcomes),
        "served_percent": round(100 * sum(served for served, _ in outcomes) / len(outcomes), 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
    }


STALLED_HEAD = (
    b"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
)


def stalled_uploads(port: int, peers: int = 30, seconds: float = 15.0) -> dict:
    """Normal requests while `peers` connections send a head announcing a 100,000-byte body and stall."""
    with Peers(port, peers, STALLED_HEAD) as stalled:
        time.sleep(1)
        result = normal_requests(port, seconds)
    return {**result, "stalled_connections": stalled.connections}


def non_readers(port: int, peers: int = 30, seconds: float = 15.0) -> dict:
    """Normal requests while `peers` clients pipeline requests for large answers and never read them."""
    with Peers(port, peers, request_bytes(large_graph(50_000)) * 4, receive_buffer=4096) as readers:
        time.sleep(3)
        result = normal_requests(port, seconds)
    return {**result, "non_reader_connections": readers.connections}


TINY_CHUNKS_HEAD = (
    b"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def chunk_flood(
    port: int, stop: threading.Event, host: str = "127.0.0.1", pause: float = 0.0, head: bytes = TINY_CHUNKS_HEAD
) -> int:
    """One client sending a chunked body (after `head`) of 1-byte chunks, 10,000 a write with `pause`
    seconds between writes (none: as fast as it can), reconnecting whenever it is cut off, until `stop`
    is set; returns how many connections it made."""
    chunks = b"1\r\n \r\n" * 10_000
    connections = 0
    while not stop.is_set():
        with suppress(OSError), socket.create_connection((host, port), timeout=5) as sock:
            connections += 1
            sock.sendall(head)
            while not stop.is_set():
                sock.sendall(chunks)
                if pause:
                    stop.wait(pause)
    return connections


def tiny_chunks(port: int, peers: int = 30, seconds: float = 15.0) -> dict:
    """Normal requests while `peers` clients send chunked bodies of 1-byte chunks as fast as they can
    (each reconnecting when cut off): the decoding work a client can make the event loop do."""
    stop = threading.Event()
    threads = [threading.Thread(target=chunk_flood, args=(port, stop), daemon=True) for _ in range(peers)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    result = normal_requests(port, seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    return result


def non_reader_held(port: int, limit: float = 90.0) -> float:
    """Seconds until the server lets go of a client that never reads its ~10 MB answer, at most `limit`."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request_bytes(large_graph(200_000)))
        start, client_port = time.monotonic(), sock.getsockname()[1]
        while time.monotonic() - start < limit and held_by_server(port, client_port):
            time.sleep(0.1)
        return time.monotonic() - start


def hostile_scenarios(tree: Path, log_dir: Path) -> dict:
    results = {}
    with server(tree, log_dir) as (port, _, _):
        results["30_stalled_uploads"] = stalled_uploads(port)
    with server(tree, log_dir) as (port, _, _):
        results["30_non_readers"] = non_readers(port)
    with server(tree, log_dir) as (port, _, _):
        results["30_tiny_chunk_floods"] = tiny_chunks(port)
    with server(tree, log_dir) as (port, _, _):
        held = non_reader_held(port)
        results["non_reader_held_seconds"] = f"{held:.1f}" if held < 89.5 else "90+ (not closed)"
    return results


def after_a_kill(tree: Path, log_dir: Path, connections: int = 32) -> dict:
    """Keep-alive load on `connections` connections; after 3 s one of the 2 workers is SIGKILLed; after
    6 s more, the share of the requests of the last 3 s that each worker served, and the failures."""
    tagged = "--access-logfile - --access-logformat 'spread %(p)s %({x-phase}i)s'"
    with server(tree, log_dir, GUNICORN_CMD_ARGS=tagged) as (port, process, log):
        phase = {"name": "before"}
        failures = asyncio.run(_load_with_a_kill(port, process.pid, connections, phase))
        time.sleep(1)
        pids = [
            line.split()[1].strip("<>")
            for line in log.read_text().splitlines()
            if line.startswith("spread ") and line.endswith(" late")
        ]
        shares = sorted((round(pids.count(pid) / len(pids) * 100) for pid in set(pids)), reverse=True)
        return {"failed_requests": failures, "last_3s_share_per_worker_percent": shares, "workers_serving": len(shares)}


async def _load_with_a_kill(port, master_pid, connections, phase):
    body = orjson.dumps(SEED)
    failures = 0
    start = time.monotonic()

    async def connection():
        nonlocal failures
        while time.monotonic() - start < 12:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                failures += 1
                await asyncio.sleep(0.05)
                continue
            try:
                while time.monotonic() - start < 12:
                    writer.write(
                        request_bytes(body).replace(b"\r\n\r\n", f"\r\nX-Phase: {phase['name']}\r\n\r\n".encode(), 1)
                    )
                    head = await reader.readuntil(b"\r\n\r\n")
                    await reader.readexactly(int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1)))
                    if re.search(rb"(?i)connection:\s*close", head):
                        break
            except (OSError, asyncio.IncompleteReadError):
                failures += 1
            writer.close()

    async def killer():
        await asyncio.sleep(3)
        os.kill(min(worker_pids(master_pid)), signal.SIGKILL)
        phase["name"] = "after"
        await asyncio.sleep(6)
        phase["name"] = "late"

    await asyncio.gather(killer(), *(connection() for _ in range(connections)))
    return failures


def _cpu_seconds(pid):
    """User and system CPU time of a process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(tree: Path, log_dir: Path, runs: int = 3, seconds: float = 6.0) -> list[int]:
    """CPU microseconds one worker spends per small request, in `runs` runs of `seconds` on 16
    keep-alive connections: a machine shared with other work varies the wall-clock rate more than this."""
    figures = []
    with server(tree, log_dir, workers=1) as (port, process, _):
        (worker,) = worker_pids(process.pid)
        throughput(port, 2)
        for _ in range(runs):
            before = _cpu_seconds(worker)
            rate = throughput(port, seconds)
            figures.append(round((_cpu_seconds(worker) - before) / (rate * seconds) * 1e6))
    return figures


def slow_client_scenarios(tree: Path, log_dir: Path) -> dict:
    results = {"tree": str(tree)}
    results["after_a_sigkill"] = after_a_kill(tree, log_dir)
    with server(tree, log_dir) as (port, _, _):
        results["slow_headers_failed"] = f"{slow_headers(port)} of 12"
    with server(tree, log_dir) as (port, _, _):
        results["no_readers_failed"] = f"{no_readers(port)} of 11"
    with server(tree, log_dir) as (port, _, _):
        held = stalled_upload(port)
        results["stalled_upload_held_seconds"] = f"{held:.1f}" if held < 39.5 else "40+ (not closed)"
    return {**results, **hostile_scenarios(tree, log_dir)}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.slow_clients", description=__doc__)
    parser.add_argument("--tree", type=Path, action="append", help="a source tree to measure (default: this one)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    parser.add_argument("--rounds", type=int, default=1, help="throughput runs per tree, alternating trees")
    parser.add_argument("--throughput-only", action="store_true", help="skip the slow-client scenarios")
    parser.add_argument("--kill-only", type=int, metavar="RUNS", help="only the SIGKILL scenario, RUNS times per tree")
    parser.add_argument("--hostile-only", action="store_true", help="only the stalled uploads and non-readers")
    parser.add_argument("--cpu-only", type=int, metavar="ROUNDS", help="only a worker's CPU per small request")
    args = parser.parse_args(argv)
    if args.kill_only:
        with tempfile.TemporaryDirectory(prefix="valuegraph-kill-") as log_dir:
            for _ in range(args.kill_only):
                for tree in args.tree or [Path(__file__).resolve().parent.parent]:
                    result = after_a_kill(tree.resolve(), Path(log_dir))
                    print(orjson.dumps({"tree": str(tree), **result}).decode(), flush=True)
        return
    trees = [tree.resolve() for tree in args.tree or [Path(__file__).resolve().parent.parent]]
    if args.cpu_only:
        with tempfile.TemporaryDirectory(prefix="valuegraph-cpu-") as log_dir:
            figures = {tree: [] for tree in trees}
            for _ in range(args.cpu_only):
                for tree in trees:
                    figures[tree] += cpu_per_request(tree, Path(log_dir))
            for tree, per_request in figures.items():
                print(orjson.dumps({"tree": str(tree), "cpu_us_per_request": sorted(per_request)}).decode())
        return
    if args.hostile_only:
        with tempfile.TemporaryDirectory(prefix="valuegraph-hostile-") as log_dir:
            for tree in trees:
                print(orjson.dumps({"tree": str(tree), **hostile_scenarios(tree, Path(log_dir))}).decode(), flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="valuegraph-slow-") as log_dir:
        rates = {tree: [] for tree in trees}
        per_cpu_second = {tree: [] for tree in trees}
        for _ in range(args.rounds):
            for tree in trees:
                with server(tree, Path(log_dir)) as (port, process, _):
                    workers = worker_pids(process.pid)
                    cpu_before = sum(map(_cpu_seconds, workers))
                    rate = throughput(port, args.seconds)
                    cpu = sum(map(_cpu_seconds, workers)) - cpu_before
                    rates[tree].append(round(rate))
                    per_cpu_second[tree].append(round(rate * args.seconds / cpu))
        for tree in trees:
            results = {"tree": str(tree)} if args.throughput_only else slow_client_scenarios(tree, Path(log_dir))
            results["requests_per_second"] = rates[tree]
            results["requests_per_server_cpu_second"] = per_cpu_second[tree]
            print(orjson.dumps(results).decode(), flush=True)


if __name__ == "__main__":
    main()
