"""What bounds one worker's memory: the budget its requests share, and its default size.

Cooperative, and costing nothing on the hot path. A body that could never fit is refused from its
Content-Length before it is read; while it arrives (in the worker's event loop, service/runtime/worker.py)
it holds only the bytes received so far, and an answer waiting to be written holds its own size, so that
slow clients hold little; once read, a body is admitted for the worst memory a body byte was measured
to cost (bench/memory.py).
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The most worker memory one byte of request body was measured to cost, over every shape of graph,
#: valid and refused (bench/memory.py; bench/README.md has the table). Admission reserves this much.
PEAK_BYTES_PER_BODY_BYTE = 30

#: A worker's memory before any request: the interpreter, Flask, the schemas.
WORKER_BASELINE_BYTES = 64 * 1024 * 1024


class OverBudget(Exception):
    """The request's memory would not fit: `ever` is False when it cannot fit even alone."""

    def __init__(self, needed: int, budget: int, ever: bool):
        super().__init__(needed)
        self.needed, self.budget, self.ever = needed, budget, ever


class MemoryBudget:
    """The memory a worker's requests may hold at once. A request reserves its estimate before its body
    is read and gives it back when answered; one that does not fit waits up to `wait_seconds` for
    others to finish, then is refused, so that the worker is never killed for lack of memory."""

    def __init__(self, budget_bytes: int, wait_seconds: float):
        self.budget, self.wait_seconds = budget_bytes, wait_seconds
        self.admitted = 0
        self._freed = threading.Condition()

    def never_fits(self, body_bytes: int) -> bool:
        return body_bytes * PEAK_BYTES_PER_BODY_BYTE > self.budget

    def refuse_if_never_fits(self, body_bytes: int) -> None:
        if self.never_fits(body_bytes):
            raise OverBudget(body_bytes * PEAK_BYTES_PER_BODY_BYTE, self.budget, ever=False)

    @contextmanager
    def admit(self, body_bytes: int, per_body_byte: int = PEAK_BYTES_PER_BODY_BYTE) -> Iterator[None]:
        """Hold `body_bytes` × `per_body_byte` of the budget: PEAK_BYTES_PER_BODY_BYTE to evaluate a body,
        1 while it arrives."""
        needed = body_bytes * per_body_byte
        if needed > self.budget:
            raise OverBudget(needed, self.budget, ever=False)
        with self._freed:
            if not self._freed.wait_for(lambda: self.admitted + needed <= self.budget, self.wait_seconds):
                raise OverBudget(needed, self.budget, ever=True)
            self.admitted += needed
        try:
            yield
        finally:
            self.release(needed)

    def try_hold(self, count: int) -> bool:
        """Hold `count` bytes if they fit now, without waiting: the event loop, which must never wait,
        holds a body's bytes as they arrive."""
        with self._freed:
            if self.admitted + count > self.budget:
                return False
            self.admitted += count
            return True

    def hold(self, count: int) -> None:
        """Count `count` bytes that are already in memory (an answer waiting to be written), even past the
        budget: new requests then wait for them to go."""
        with self._freed:
            self.admitted += count

    def release(self, count: int) -> None:
        with self._freed:
            self.admitted -= count
            self._freed.notify_all()


def default_memory_budget(workers: int) -> int:
    """A worker's share of the memory it may use: 80 % of the container's cgroup memory limit, or of the
    machine's memory where there is none, split over the workers, less each worker's baseline."""
    total = cgroup_memory_limit() or machine_memory()
    return max(int(0.8 * total / workers) - WORKER_BASELINE_BYTES, WORKER_BASELINE_BYTES)


def cgroup_memory_limit() -> int | None:
    """The memory limit of this process's cgroup (v2, then v1), or None where there is none."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < machine_memory():
            return int(text)
    return None


def machine_memory() -> int:
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))
