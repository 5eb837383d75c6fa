"""Where a request's time goes: `with phase("build"): ...` records the phase's duration for the request's
`Server-Timing` header.

The phases are kept in a context variable, not on flask.g, so that the graph code can mark its phases
without importing the web layer, and `phase` costs nothing outside a request (the benchmark, the tests
of the engine), where no recording was started.
"""

from contextvars import ContextVar
from time import perf_counter

Phases = list[tuple[str, float]]

_phases: ContextVar[Phases | None] = ContextVar("valuegraph_phases", default=None)


class phase:
    """Time the block as the phase `name` of the current request, if one is being recorded.

    A class rather than a @contextmanager generator, which costs several times as much on every request."""

    __slots__ = ("name", "phases", "started")

    def __init__(self, name: str) -> None:
        self.name, self.phases = name, _phases.get()

    def __enter__(self) -> None:
        if self.phases is not None:
            self.started = perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        if self.phases is not None:
            self.phases.append((self.name, perf_counter() - self.started))


def start_recording() -> Phases:
    """A new, empty record of phases for the request this thread now serves."""
    phases: Phases = []
    _phases.set(phases)
    return phases


def stop_recording() -> None:
    _phases.set(None)


def server_timing(phases: Phases) -> str:
    """The phases as a Server-Timing header value: `parse;dur=1.234, validate;dur=0.5` (milliseconds)."""
    return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in phases)
