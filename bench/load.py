"""The small-graph load: one body POSTed over many keep-alive connections for a while, counted.

wrk (C, event-driven) is preferred, so that on a 2-core machine the load generator takes little of
the CPU the server needs; where it is missing the bench says how to install it and uses the asyncio
client below, which costs more CPU but loads both peers the same way. The bench installs nothing.
"""

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "post.lua"


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk(port, body_file, connections, seconds):
    """Requests per second by wrk; raises if any answer was not 2xx."""
    run = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{round(seconds)}s",
            "-s",
            str(LUA_SCRIPT),
            f"http://127.0.0.1:{port}/v1/evaluate",
            "--",
            str(body_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    if "Non-2xx" in run.stdout or "Socket errors" in run.stdout:
        raise RuntimeError(f"wrk saw failed requests:\n{run.stdout}")
    return float(re.search(r"Requests/sec:\s*([\d.]+)", run.stdout).group(1))


def python_client(port, body_file, connections, seconds):
    """Requests per second by `connections` asyncio keep-alive connections; raises on a non-200."""
    return asyncio.run(_python_load(port, Path(body_file).read_bytes(), connections, seconds))


async def _python_load(port, body, connections, seconds):
    request = (
        b"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    deadline = time.perf_counter() + seconds

    async def connection():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        done = 0
        while time.perf_counter() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"the server answered {head.splitlines()[0]!r}")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            done += 1
            if re.search(rb"(?i)connection:\s*close", head):  # the server rotates connections
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        return done

    start = time.perf_counter()
    counts = await asyncio.gather(*(connection() for _ in range(connections)))
    return sum(counts) / (time.perf_counter() - start)
