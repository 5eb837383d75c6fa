"""gunicorn as the bench runs it: the project's gunicorn.conf.py unchanged, on a free port.

The only addition is on the command line: an access log format whose %(D)s, the microseconds
gunicorn spent on the request (reading the body, the app, writing the answer), is the server-side
time; nothing is added to the service for the bench.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG_HEADER = "X-Bench-Request"
ACCESS_LOG_FORMAT = 'bench-request %({x-bench-request}i)s %(D)s %(s)s "%(r)s"'


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """A running gunicorn (context manager): its port, its worker processes, its access log."""

    def __init__(self, log_dir, workers, app=None, env=None, expect_path=None):
        self.workers, self.port, self.expect_path = workers, free_port(), expect_path
        self.log = Path(log_dir) / f"gunicorn-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            "--access-logformat",
            ACCESS_LOG_FORMAT,
        ]
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            **(env or {}),
        }
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command + ([app] if app else []), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def __enter__(self):
        deadline = time.monotonic() + 60
        while not self._all_workers_answer():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()}")
            time.sleep(0.1)
        if self.expect_path is not None:
            path = self.readyz().get("path")
            if path != self.expect_path:
                self.process.kill()
                raise RuntimeError(
                    f"gunicorn answers on the {path} path, not the {self.expect_path} path: is the fast path's "
                    f"C extension built (make fastpath)?\n{self.log.read_text()}"
                )
        return self

    def readyz(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", "/readyz")
        answer = json.loads(connection.getresponse().read())
        connection.close()
        return answer

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(timeout=60)

    def _all_workers_answer(self):
        if len(self.worker_pids()) < self.workers:
            return False
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            connection.close()
            return True
        except OSError:
            return False

    def worker_pids(self):
        """The master's children: gunicorn's workers."""
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
                if parent == self.process.pid:
                    pids.append(int(entry))
        return pids

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
            for line in self.log.read_text(errors="replace").splitlines():
                fields = line.split()
                if fields[:2] == ["bench-request", tag]:
                    return int(fields[2]) / 1e6
            if time.monotonic() > deadline:
                raise RuntimeError(f"no access log line for request {tag} in {self.log}")
            time.sleep(0.01)
