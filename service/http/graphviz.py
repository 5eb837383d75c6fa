"""Graphviz's `dot`, run to draw a picture as SVG: the one program the service runs.

It is found on PATH at each request (installing Graphviz needs no restart); run without a shell, its
input on stdin; stopped by the request's deadline, which is checked between short waits; and its
output bounded, so that a picture costs no more than its answer may.
"""

import contextlib
import os
import selectors
import shutil
import subprocess
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


def dot_program() -> str | None:
    return shutil.which("dot")


def draw_svg(dot_text: bytes, checkpoint: Callable[[], None], max_output: int) -> bytes:
    """The SVG that `dot -Tsvg` draws of `dot_text`. `checkpoint` raises once the request's deadline has
    passed; dot is then killed, as it is on any error."""
    program = dot_program()
    if program is None:
        raise GraphvizUnavailable()
    process = subprocess.Popen(
        [program, "-Tsvg"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        svg, errors = _exchange(process, dot_text, checkpoint, max_output)
        while process.poll() is None:
            checkpoint()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(WAIT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout, process.stderr):
            if not pipe.closed:
                pipe.close()
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
