"""The container: the Dockerfile built and run for real (docker-compose.yml: tests/test_deploy.py).

The Docker engine and the base image come from shared/docker/base-image.sh (beside the repo, or
beside a folder above it, as for a git worktree), which starts an engine when none answers and makes
a Debian bookworm image with python3 and venv for an engine that can pull no images; it prints that
image's tag last. The local images' tags are deploy/local-images.env's, the one place that names them. Where the script is missing
or fails, these tests skip and say why. The first run of the script takes a few minutes; after it,
this file is quick: the build is cached, and a container is healthy within seconds.

It uses no fixture from conftest.py, only the seed example.
"""

import itertools
import math
import os
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests

from tests.support import ROOT, SEED_GRAPH
from tools.reference_value import evaluate_with_seed

pytestmark = pytest.mark.slow


def shared_script(relative):
    """shared/`relative` beside the repo, or beside the nearest folder above it that has one."""
    for folder in ROOT.parents:
        if (folder / "shared" / relative).is_file():
            return folder / "shared" / relative
    return ROOT.parent / "shared" / relative


def local_images():
    """deploy/local-images.env: the local images' tags by variable (BASE_IMAGE, BUILD_IMAGE, ...)."""
    lines = (ROOT / "deploy/local-images.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


BASE_IMAGE_SCRIPT = shared_script("docker/base-image.sh")
#: The image's tag; VALUEGRAPH_TEST_IMAGE names another, so that runs from two checkouts do not share one.
IMAGE = os.environ.get("VALUEGRAPH_TEST_IMAGE", "valuegraph-test")
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
        result = subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT), local_images()["BASE_IMAGE"], *BASE_IMAGE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=1200,
        )
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


BASE_IMAGE_PACKAGES = ("python3", "python3-venv")
BUILD_IMAGE_PACKAGES = ("python3", "python3-venv", "python3-dev", "gcc", "libc6-dev")


@pytest.fixture(scope="module")
def build_image(base_image):
    """The image the fast path's C extension is compiled in (Python 3.11, its headers and gcc), made by
    the same script; a skip, saying why, when it cannot be made."""
    try:
        result = subprocess.run(
            ["bash", str(BASE_IMAGE_SCRIPT), local_images()["BUILD_IMAGE"], *BUILD_IMAGE_PACKAGES],
            capture_output=True,
            text=True,
            timeout=1200,
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

        # Graphviz is in the image: SVG pictures are drawn, by the unprivileged user, with a font.
        picture = requests.post(f"{base}/v1/render?format=svg", json=SEED_GRAPH, timeout=30)
        assert picture.status_code == 200 and picture.headers["Content-Type"].startswith("image/svg+xml"), picture.text
        assert picture.text.rstrip().endswith("</svg>") and ">e</text>" in picture.text

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


#: Each endpoint's worst shapes for memory per body byte (bench/memory.py measures them all; bench/README.md
#: has the table), as (endpoint, the start of the shape's name there).
WORST_SHAPES = (
    ("/v1/evaluate", "one recorded node, one-letter children"),
    ("/v1/evaluate", "one recorded node, invalid local gradients"),
    ("/v1/evaluate/batch", "invalid local gradients"),
    ("/v1/grade", "a recorded node's local gradients, all wrong"),
    ("/v1/grade", "a recorded node's submitted local gradients invalid"),
    ("/v1/grade/batch", "one recorded node's local gradients"),
    ("/v1/expression", "large inputs map"),
    ("/v1/expression", "inputs map of invalid values"),
    ("/v1/render?format=mermaid", "too many edges"),
    ("/v1/render?format=dot", "too many edges"),
)
WORST_BODY_BYTES = 6_000_000
#: How often the 1 GiB test sends every worst body.
ROUNDS = 2


def worst_bodies():
    """(endpoint, shape, body of about 6 MB) for each of WORST_SHAPES."""
    from bench.memory import all_shapes

    shapes = {(shape.endpoint, shape.name): shape for shape in all_shapes()}
    chosen = []
    for endpoint, start in WORST_SHAPES:
        (shape,) = [s for (e, name), s in shapes.items() if e == endpoint and name.startswith(start)]
        chosen.append((endpoint, shape.name, shape.make(WORST_BODY_BYTES)))
    return chosen


def test_concurrent_worst_case_bodies_of_every_endpoint_in_a_1_gib_container_get_no_worker_oom_killed(image):
    """1 GiB for two workers: each admits what its budget (derived from the cgroup limit) allows at each
    endpoint's reserve, and refuses the rest with 503 or, for a body that could never fit, 413. No worker is
    killed. On the reference path, where every endpoint's memory per body byte is largest (the fast path
    takes less, and declines what it refuses, which the reference path then explains). In rounds: what a
    worker keeps of the memory it freed after one round is there in the next (glibc kept hundreds of MiB
    until service/runtime/memory.py's give_freed_blocks_back, and the second round's workers were killed)."""
    shape = {"id": "r", "data": 0.0, "children": ["a"] * 5_000_000, "local_grads": [1] * 5_000_000}
    never_fits = orjson.dumps({"nodes": [{"id": "a", "data": 1.0}, shape]})
    container = f"valuegraph-test-{uuid.uuid4().hex[:12]}"
    try:
        run(
            [
                "docker",
                "run",
                "--detach",
                "--name",
                container,
                "--memory",
                "1g",
                "--memory-swap",
                "1g",
                "--env",
                "WEB_CONCURRENCY=2",
                "--env",
                "VALUEGRAPH_FAST_PATH=0",
                "--env",
                "VALUEGRAPH_ADMISSION_WAIT_SECONDS=0.2",
                "--publish",
                "127.0.0.1::8000",
                image,
            ],
            timeout=60,
        )
        wait_healthy(container)
        port = run(["docker", "port", container, "8000/tcp"], timeout=30).stdout.split()[0].rpartition(":")[2]
        base = f"http://127.0.0.1:{port}"

        def post(endpoint, body):
            response = requests.post(
                base + endpoint, data=body, headers={"Content-Type": "application/json"}, timeout=300
            )
            return response.status_code, response.headers.get("Content-Type"), response.headers.get("Retry-After")

        seen = {}
        for round_, (endpoint, name, body) in itertools.product(range(ROUNDS), worst_bodies()):
            with ThreadPoolExecutor(max_workers=12) as pool:
                answers = list(pool.map(post, [endpoint] * 12, [body] * 12))
            statuses = sorted(status for status, _, _ in answers)
            seen[f"{endpoint} {name}, round {round_ + 1}"] = statuses
            assert set(statuses) <= {200, 422, 503} and set(statuses) - {503}, (endpoint, name, statuses)
            assert all(
                kind == "application/problem+json" and retry == "1" for status, kind, retry in answers if status == 503
            )
            assert inspect(container, "{{.State.Status}} {{.State.OOMKilled}} {{.RestartCount}}") == "running false 0"
        assert post("/v1/evaluate", never_fits)[0] == 413

        logs = run(["docker", "logs", container], timeout=30)
        logs = logs.stderr + logs.stdout
        assert "SIGKILL" not in logs and "out of memory" not in logs.lower()
        assert "Freed memory may stay" not in logs, "the image's workers could not fix glibc's mmap threshold"
        assert logs.count("Booting worker") == 2, "a worker was started again: one died"
        response = requests.post(base + "/v1/evaluate", json=SEED_GRAPH, timeout=30)
        assert (
            response.status_code == 200
            and {n["id"]: (n["data"], n["grad"]) for n in response.json()["nodes"]} == seed_in_process()
        )
        print(f"\n12 concurrent 6 MB worst-shape bodies per endpoint in 1 GiB, {ROUNDS} rounds, statuses:")
        for shape, statuses in seen.items():
            print(f"  {shape}: {statuses.count(200)} × 200, {statuses.count(422)} × 422, {statuses.count(503)} × 503")
    finally:
        run(["docker", "rm", "--force", container], timeout=60, check=False)


def gunicorn_workers(container):
    """The gunicorn processes in the container, less the arbiter: its workers."""
    processes = run(["docker", "top", container, "-o", "pid,args"], timeout=30).stdout.splitlines()[1:]
    return sum("gunicorn" in line for line in processes) - 1


@pytest.mark.parametrize(
    "limits, workers",
    [
        (("--cpus", "1"), 1),  # a CPU quota of one CPU: one worker, whatever the host has
        (("--cpuset-cpus", "0"), 1),  # one core to run on: one worker
        ((), len(os.sched_getaffinity(0))),  # neither: a worker per core
    ],
    ids=["cpus-1", "cpuset-1", "unlimited"],
)
def test_the_default_worker_count_follows_the_cpu_quota(image, limits, workers):
    """No WEB_CONCURRENCY: the image starts as many workers as the container may use CPUs."""
    if limits and len(os.sched_getaffinity(0)) < 2:
        pytest.skip("this machine has one core: a one-CPU limit would change nothing")
    container = f"valuegraph-test-{uuid.uuid4().hex[:12]}"
    try:
        run(["docker", "run", "--detach", "--name", container, *limits, image], timeout=60)
        wait_healthy(container)
        time.sleep(3)  # every worker is booted at start; give the last ones time to show
        assert gunicorn_workers(container) == workers
        booted = run(["docker", "logs", container], timeout=30).stderr.count("Booting worker")
        assert booted == workers
    finally:
        run(["docker", "rm", "--force", container], timeout=60, check=False)
