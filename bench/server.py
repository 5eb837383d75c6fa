"""gunicorn as the bench runs it: the project's gunicorn.conf.py unchanged, on a free port.

The server-side time of a request is the `duration_ms` of the service's own log line (from the app
being called, through reading the body, to the answer's last byte handed to the server), found by the
X-Request-ID the bench sends; nothing is added to the service for the bench. The bare Flask peer, which
writes no log of its own, gets gunicorn's access log on the command line, so both peers log each request.
"""

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
TAG_HEADER = "X-Request-ID"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """A running gunicorn (context manager): its port, its worker processes, its access log."""

    def __init__(self, log_dir, workers, app=None, env=None):
        self.workers, self.port = workers, free_port()
        self.log = Path(log_dir) / f"gunicorn-{self.port}.log"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            "gunicorn.conf.py",
            *(["--access-logfile", "-"] if app else []),
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
        return self

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
        """The server-side time of the request sent with `TAG_HEADER: tag`. The worker logs it once the
        answer is written, which can be a moment after the client has it."""
        marker = f'"request_id":"{tag}"'
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log.read_text(errors="replace").splitlines():
                if marker in line:
                    return orjson.loads(line)["duration_ms"] / 1e3
            if time.monotonic() > deadline:
                raise RuntimeError(f"no access log line for request {tag} in {self.log}")
            time.sleep(0.01)
