"""Where a request's time goes: `with phase("build"): ...` records the phase's duration for the request's
`Server-Timing` header.

The phases are kept in a context variable, not on flask.g, so that the graph code can mark its phases
without importing the web layer, and `phase` costs nothing outside a request (the benchmark, the tests
of the engine), where no recording was started.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from time import perf_counter

Phases = list[tuple[str, float]]

_phases: ContextVar[Phases | None] = ContextVar("valuegraph_phases", default=None)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as the phase `name` of the current request, if one is being recorded."""
    phases = _phases.get()
    if phases is None:
        yield
        return
    started = perf_counter()
    try:
        yield
    finally:
        phases.append((name, perf_counter() - started))


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
