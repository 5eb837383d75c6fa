"""The container: the Dockerfile built and run for real, and docker-compose.yml checked by compose.

The Docker engine and the base image come from ../shared/docker/base-image.sh (beside the repo),
which starts an engine when none answers and makes a Debian bookworm image with python3 and venv
for an engine that can pull no images; it prints that image's tag last. Where the script is missing
or fails, these tests skip and say why. The first run of the script takes a few minutes; after it,
this file takes well under a minute (a cached build, ~10 s until the HEALTHCHECK first passes).

It uses no fixture from conftest.py, only its seed example and free_port.
"""

import math
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import ROOT, SEED_GRAPH, free_port
from tests.seed_value import evaluate_with_seed

BASE_IMAGE_SCRIPT = Path(__file__).resolve().parents[2] / "shared/docker/base-image.sh"
IMAGE = "valuegraph-test"
HEALTHY_WITHIN = 60  # seconds, from `docker run` until the image's own HEALTHCHECK reports healthy


def run(args, timeout, check=True, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


@pytest.fixture(scope="module")
def base_image():
    """The base image's tag, once a Docker engine answers; a skip, saying why, when none can be had."""
    if not BASE_IMAGE_SCRIPT.is_file():
        pytest.skip(f"no Docker test: {BASE_IMAGE_SCRIPT} is missing, so no engine or base image can be had")
    try:
        # bash, not the file itself: shared/ may come without its executable bits.
        result = subprocess.run(["bash", str(BASE_IMAGE_SCRIPT)], capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        pytest.skip(f"no Docker test: {BASE_IMAGE_SCRIPT} ran for more than 20 minutes")
    if result.returncode != 0:
        pytest.skip(
            f"no Docker test: {BASE_IMAGE_SCRIPT} exited {result.returncode} "
            f"(no Docker engine could be started, or no base image made): {result.stderr.strip()[-1000:]}"
        )
    lines = result.stdout.strip().splitlines()
    if not lines or shutil.which("docker") is None:
        pytest.skip(f"no Docker test: {BASE_IMAGE_SCRIPT} printed no image tag or left no docker command")
    if run(["docker", "info"], timeout=60, check=False).returncode != 0:
        pytest.skip("no Docker test: the Docker engine does not answer `docker info`")
    return lines[-1].strip()


BUILD_IMAGE_PACKAGES = (
    "local/python-build:3.11-bookworm",
    "python3",
    "python3-venv",
    "python3-dev",
    "gcc",
    "libc6-dev",
)


@pytest.fixture(scope="module")
def build_image(base_image):
    """The image the fast path's C extension is compiled in (Python 3.11, its headers and gcc), made by
    the same script; a skip, saying why, when it cannot be made."""
    try:
        result = subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT), *BUILD_IMAGE_PACKAGES], capture_output=True, text=True, timeout=1200
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"no Docker test: {BASE_IMAGE_SCRIPT} ran for more than 20 minutes making the build image")
    if result.returncode != 0 or not result.stdout.strip():
        pytest.skip(f"no Docker test: no build image could be made: {result.stderr.strip()[-1000:]}")
    return result.stdout.strip().splitlines()[-1].strip()


@pytest.fixture(scope="module")
def image(base_image, build_image):
    """valuegraph-test, built from the repo's Dockerfile on the base image, its C extension compiled
    in the build image."""
    run(
        [
            "docker",
            "build",
            "--force-rm",
            "--build-arg",
            f"BASE_IMAGE={base_image}",
            "--build-arg",
            f"BUILD_IMAGE={build_image}",
            "-t",
            IMAGE,
            ".",
        ],
        cwd=ROOT,
        timeout=600,
    )
    return IMAGE


def inspect(target, template):
    return run(["docker", "inspect", "--format", template, target], timeout=30).stdout.strip()


def wait_healthy(container):
    deadline = time.monotonic() + HEALTHY_WITHIN
    while True:
        state = inspect(container, "{{.State.Status}} {{.State.Health.Status}}")
        if state == "running healthy":
            return
        if not state.startswith("running") or state.endswith(" unhealthy") or time.monotonic() > deadline:
            logs = run(["docker", "logs", "--tail", "50", container], timeout=30, check=False)
            pytest.fail(
                f"container is {state!r}, not healthy, {HEALTHY_WITHIN} s after start; its last logs:\n"
                f"{logs.stdout}{logs.stderr}"
            )
        time.sleep(0.5)


def seed_in_process():
    """The seed's class on the seed's example: the exact floats the service must send back."""
    return evaluate_with_seed(SEED_GRAPH["nodes"], "e")


def test_image_serves_the_seed_example_healthy_and_not_as_root(image):
    healthcheck = inspect(image, "{{json .Config.Healthcheck.Test}}")
    assert "/healthz" in healthcheck and "urllib" in healthcheck
    assert inspect(image, "{{json .Config.Cmd}}") == '["gunicorn","--config","gunicorn.conf.py"]'

    container = f"valuegraph-test-{uuid.uuid4().hex[:12]}"
    try:
        run(["docker", "run", "--detach", "--name", container, "--publish", "127.0.0.1::8000", image], timeout=60)
        wait_healthy(container)
        host, _, port = run(["docker", "port", container, "8000/tcp"], timeout=30).stdout.split()[0].rpartition(":")
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"

        response = requests.post(f"{base}/v1/evaluate", json=SEED_GRAPH, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        assert body["output"] == "e"
        got = {node["id"]: (node["data"], node["grad"]) for node in body["nodes"]}
        assert list(got) == ["a", "b", "c", "d", "e"]
        assert got == seed_in_process()
        assert got["e"][0] == math.log(10)
        assert {name: grad for name, (_, grad) in got.items()} == {"a": 0.7, "b": 0.2, "c": 0.2, "d": 0.1, "e": 1}

        missing = requests.get(f"{base}/no/such/path", timeout=30)
        assert missing.status_code == 404
        assert missing.headers["Content-Type"] == "application/problem+json"
        assert missing.json()["status"] == 404

        # The fast path answers, and the image that runs it has no compiler.
        assert requests.get(f"{base}/readyz", timeout=30).json() == {"status": "ready", "path": "fast"}
        compilers = run(["docker", "exec", container, "sh", "-c", "command -v gcc cc clang"], timeout=30, check=False)
        assert compilers.returncode != 0 and not compilers.stdout.strip(), compilers.stdout

        uid = run(["docker", "exec", container, "id", "-u"], timeout=30).stdout.strip()
        assert uid.isdigit() and uid != "0"
        # The server itself, PID 1 (gunicorn's arbiter), runs as that user too.
        status = run(["docker", "exec", container, "cat", "/proc/1/status"], timeout=30).stdout
        real, effective = next(line.split()[1:3] for line in status.splitlines() if line.startswith("Uid:"))
        assert real == effective == uid
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", container], capture_output=True, timeout=60)


def compose_command():
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose_config(command, **env):
    """docker-compose.yml as compose resolves it, with only `env` set of the variables it reads."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "BASE_IMAGE",
            "BUILD_IMAGE",
            "VALUEGRAPH_PORT",
            "VALUEGRAPH_MAX_BODY_BYTES",
            "VALUEGRAPH_MAX_NODES",
            "WEB_CONCURRENCY",
        )
    }
    environment.update(env)
    result = run(
        [*command, "--project-name", f"vgtest{uuid.uuid4().hex[:8]}", "config"], cwd=ROOT, env=environment, timeout=60
    )
    return yaml.safe_load(result.stdout)["services"]["valuegraph"]


def test_compose_file_is_valid_with_the_healthcheck_and_the_limits():
    command = compose_command()
    if command is None and BASE_IMAGE_SCRIPT.is_file():
        subprocess.run(["bash", str(BASE_IMAGE_SCRIPT)], capture_output=True, timeout=1200)  # installs docker-compose
        command = compose_command()
    if command is None:
        pytest.skip(
            "no compose test: neither `docker compose` nor `docker-compose` is installed, "
            f"and {BASE_IMAGE_SCRIPT} could not install it"
        )

    service = compose_config(command)
    assert service["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim"
    assert service["build"]["args"]["BUILD_IMAGE"] == "python:3.11"
    assert Path(service["build"]["context"]).resolve() == ROOT
    assert [
        (str(port["published"]), int(port["target"])) if isinstance(port, dict) else port for port in service["ports"]
    ] in ([("8000", 8000)], ["8000:8000"])
    assert service["environment"] == {
        "VALUEGRAPH_MAX_BODY_BYTES": "268435456",
        "VALUEGRAPH_MAX_NODES": "1000000",
        "WEB_CONCURRENCY": "2",
    }
    healthcheck = service["healthcheck"]
    assert healthcheck["test"][0] == "CMD" and "/healthz" in " ".join(healthcheck["test"])
    assert {"interval", "timeout", "retries"} <= set(healthcheck)

    service = compose_config(
        command,
        BASE_IMAGE="local/python:3.11-bookworm",
        VALUEGRAPH_MAX_BODY_BYTES="1024",
        VALUEGRAPH_MAX_NODES="10",
        WEB_CONCURRENCY="3",
    )
    assert service["build"]["args"]["BASE_IMAGE"] == "local/python:3.11-bookworm"
    assert service["environment"] == {
        "VALUEGRAPH_MAX_BODY_BYTES": "1024",
        "VALUEGRAPH_MAX_NODES": "10",
        "WEB_CONCURRENCY": "3",
    }


def test_compose_runs_the_service_healthy(base_image, build_image):
    """`docker-compose up` for real: the service's own health check passes and it answers the seed."""
    command = compose_command()
    if command is None:
        pytest.skip("no compose test: neither `docker compose` nor `docker-compose` is installed")
    port = free_port()
    project = [*command, "--project-name", f"vgtest{uuid.uuid4().hex[:8]}"]
    env = {
        **os.environ,
        "BASE_IMAGE": base_image,
        "BUILD_IMAGE": build_image,
        "VALUEGRAPH_PORT": str(port),
        "VALUEGRAPH_MAX_NODES": "5",
    }
    try:
        run([*project, "up", "--detach", "--build"], cwd=ROOT, env=env, timeout=600)
        container = run([*project, "ps", "--quiet", "valuegraph"], cwd=ROOT, env=env, timeout=60).stdout.strip()
        wait_healthy(container)
        base = f"http://127.0.0.1:{port}"
        body = requests.post(f"{base}/v1/evaluate", json=SEED_GRAPH, timeout=30).json()
        assert {node["id"]: (node["data"], node["grad"]) for node in body["nodes"]} == seed_in_process()
        six_nodes = {"nodes": [*SEED_GRAPH["nodes"], {"id": "f", "op": "value", "data": 1.0}], "output": "e"}
        too_many = requests.post(f"{base}/v1/evaluate", json=six_nodes, timeout=30)
        assert too_many.status_code == 422 and "at most 5 nodes" in too_many.text
    finally:
        subprocess.run(
            [*project, "down", "--volumes", "--rmi", "local"], cwd=ROOT, env=env, capture_output=True, timeout=120
        )
