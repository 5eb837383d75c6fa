"""The cyclic garbage collector, paused while a worker's threads evaluate.

A big graph is millions of container objects and no reference cycles: left on, the collector walks
them again and again while they are built, for nothing. Reference counting still frees everything.
The pause is shared by the worker's threads: the collector runs again when the last of them is done,
and only if it was on before the first began.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CyclicGcPause:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


cyclic_gc_paused = CyclicGcPause()
