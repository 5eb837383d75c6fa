"""A request's time limit, checked by the loops that do its work (every CHECKPOINT_EVERY nodes)."""

import time


class DeadlineExceeded(Exception):
    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.seconds = seconds


class Deadline:
    """Ends `seconds` from now; `check` raises DeadlineExceeded once it has passed."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.ends = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.ends:
            raise DeadlineExceeded(self.seconds)
