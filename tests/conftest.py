"""Fixtures: the app and its test client (as in Flask's tutorial), the contract, and the real server."""

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
import requests
import yaml
from openapi_schema_validator import OAS30Validator

from schemas.openapi import SEED_EXAMPLE
from service import create_app

ROOT = Path(__file__).resolve().parent.parent

SEED_GRAPH = SEED_EXAMPLE


@pytest.fixture
def app():
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def spec():
    return yaml.safe_load((ROOT / "openapi.yaml").read_text())


@pytest.fixture(scope="session")
def conforms(spec):
    """conforms(path, method, status, content_type, body): assert the response is one the contract allows."""

    def check(path, method, status, content_type, body):
        responses = spec["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path} answered {status}, which the contract does not list"
        media = content_type.split(";")[0].strip()
        content = responses[str(status)]["content"]
        assert media in content, f"{method} {path} {status} came as {media}, the contract says {list(content)}"
        if media.endswith("json"):
            schema = {**content[media]["schema"], "components": spec["components"]}
            OAS30Validator(schema).validate(orjson.loads(body))

    return check


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str
    process: subprocess.Popen
    stdout: Path
    stderr: Path


@contextmanager
def gunicorn_server(directory, **env):
    """The real gunicorn with the project's gunicorn.conf.py on a free port, `env` added to the environment.
    Yields a Server once /readyz answers 200; stdout and stderr go to separate files in `directory`."""
    port = free_port()
    stdout, stderr = Path(directory) / "stdout.log", Path(directory) / "stderr.log"
    environment = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": "1", **env}
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # a worker still booting under load
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not become ready:\n{stdout.read_text()}\n{stderr.read_text()}")
            time.sleep(0.1)
        yield Server(base, process, stdout, stderr)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The real server, two workers as on a two-core machine; yields its base URL."""
    with gunicorn_server(tmp_path_factory.mktemp("gunicorn"), WEB_CONCURRENCY="2") as server:
        yield server.base
