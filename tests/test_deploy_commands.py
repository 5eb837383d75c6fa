"""The container commands of the docs, run as printed on a Docker engine that can pull no images.

deploy/README.md's docker-compose section gives them in ```sh blocks: the local images and `.env`,
the compose commands (up, --scale, logs, a reload, down) and one container alone. This runs every one
of them, in that order, with `bash -c` in a copy of the repository (so its `.env` and its compose
project are the test's own) beside a link to shared/, as ../shared is beside a clone: each must exit
0 and pull nothing, and after each the stack serves the reference example, with the images the env
file names. The environment adds only where to publish (a free loopback port instead of 8000, which
others on this machine may use) and one worker per replica; the one-container `docker run` is given
that port and a name to clean up by. README.md's container commands must be among these.
"""

import re
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from tests.support import ROOT, SEED_GRAPH
from tests.test_deploy import DEPLOY_README, compose_environment, section, seed_answer, wait_until
from tests.test_docker import BASE_IMAGE_SCRIPT, base_image, local_images, run  # noqa: F401 (fixtures)
from tools.server import free_port

COPY_IGNORES = shutil.ignore_patterns(
    ".git", ".venv", ".env", "build", "__pycache__", "*.so", ".pytest_cache", ".hypothesis", "node_modules"
)


def documented_blocks():
    """The ```sh blocks of deploy/README.md's docker-compose section: lists of commands."""
    text = section(DEPLOY_README.read_text(), "## docker-compose")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def without_comment(command):
    return command.split("  #", 1)[0].strip()


def test_the_readme_container_commands_are_the_tested_ones():
    tested = {without_comment(command) for block in documented_blocks() for command in block}
    assert any("--scale" in command for command in tested) and "cp deploy/local-images.env .env" in tested
    in_readme = re.findall(r"`(docker[ -][^`]*)`", (ROOT / "README.md").read_text())
    assert in_readme, "README.md names no container command"
    for command in in_readme:
        assert command.replace("docker compose ", "docker-compose ") in tested, command


def compose_or_skip(command):
    """The line as this machine runs it: `docker-compose`, else Compose v2's `docker compose`."""
    if not command.startswith("docker-compose ") or shutil.which("docker-compose"):
        return command
    if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return "docker compose " + command.removeprefix("docker-compose ")
    pytest.skip("neither docker-compose nor Compose v2 is installed")


class Copy:
    """A copy of the repository in which the documented commands run, beside a link to shared/."""

    def __init__(self, tmp_path):
        self.directory = tmp_path / f"valuegraph-{uuid.uuid4().hex[:8]}"
        shutil.copytree(ROOT, self.directory, ignore=COPY_IGNORES)
        (tmp_path / "shared").symlink_to(BASE_IMAGE_SCRIPT.parents[1], target_is_directory=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = compose_environment(
            VALUEGRAPH_HOST_IP="127.0.0.1", VALUEGRAPH_PORT=str(self.port), WEB_CONCURRENCY="1"
        )

    def run(self, command, timeout=900):
        """The command, as printed, by bash in the copy; its stdout, once it exited 0 and pulled nothing."""
        result = subprocess.run(
            ["bash", "-c", compose_or_skip(command)],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"`{command}` exited {result.returncode}:\n{output[-4000:]}"
        assert "Pulling" not in output and "pull access denied" not in output, f"`{command}` pulled:\n{output}"
        return result.stdout

    def compose(self, *args):
        return run(
            ["bash", "-c", compose_or_skip(" ".join(["docker-compose", *args]))],
            cwd=self.directory,
            env=self.env,
            timeout=120,
        ).stdout

    def containers(self, service=""):
        return self.compose("ps", "--quiet", service).split()

    def image_of(self, container):
        return run(["docker", "inspect", "--format", "{{.Config.Image}}", container], timeout=30).stdout.strip()

    def running(self, service):
        states = [
            run(["docker", "inspect", "--format", "{{.State.Running}}", container], timeout=30).stdout.strip()
            for container in self.containers(service)
        ]
        return states.count("true")

    def serves(self, base):
        try:
            response = requests.post(f"{base}/v1/evaluate", json=SEED_GRAPH, timeout=10)
        except requests.RequestException:
            return False
        return response.status_code == 200 and response.json()["nodes"] == seed_answer()


@pytest.fixture
def copy(tmp_path, request):
    request.getfixturevalue("base_image")  # a Docker engine, or a skip saying why
    had_image = run(["docker", "image", "inspect", local_images()["VALUEGRAPH_IMAGE"]], timeout=30, check=False)
    copy = Copy(tmp_path)
    try:
        yield copy
    finally:
        subprocess.run(
            ["bash", "-c", compose_or_skip("docker-compose down --volumes --remove-orphans --timeout 5")],
            cwd=copy.directory,
            env=copy.env,
            capture_output=True,
            timeout=180,
        )
        if had_image.returncode != 0:
            subprocess.run(["docker", "rmi", local_images()["VALUEGRAPH_IMAGE"]], capture_output=True, timeout=60)


@pytest.mark.slow
def test_the_documented_container_commands_work_as_printed(copy):
    blocks = documented_blocks()
    (local,) = [block for block in blocks if "cp deploy/local-images.env .env" in block]
    (alone,) = [block for block in blocks if any(command.startswith("docker run ") for command in block)]
    (stack,) = [block for block in blocks if block not in (local, alone)]
    images = local_images()

    # The local images, made as printed, are the ones the env file names; `.env` is its copy.
    made = [copy.run(command).strip().splitlines()[-1] for command in local if "base-image.sh" in command]
    assert sorted(made) == sorted([images["BASE_IMAGE"], images["BUILD_IMAGE"], images["NGINX_IMAGE"]])
    for command in local:
        if "base-image.sh" not in command:
            copy.run(command)
    assert (copy.directory / ".env").read_text() == (ROOT / "deploy/local-images.env").read_text()

    ran = []
    nginx = None
    for command in stack:
        stdout = copy.run(command)
        ran.append(without_comment(command))
        words = command.split()
        if "up" in words:
            scale = re.search(r"--scale valuegraph=(\d+)", command)
            replicas = int(scale.group(1)) if scale else 2
            wait_until(lambda n=replicas: copy.running("valuegraph") == n, 120, f"{replicas} replicas running")
            wait_until(lambda: copy.serves(copy.base), 120, "the stack serving the example through nginx")
            (now,) = copy.containers("nginx")
            assert nginx in (None, now), "--scale recreated nginx"
            nginx = now
            expected = {images["NGINX_IMAGE"]} | {images["VALUEGRAPH_IMAGE"]}
            assert {copy.image_of(container) for container in copy.containers()} == expected
            addresses = {
                run(
                    ["docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", c],
                    timeout=30,
                ).stdout.strip()
                for c in copy.containers("valuegraph")
            }

            def every_replica_answered(addresses=addresses):
                for _ in range(2 * len(addresses)):
                    copy.serves(copy.base)
                logs = copy.compose("logs", "--no-color", "nginx")
                seen = set(re.findall(r'"upstream":"([\d.]+):8000"', logs))
                return addresses <= seen

            wait_until(every_replica_answered, 90, f"each of {len(addresses)} replicas answering through nginx")
        elif "logs" in words:
            assert re.search(r'\{"time":"[^"]+","request_id":"\w+","method":"POST","path":"/v1/evaluate"', stdout)
        elif "down" in words:
            assert copy.containers() == []
    assert {"up", "logs", "down"} <= {command.split()[1] for command in ran}

    # One container, without nginx: built by compose with the same images, then run as printed.
    for command in alone:
        if not command.startswith("docker run "):
            copy.run(command)
            continue
        port, name = free_port(), f"valuegraph-docs-{uuid.uuid4().hex[:8]}"
        assert " -p 8000:8000 " in command
        published = command.replace(" -p 8000:8000 ", f" -p 127.0.0.1:{port}:8000 ").replace(
            "docker run ", f"docker run --name {name} ", 1
        )
        server = subprocess.Popen(["bash", "-c", published], cwd=copy.directory, env=copy.env)
        try:
            wait_until(lambda p=port: copy.serves(f"http://127.0.0.1:{p}"), 90, "the one container serving")
            run_image = copy.image_of(name)
            assert (run_image if ":" in run_image else f"{run_image}:latest") == images["VALUEGRAPH_IMAGE"]
        finally:
            subprocess.run(["docker", "stop", "--time", "10", name], capture_output=True, timeout=60)
            server.wait(timeout=60)
            time.sleep(1)
            gone = subprocess.run(["docker", "inspect", name], capture_output=True, timeout=30)
            subprocess.run(["docker", "rm", "--force", name], capture_output=True, timeout=60)
        assert gone.returncode != 0, "--rm: the container is removed when it stops"
