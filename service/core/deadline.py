"""A request's time limit, checked by the loops that do its work (every CHECKPOINT_EVERY nodes)."""

import time


class DeadlineExceeded(Exception):
    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


class Deadline:
    """Ends `seconds` from now (`ends`, on time.monotonic's clock); `check`, or calling it, raises
    DeadlineExceeded once it has passed: it is the Checkpoint of the loops that do a request's work."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.ends:
            raise DeadlineExceeded(self.seconds)

    __call__ = check
