"""What bounds one worker's memory: the budget its requests share, and its default size.

Cooperative, and costing nothing on the hot path. A body that could never fit is refused from its
Content-Length before it is read; while it arrives (in the worker's event loop, service/runtime/worker.py)
it holds only the bytes received so far, and an answer waiting to be written holds its own size, so that
slow clients hold little; once read, a body is admitted for the worst memory a body of its size was
measured to cost at its endpoint (bench/memory.py).
"""

import ctypes
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Reserve:
    """What admission holds of the budget for one body of an endpoint: `per_body_byte` times its size,
    and at least `at_least` (a small body can cost more than its size says: a picture, an expression)."""

    per_body_byte: int
    at_least: int = 0

    def bytes_for(self, body_bytes: int) -> int:
        return max(self.at_least, self.per_body_byte * body_bytes)

    def __str__(self) -> str:
        floor = f", at least {self.at_least / 2**20:g} MiB" if self.at_least else ""
        return f"{self.per_body_byte} B per body byte{floor}"


#: Per endpoint, the most worker memory a body was measured to cost, over every shape of body, valid and
#: refused, on either path (bench/memory.py; bench/README.md has the table). Admission reserves this much.
RESERVES: dict[str, Reserve] = {
    "/v1/evaluate": Reserve(30),
    "/v1/evaluate/batch": Reserve(30),
    "/v1/grade": Reserve(48, at_least=16 * 2**20),
    "/v1/grade/batch": Reserve(48, at_least=16 * 2**20),
    "/v1/expression": Reserve(24, at_least=8 * 2**20),
    "/v1/render": Reserve(30),
}
#: No more than any endpoint reserves: what a body sent to another path is checked against before it is read.
LEAST_RESERVE = Reserve(
    min(reserve.per_body_byte for reserve in RESERVES.values()), min(reserve.at_least for reserve in RESERVES.values())
)


def reserve_for(path: str) -> Reserve:
    """The reserve of the endpoint at `path` (the least of all for a path that is none of them)."""
    return RESERVES.get(path.rstrip("/") or "/", LEAST_RESERVE)


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

    def never_fits(self, body_bytes: int, path: str) -> bool:
        return reserve_for(path).bytes_for(body_bytes) > self.budget

    def refuse_if_never_fits(self, body_bytes: int, path: str) -> None:
        if self.never_fits(body_bytes, path):
            raise OverBudget(reserve_for(path).bytes_for(body_bytes), self.budget, ever=False)

    def admit_body(self, body_bytes: int, path: str) -> AbstractContextManager[None]:
        """Hold what answering a body of `body_bytes` at the endpoint `path` may cost (RESERVES)."""
        return self.admit(reserve_for(path).bytes_for(body_bytes))

    @contextmanager
    def admit(self, count: int) -> Iterator[None]:
        """Hold `count` bytes of the budget until the block ends, waiting up to `wait_seconds` for room."""
        if count > self.budget:
            raise OverBudget(count, self.budget, ever=False)
        with self._freed:
            if not self._freed.wait_for(lambda: self.admitted + count <= self.budget, self.wait_seconds):
                raise OverBudget(count, self.budget, ever=True)
            self.admitted += count
        try:
            yield
        finally:
            self.release(count)

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


#: glibc's mallopt parameter for the size from which a block is mapped on its own, and unmapped when freed.
M_MMAP_THRESHOLD = -3
#: glibc's initial mmap threshold.
MMAP_THRESHOLD_BYTES = 128 * 1024


def give_freed_blocks_back() -> bool:
    """Fix glibc's mmap threshold at its initial 128 KiB, so that every block larger than that goes back to
    the system when freed. Left alone, glibc raises the threshold to the size of each large block freed
    (up to 32 MiB) and keeps such blocks in its heap afterwards: a worker that had answered a few large
    bodies held hundreds of MiB that no request used, which the memory budget (counted from the worker's
    baseline) knew nothing of, and workers were killed for lack of memory. False where the C library is
    not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


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
