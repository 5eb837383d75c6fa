"""Grading a student's class in a child process, as `valuegraph grade` does: `grade_isolated`.

The student's code runs in a fresh interpreter (valuegraph.child; started, not forked, so it holds no
client, session or token of this one), one graph at a time, each within `timeout_per_graph` seconds
and all of them within `timeout_total`, in at most `memory_limit` bytes of address space. A child
that runs past its time is killed with its process group; one that ends (os._exit, a crash) or
writes where its answers go is killed too; either way the next graph goes to a new child. The child
only builds graphs and answers what the class computed, as plain JSON; this process never imports
the student's module, checks the answers' shape, and grades them on the service. What the student's
code prints goes to a pipe of its own, read here; each graph's result keeps the start of its part.
"""

import contextlib
import json
import math
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from valuegraph.grading import ClassNotFound, GradeReport, GraphResult, fields_of, graded, is_constant, named_graphs

if TYPE_CHECKING:
    from valuegraph.client import Client

__all__ = ["MEMORY_LIMIT", "OUTPUT_LIMIT", "TIMEOUT_PER_GRAPH", "ChildNotStarted", "ClassNotFound", "grade_isolated"]

#: Seconds the student's code may take for one graph (building it, its backward), and to be imported.
TIMEOUT_PER_GRAPH = 10.0
#: Bytes of address space the child process may take (RLIMIT_AS, where the system has it).
MEMORY_LIMIT = 2 * 2**30
#: Bytes of what the student's code prints for one graph that its result keeps; the rest is counted.
OUTPUT_LIMIT = 2_000
#: The longest answer a child may send for one graph, in bytes of JSON.
MAX_ANSWER_BYTES = 64 * 2**20
#: Seconds allowed on top of a time limit for a killed child's pipes to close.
GRACE = 5.0
#: Seconds to wait for the marker that ends a graph's output, once its answer has come.
MARKER_SECONDS = 1.0
#: Seconds a child may take to start (a fresh Python importing valuegraph), before any student code runs.
STARTUP_SECONDS = 60.0

_ROOT = str(Path(__file__).resolve().parent.parent)
_CHILD = (
    f"import sys\nif {_ROOT!r} not in sys.path: sys.path.append({_ROOT!r})\n"
    "import valuegraph.child\nvaluegraph.child.main(sys.argv[1].encode())"
)
_END = object()
_NUMBER_WORDS = ("NaN", "Infinity", "-Infinity")


class ChildNotStarted(RuntimeError):
    """The child process did not start (before any student code ran): this machine's Python, not the student."""


def grade_isolated(
    client: "Client",
    class_spec: str,
    graphs: Mapping[str, Mapping] | Iterable[Mapping],
    mode: str = "full",
    tolerance: Mapping | None = None,
    required: Sequence[str] | None = None,
    *,
    timeout_per_graph: float = TIMEOUT_PER_GRAPH,
    timeout_total: float | None = None,
    memory_limit: int | None = MEMORY_LIMIT,
) -> GradeReport:
    """Grade the class `class_spec` names ("student.py:Value", "coursework.autograd:Value"; the class
    is Value when the name is left out) on `graphs` as `grade_class` does, its code run in a child
    process within the limits above (`None`: no limit). A graph the class takes too long on, or whose
    process ends, is not graded, with the reason (error_kind "timed-out", "crashed"; "not-run" for
    the graphs left when `timeout_total` runs out); a module that raises when imported leaves every
    graph "not-loaded". Raises ClassNotFound when there is no such module or class."""
    fields = fields_of(mode)
    named = named_graphs(graphs)
    outcomes: list[list[dict] | GraphResult | None] = [None] * len(named)
    outputs = [""] * len(named)
    messages: dict[int, bytes | None] = {}

    def message(i: int) -> bytes | None:
        """Graph i's message to the child, or None when the graph is not JSON (its outcome says so)."""
        if i not in messages:
            try:
                messages[i] = json.dumps({"graph": named[i][1], "fields": list(fields)}).encode() + b"\n"
            except (TypeError, ValueError) as error:
                messages[i] = None
                words = f"The graph is not JSON: {error}"
                outcomes[i] = GraphResult(named[i][0], False, error=words, error_kind="not-built")
        return messages[i]

    deadline = None if timeout_total is None else time.monotonic() + timeout_total
    child: _Child | None = None
    started, not_loaded = False, None
    try:
        for i, (name, graph) in enumerate(named):
            if message(i) is None:
                continue
            if child is None and not_loaded is None and _left(deadline) > 0:
                child = _Child(class_spec, memory_limit)
                not_loaded = _loaded(child, class_spec, min(timeout_per_graph, _left(deadline)), first=not started)
                started = True
                if not_loaded is None:
                    child.send(message(i))
                else:
                    child.stop()
                    child = None
                    if _left(deadline) <= 0:  # the import used up what was left of the time: this is not about it
                        not_loaded = None
            if not_loaded is not None:
                outcomes[i] = GraphResult(name, False, error=not_loaded, error_kind="not-loaded")
                continue
            if child is None or _left(deadline) <= 0:
                words = f"Not run: the {timeout_total:g} s allowed for all of the class's graphs ran out before it."
                outcomes[i] = GraphResult(name, False, error=words, error_kind="not-run")
                continue
            following = next((j for j in range(i + 1, len(named)) if message(j) is not None), None)
            if following is not None:
                child.send(messages[following])  # ready for the child as soon as it is done with this one
            limit = min(timeout_per_graph, _left(deadline))
            outcomes[i], outputs[i], ended = _computed(child, name, graph, fields, limit, limit < timeout_per_graph)
            if ended:
                child.stop()
                child = None
    finally:
        if child is not None:
            child.stop()
    report = graded(client, named, [outcome for outcome in outcomes if outcome is not None], mode, tolerance, required)
    for result, output in zip(report.results, outputs):
        result.output = output or None
    return report


def _left(deadline: float | None) -> float:
    return math.inf if deadline is None else deadline - time.monotonic()


def _loaded(child: "_Child", class_spec: str, timeout: float, first: bool) -> str | None:
    """None when the child imported the class; else why not (ClassNotFound when the first child finds none)."""
    module = class_spec.rpartition(":")[0] if ":" in class_spec else class_spec
    started = child.receive(STARTUP_SECONDS)
    if started.failure is not None or (started.answer or {}).get("ready") is not True:
        raise ChildNotStarted(f"the child process that runs the class did not start: {started.output.strip()}")
    child.send(json.dumps({"load": class_spec, "memory_limit": child.memory_limit}).encode() + b"\n")
    reply = child.receive(timeout)
    printed = f"\nIt printed:\n{reply.output}" if reply.output else ""
    if reply.failure == "timed-out":
        return f"Importing {module} did not finish within {timeout:g} s; it was stopped.{printed}"
    if reply.failure is not None:
        return f"Importing {module}: the process running it {reply.failure}.{printed}"
    answer = reply.answer or {}
    if "missing" in answer and first:
        raise ClassNotFound(str(answer["missing"]))
    if answer.get("loaded") is True:
        return None
    return str(answer.get("error") or answer.get("missing") or "The module could not be imported.") + printed


def _computed(
    child: "_Child", name: str, graph: Mapping, fields: Sequence[str], timeout: float, total_ran_out: bool
) -> tuple[list[dict] | GraphResult, str, bool]:
    """The child's answer for `graph`, sent to it already: what the class computed, or the GraphResult
    saying why it was not graded; what the class printed; and whether the child is gone (killed or ended)."""
    reply = child.receive(timeout)
    if reply.failure == "timed-out":
        allowed = "the time left of all its graphs'" if total_ran_out else "the time allowed for one graph"
        words = f"The class did not finish this graph within {timeout:g} s ({allowed}); it was stopped."
        return GraphResult(name, False, error=words, error_kind="timed-out"), reply.output, True
    if reply.failure is not None:
        words = f"The process running the class {reply.failure} while it built or differentiated this graph."
        return GraphResult(name, False, error=words, error_kind="crashed"), reply.output, True
    answer = reply.answer or {}
    if "error" in answer:
        kind = answer.get("kind") if answer.get("kind") in ("student-error", "not-built") else "student-error"
        return GraphResult(name, False, error=str(answer["error"]), error_kind=kind), reply.output, False
    submitted = answer.get("submitted")
    if not _well_formed(submitted, graph["nodes"], fields):
        child.kill()
        words = "The process running the class answered something that is not what the class computed."
        return GraphResult(name, False, error=words, error_kind="crashed"), reply.output, True
    return submitted, reply.output, False


def _well_formed(submitted: object, nodes: Sequence[Mapping], fields: Sequence[str]) -> bool:
    """One entry per node but the constants, in order, with the node's id, each field asked for a number
    (local_grads optional, one per child), and nothing else."""
    nodes = [node for node in nodes if not is_constant(node)]
    if type(submitted) is not list or len(submitted) != len(nodes):
        return False
    allowed, numbers = {"id", *fields}, [name for name in ("data", "grad") if name in fields]
    for entry, node in zip(submitted, nodes):
        if type(entry) is not dict or entry.get("id") != node["id"] or not entry.keys() <= allowed:
            return False
        for name in numbers:
            if not _is_number(entry.get(name)):
                return False
        grads = entry.get("local_grads")
        if grads is not None and (type(grads) is not list or len(grads) != len(node.get("children", ()))):
            return False
        for grad in grads or ():
            if not _is_number(grad):
                return False
    return True


def _is_number(thing: object) -> bool:
    return type(thing) is int or (type(thing) is float and math.isfinite(thing)) or thing in _NUMBER_WORDS


class _Reply(NamedTuple):
    answer: dict | None
    failure: str | None  # "timed-out", or how the process ended or misbehaved
    output: str


class _Child:
    """One child process running the student's class, and the threads that write its messages and
    read its answers and what it prints."""

    def __init__(self, class_spec: str, memory_limit: int | None):
        self.class_spec, self.memory_limit = class_spec, memory_limit
        self.marker = f"\x1dvaluegraph:{secrets.token_hex(16)}\x1d"
        environment = {key: value for key, value in os.environ.items() if not key.startswith("VALUEGRAPH_")}
        environment.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8:backslashreplace")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHILD, self.marker],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            **({"start_new_session": True} if os.name == "posix" else {}),
        )
        self.received = 0
        self.capture = _Capture(self.process.stderr, self.marker.encode())
        self.outbox: queue.Queue = queue.Queue()
        self.answers: queue.Queue = queue.Queue()
        threading.Thread(target=self._write_messages, daemon=True).start()
        threading.Thread(target=self._read_answers, daemon=True).start()

    def send(self, line: bytes) -> None:
        """Queue a message line for the child; it reads them in order."""
        self.outbox.put(line)

    def receive(self, timeout: float) -> _Reply:
        """The next answer, within `timeout` seconds, else the child is killed."""
        index, self.received = self.received, self.received + 1
        try:
            line = self.answers.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            return _Reply(None, "timed-out", self.capture.rest())
        if line is _END:
            return _Reply(None, self._how_it_ended(), self.capture.rest())
        answer = _parsed(line)
        if answer is None:
            self.kill()
            return _Reply(None, "wrote where its answers go something that is no answer", self.capture.rest())
        return _Reply(answer, None, self.capture.part(index))

    def kill(self) -> None:
        """SIGKILL to the child's process group (what it started too, where there are groups) and to the child."""
        if os.name == "posix":
            with contextlib.suppress(OSError):  # gone already, or the child left its group
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()

    def stop(self) -> None:
        """Kill the child and reap it. Each pipe is closed by the thread that uses it, when it ends: one
        that something the child started still holds open is left to that thread, never waited for."""
        self.kill()
        self.outbox.put(None)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=GRACE)

    def _how_it_ended(self) -> str:
        try:
            status = self.process.wait(timeout=GRACE)
        except subprocess.TimeoutExpired:
            self.kill()
            return "closed its answers' pipe"
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = str(-status)
            return f"was killed by signal {name}"
        return f"exited with status {status}"

    def _write_messages(self) -> None:
        """Writes the queued lines; a child that does not read them blocks this thread, not the grader."""
        with contextlib.suppress(OSError, ValueError):
            while (line := self.outbox.get()) is not None:
                self.process.stdin.write(line)
                self.process.stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            self.process.stdin.close()

    def _read_answers(self) -> None:
        stream = self.process.stdout
        while True:
            try:
                line = stream.readline(MAX_ANSWER_BYTES + 1)
            except (OSError, ValueError):
                line = b""
            self.answers.put(line or _END)
            if not line or len(line) > MAX_ANSWER_BYTES:
                with contextlib.suppress(OSError):
                    stream.close()
                return


def _parsed(line: object) -> dict | None:
    if not isinstance(line, bytes) or len(line) > MAX_ANSWER_BYTES or not line.endswith(b"\n"):
        return None
    try:
        answer = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return answer if isinstance(answer, dict) else None


class _Capture:
    """What the child prints, read as it comes and parted at the child's marker, written after each
    answer: part k is what was printed before answer k. Of each part the first OUTPUT_LIMIT bytes
    are kept, and the rest counted."""

    def __init__(self, pipe: IO[bytes], marker: bytes):
        self.pipe, self.marker = pipe, marker
        self.parts: list[str] = []
        self.head, self.dropped, self.ended, self.lost = bytearray(), 0, False, False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def part(self, index: int) -> str:
        """Part `index`, once the marker that ends it has been read (it was written before the answer).
        A child whose marker does not come (its code closed the pipe) is not waited for again."""
        with self.changed:
            if not self.lost:
                self.lost = not self.changed.wait_for(lambda: len(self.parts) > index or self.ended, MARKER_SECONDS)
            return self.parts[index] if len(self.parts) > index else ""

    def rest(self) -> str:
        """The part not ended by a marker, once the pipe has closed (the child was killed or ended)."""
        self.thread.join(GRACE)
        with self.changed:
            return self._text()

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self.pipe.read1(65_536)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                chunk = b""
            if not chunk:
                break
            data = pending + chunk
            while (at := data.find(self.marker)) >= 0:
                with self.changed:
                    self._keep(data[:at])
                    self.parts.append(self._text())
                    self.head, self.dropped = bytearray(), 0
                    self.changed.notify_all()
                data = data[at + len(self.marker) :]
            cut = max(0, len(data) - len(self.marker) + 1)
            with self.changed:
                self._keep(data[:cut])
            pending = data[cut:]
        with self.changed:
            self._keep(pending)
            self.ended = True
            self.changed.notify_all()
        with contextlib.suppress(OSError):
            self.pipe.close()

    def _keep(self, data: bytes) -> None:
        room = max(0, OUTPUT_LIMIT - len(self.head))
        self.head += data[:room]
        self.dropped += max(0, len(data) - room)

    def _text(self) -> str:
        text = self.head.decode("utf-8", "replace")
        return text + (f"\n[... {self.dropped} more bytes]" if self.dropped else "")
