"""Graphviz's `dot`, run to draw a picture as SVG: the one program the service runs.

It is found on PATH at each request (installing Graphviz needs no restart) and run without a shell,
its input on stdin. Its cost is bounded, because some graphs of a few hundred nodes (a long chain
that one node feeds all along) take dot minutes and gigabytes: its memory by a data limit set on the
process as it starts (it has read nothing yet), its time by its own limit and by the request's
deadline, both checked between short waits, its output by a bound in bytes.
"""

import contextlib
import os
import resource
import selectors
import shutil
import subprocess
import time
from collections.abc import Callable

#: How long one wait for Graphviz lasts before the deadline is checked again.
WAIT_SECONDS = 0.05
#: The most of Graphviz's error output kept, to quote it.
MAX_ERROR_BYTES = 4096
_CHUNK = 65536


class GraphvizUnavailable(Exception):
    """Graphviz's dot is not installed where the service runs."""


class GraphvizFailed(Exception):
    """dot ended without drawing: `reason` says how (its exit status and first error line)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OutputTooLarge(Exception):
    """dot wrote more than the bound it was given; it was stopped."""


class TooSlow(Exception):
    """dot took longer than its time limit; it was stopped."""


class OutOfMemory(Exception):
    """dot stopped for want of memory within its limit (it says so, or dies of a signal)."""


def dot_program() -> str | None:
    return shutil.which("dot")


def draw_svg(
    dot_text: bytes, checkpoint: Callable[[], None], max_output: int, max_seconds: float, max_memory: int
) -> bytes:
    """The SVG that `dot -Tsvg` draws of `dot_text`, within `max_seconds`, `max_memory` bytes of data
    and `max_output` bytes of SVG. `checkpoint` raises once the request's deadline has passed; dot is
    then killed, as it is on any error."""
    program = dot_program()
    if program is None:
        raise GraphvizUnavailable()
    ends = time.monotonic() + max_seconds

    def check() -> None:
        checkpoint()
        if time.monotonic() > ends:
            raise TooSlow()

    process = subprocess.Popen(
        [program, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        resource.prlimit(process.pid, resource.RLIMIT_DATA, (max_memory, max_memory))
        svg, errors = _exchange(process, dot_text, check, max_output)
        while process.poll() is None:
            check()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if not pipe.closed:
                pipe.close()
    if process.returncode < 0 or b"out of memory" in errors:
        raise OutOfMemory()
    if process.returncode != 0 or not svg:
        first_line = errors.decode(errors="replace").strip().split("\n", 1)[0]
        raise GraphvizFailed(f"dot exited with status {process.returncode}" + (f": {first_line}" if first_line else ""))
    return svg


def _exchange(process: subprocess.Popen, data: bytes, checkpoint, max_output: int) -> tuple[bytes, bytes]:
    """Write `data` to dot's stdin while reading its stdout and stderr, as `communicate` does, but
    checking the deadline between waits and stopping at `max_output` bytes of output."""
    stdin, stdout, stderr = process.stdin, process.stdout, process.stderr
    output, errors, pending, size = [], b"", memoryview(data), 0
    with selectors.DefaultSelector() as selector:
        for pipe in (stdin, stdout, stderr):
            os.set_blocking(pipe.fileno(), False)
        selector.register(stdin, selectors.EVENT_WRITE)
        selector.register(stdout, selectors.EVENT_READ)
        selector.register(stderr, selectors.EVENT_READ)
        while selector.get_map():
            checkpoint()
            for key, _ in selector.select(WAIT_SECONDS):
                pipe = key.fileobj
                if pipe is stdin:
                    try:
                        pending = pending[os.write(stdin.fileno(), pending[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(stdin)
                        stdin.close()
                    continue
                try:
                    chunk = os.read(pipe.fileno(), _CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(pipe)
                elif pipe is stdout:
                    size += len(chunk)
                    if size > max_output:
                        raise OutputTooLarge()
                    output.append(chunk)
                elif len(errors) < MAX_ERROR_BYTES:
                    errors += chunk[: MAX_ERROR_BYTES - len(errors)]
    return b"".join(output), errors
