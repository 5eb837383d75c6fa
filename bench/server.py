"""gunicorn as the bench runs it: the project's launcher (tests/support.py) and gunicorn.conf.py
unchanged, on a free port.

The server-side time of a request is the `duration_ms` of the service's own log line (from the app
being called, through reading the body, to the answer's last byte handed to the server), found by the
X-Request-ID the bench sends; nothing is added to the service for the bench. The bare Flask peer, which
writes no log of its own, gets gunicorn's access log on the command line, so both peers log each request.
"""

import time

import orjson
import requests

from tools.server import ROOT, Gunicorn

__all__ = ["ROOT", "TAG_HEADER", "BenchGunicorn"]

TAG_HEADER = "X-Request-ID"


class BenchGunicorn(Gunicorn):
    """The real server, with each request's server-side time in its log, and its workers' memory."""

    def __init__(self, log_dir, workers, app=None, env=None, expect_path=None):
        super().__init__(log_dir, workers, env, args=("--access-logfile", "-", app) if app else ())
        self.expect_path = expect_path
        if app:
            self.ready_path = "/healthz"

    def __enter__(self):
        super().__enter__()
        if self.expect_path is not None:
            path = requests.get(self.base + "/readyz", timeout=30).json().get("path")
            if path != self.expect_path:
                self.__exit__()
                raise RuntimeError(
                    f"gunicorn answers on the {path} path, not the {self.expect_path} path: is the fast path's "
                    f"C extension built (make fastpath)?\n{self.stderr.read_text()}"
                )
        return self

    def worker_memory(self, field):
        """VmRSS or VmHWM of the only worker, in bytes."""
        (pid,) = self.worker_pids()
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))

    def request_seconds(self, tag, timeout=10):
        """The server-side time of the request sent with `TAG_HEADER: tag`. The worker logs it once the
        answer is written, which can be a moment after the client has it."""
        marker = f'"request_id":"{tag}"'
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stdout.read_text(errors="replace").splitlines():
                if marker in line:
                    return orjson.loads(line)["duration_ms"] / 1e3
            if time.monotonic() > deadline:
                raise RuntimeError(f"no log line for request {tag} in {self.stdout}")
            time.sleep(0.01)
