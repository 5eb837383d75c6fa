"""The one way this project starts the real gunicorn with its real gunicorn.conf.py, for the tests and
the benchmark alike: free ports, the workers of a master, and `Gunicorn`, a context manager."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_pids(master_pid: int) -> list[int]:
    """The processes whose parent is `master_pid`: a gunicorn master's workers."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == master_pid:
                pids.append(int(entry))
    return pids


class Gunicorn:
    """gunicorn with gunicorn.conf.py on a free loopback port, `env` added to the environment and `args`
    to its command line. A context manager: entered once every worker runs and /readyz answers 200.
    Its stdout (the access log) and stderr (the error log) go to files in `directory`."""

    ready_path = "/readyz"

    def __init__(self, directory, workers: int = 1, env: dict | None = None, args: tuple = ()):
        self.workers, self.port = workers, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stdout = Path(directory) / f"gunicorn-{self.port}.out.log"
        self.stderr = Path(directory) / f"gunicorn-{self.port}.err.log"
        self.environment = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            **(env or {}),
        }
        self.command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *args]
        self.process = None

    def __enter__(self) -> "Gunicorn":
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.environment, stdout=out, stderr=err)
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(
                    f"gunicorn did not become ready:\n{self.stdout.read_text()}\n{self.stderr.read_text()}"
                )
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _ready(self) -> bool:
        if len(self.worker_pids()) < self.workers:
            return False
        try:
            return requests.get(self.base + self.ready_path, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def worker_pids(self) -> list[int]:
        """The master's children: gunicorn's workers."""
        return worker_pids(self.process.pid)


@contextmanager
def gunicorn_server(directory, **env):
    """The real server as the tests start it: `env` as environment variables (WEB_CONCURRENCY default 1)."""
    workers = int(env.pop("WEB_CONCURRENCY", "1"))
    with Gunicorn(directory, workers=workers, env=env) as server:
        yield server
