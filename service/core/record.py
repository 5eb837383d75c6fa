"""What is known of the request being served: its id, where its time goes (`with phase("build"): ...`),
the size of its graphs and the type of its refusal.

A context variable shared by the layers that learn these facts (the engine's phases, the answer path's
graph sizes, the problem's type) and the observer that reports them (service/runtime/observe.py), so
that none of them imports another; and `phase` costs nothing outside a request (the benchmark, the
engine's tests), where no record was started.
"""

from contextvars import ContextVar
from dataclasses import dataclass, field
from time import perf_counter

Phases = list[tuple[str, float]]


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    phases: Phases = field(default_factory=list)
    nodes: int | None = None
    problem_type: str | None = None


_current: ContextVar[RequestRecord | None] = ContextVar("valuegraph_request", default=None)


def start(request_id: str) -> RequestRecord:
    """A new record for the request this thread now serves."""
    record = RequestRecord(request_id)
    _current.set(record)
    return record


def stop() -> None:
    _current.set(None)


def current() -> RequestRecord | None:
    return _current.get()


def note_graph_size(nodes: int) -> None:
    """Record the size of a graph of the request, once it is known to be a valid one; a batch's sizes add up."""
    record = _current.get()
    if record is not None:
        record.nodes = (record.nodes or 0) + nodes


class phase:
    """Time the block as the phase `name` of the current request, if one is being recorded.

    A class rather than a @contextmanager generator, which costs several times as much on every request."""

    __slots__ = ("name", "phases", "started")

    def __init__(self, name: str) -> None:
        record = _current.get()
        self.name, self.phases = name, None if record is None else record.phases

    def __enter__(self) -> None:
        if self.phases is not None:
            self.started = perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        if self.phases is not None:
            self.phases.append((self.name, perf_counter() - self.started))
