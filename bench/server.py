"""gunicorn as the bench runs it: the project's launcher (tests/support.py) and gunicorn.conf.py
unchanged, on a free port.

The only addition is on the command line: an access log format whose %(D)s, the microseconds
gunicorn spent on the request (reading the body, the app, writing the answer), is the server-side
time; nothing is added to the service for the bench.
"""

import time

from tests.support import ROOT, Gunicorn

__all__ = ["ROOT", "TAG_HEADER", "BenchGunicorn"]

TAG_HEADER = "X-Bench-Request"
ACCESS_LOG_FORMAT = 'bench-request %({x-bench-request}i)s %(D)s %(s)s "%(r)s"'


class BenchGunicorn(Gunicorn):
    """The real server, with each request's server-side time in its access log, and its workers' memory."""

    def __init__(self, log_dir, workers, app=None, env=None):
        super().__init__(log_dir, workers, env, args=("--access-logformat", ACCESS_LOG_FORMAT, *([app] if app else [])))
        if app:
            self.ready_path = "/healthz"

    def worker_memory(self, field):
        """VmRSS or VmHWM of the only worker, in bytes."""
        (pid,) = self.worker_pids()
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field + ":"))

    def request_seconds(self, tag, timeout=10):
        """The server-side time of the request sent with `TAG_HEADER: tag`. gunicorn logs it once the
        answer is written, which can be a moment after the client has it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.stdout.read_text(errors="replace").splitlines():
                fields = line.split()
                if fields[:2] == ["bench-request", tag]:
                    return int(fields[2]) / 1e6
            if time.monotonic() > deadline:
                raise RuntimeError(f"no access log line for request {tag} in {self.stdout}")
            time.sleep(0.01)
