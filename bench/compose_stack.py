"""The compose stack for the soak (`python -m bench.soak`): docker-compose.yml brought up under a project
name of its own, its containers found by compose's labels, a replica killed and started again, each
container's memory read from its cgroup, and nginx's JSON access log read back.

The images are deploy/local-images.env's where the engine has them (an engine that can pull no images:
deploy/README.md), else compose's defaults; a variable set in the environment wins over both.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tools.server import free_port

ROOT = Path(__file__).resolve().parent.parent
LOCAL_IMAGES = ROOT / "deploy/local-images.env"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class StackError(RuntimeError):
    """The stack could not be brought up, or a container could not be found or driven."""


def run(args: list[str], timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise StackError(f"{' '.join(args)} exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def compose_command() -> list[str] | None:
    """`docker compose` (Compose v2) where it answers, else `docker-compose` (1.29), else None."""
    if shutil.which("docker") and run(["docker", "compose", "version"], timeout=30, check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def local_images() -> dict[str, str]:
    """deploy/local-images.env's tags by variable, keeping those the engine has."""
    lines = LOCAL_IMAGES.read_text().splitlines()
    named = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {
        variable: tag
        for variable, tag in named.items()
        if variable != "VALUEGRAPH_IMAGE" and run(["docker", "image", "inspect", tag], check=False).returncode == 0
    }


@dataclass
class Container:
    id: str
    name: str
    service: str
    running: bool


class Stack:
    """A compose project's containers, by compose's labels: works for a stack this module brought up
    and for one already running (`python -m bench.soak --url ... --project NAME`)."""

    def __init__(self, project: str):
        self.project = project

    def containers(self, service: str | None = None) -> list[Container]:
        """The project's containers (of `service`, if given), running or not, by name."""
        output = run(
            [
                "docker",
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                f"label={PROJECT_LABEL}={self.project}",
                "--format",
                f'{{{{.ID}}}} {{{{.Names}}}} {{{{.Label "{SERVICE_LABEL}"}}}} {{{{.State}}}}',
            ],
            timeout=60,
        ).stdout
        found = [Container(*line.split()[:3], line.split()[3] == "running") for line in output.splitlines() if line]
        return sorted((c for c in found if service in (None, c.service)), key=lambda c: natural_key(c.name))

    def replicas(self) -> list[Container]:
        return self.containers("valuegraph")

    def nginx(self) -> Container:
        found = self.containers("nginx")
        if not found:
            raise StackError(f"project {self.project} has no nginx container")
        return found[0]

    def address(self, container: Container) -> str:
        template = "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
        return run(["docker", "inspect", "--format", template, container.id], timeout=30).stdout.strip()

    def inside(self, container: Container) -> tuple[str, int] | None:
        """The container's own address and published port inside its network, when this machine can
        connect to it there (Linux, the engine local): clients that reach nginx so meet it without
        Docker's port proxy in between, as clients from another machine would."""
        published = run(["docker", "port", container.id], timeout=30).stdout.split("/", 1)[0].strip()
        address = self.address(container)
        if not published.isdigit() or not address:
            return None
        try:
            socket.create_connection((address, int(published)), timeout=2).close()
        except OSError:
            return None
        return address, int(published)

    def kill(self, container: Container) -> None:
        """SIGKILL, as a crash or the kernel's OOM killer would; compose's `restart: unless-stopped`
        does not bring back a container that `docker kill` stopped, so `start` does."""
        run(["docker", "kill", "--signal", "KILL", container.id], timeout=60)

    def start(self, container: Container) -> None:
        run(["docker", "start", container.id], timeout=120)

    def healthy(self, container: Container) -> bool:
        state = run(["docker", "inspect", "--format", "{{.State.Health.Status}}", container.id], timeout=30)
        return state.stdout.strip() == "healthy"

    def logs(self, container: Container) -> tuple[str, str]:
        """A container's stdout and stderr since it was made (across restarts)."""
        result = run(["docker", "logs", container.id], timeout=300)
        return result.stdout, result.stderr

    def access_log(self) -> list[dict]:
        """nginx's JSON access lines, oldest first."""
        stdout, _ = self.logs(self.nginx())
        lines = []
        for line in stdout.splitlines():
            if line.startswith("{"):
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue
        return lines


def natural_key(name: str) -> list:
    """valuegraph_2 before valuegraph_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


#: The tag the soak builds the service's image as: kept between runs, so that the next build is cached.
SOAK_IMAGE = "valuegraph-soak:latest"


class ComposeUp:
    """docker-compose.yml up under a fresh project name (`vgsoak` and 8 hex digits), nginx published on a
    free port of 127.0.0.1, `replicas` replicas, the service's image built from this tree as SOAK_IMAGE;
    a context manager that takes the project down on exit (its containers, network and volume; no image,
    no other project's container)."""

    def __init__(self, replicas: int, max_body_bytes: int):
        command = compose_command()
        if command is None:
            raise StackError(
                "neither `docker compose` nor `docker-compose` is installed: "
                "bash ../shared/docker/base-image.sh installs docker-compose and starts an engine"
            )
        if run(["docker", "info"], timeout=60, check=False).returncode != 0:
            raise StackError(
                "the Docker engine does not answer `docker info` (../shared/docker/base-image.sh starts one)"
            )
        self.name = f"vgsoak{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.replicas = replicas
        self.env = {
            **local_images(),
            **os.environ,
            "VALUEGRAPH_IMAGE": SOAK_IMAGE,
            "VALUEGRAPH_HOST_IP": "127.0.0.1",
            "VALUEGRAPH_PORT": str(self.port),
            "VALUEGRAPH_MAX_BODY_BYTES": str(max_body_bytes),
        }
        self.compose = [*command, "--project-name", self.name]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stack = Stack(self.name)

    def __enter__(self) -> "ComposeUp":
        try:
            run(
                [*self.compose, "up", "--detach", "--build", "--scale", f"valuegraph={self.replicas}"],
                timeout=900,
                cwd=ROOT,
                env=self.env,
            )
            deadline = time.monotonic() + 120
            while not self.stack.healthy(self.stack.nginx()):
                if time.monotonic() > deadline:
                    raise StackError(f"nginx of {self.name} not healthy within 120 s")
                time.sleep(1)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        run(
            [*self.compose, "down", "--volumes", "--remove-orphans", "--timeout", "5"],
            timeout=300,
            check=False,
            cwd=ROOT,
            env=self.env,
        )


#: Where a container's memory cgroup is, by cgroup version and driver.
CGROUP_DIRECTORIES = (
    "/sys/fs/cgroup/memory/docker/{id}",  # v1, cgroupfs
    "/sys/fs/cgroup/memory/system.slice/docker-{id}.scope",  # v1, systemd
    "/sys/fs/cgroup/docker/{id}",  # v2, cgroupfs
    "/sys/fs/cgroup/system.slice/docker-{id}.scope",  # v2, systemd
)


@dataclass
class Memory:
    """A container's memory: `working_set` as `docker stats` shows it (the cgroup's usage less its
    inactive file cache: the processes' memory, tmpfs files and active cache) and `anonymous` (the
    processes' heaps and stacks alone), in bytes."""

    working_set: int
    anonymous: int | None


def memory(container_id: str) -> Memory | None:
    """The container's memory from its cgroup; from `docker stats` when the cgroup is not readable
    here (another machine's engine); None when the container is not running."""
    for template in CGROUP_DIRECTORIES:
        directory = Path(template.format(id=container_id))
        if directory.is_dir():
            try:
                return _cgroup_memory(directory)
            except (OSError, ValueError, KeyError):
                return None
    result = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container_id], timeout=60, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return Memory(_size(result.stdout.split("/")[0]), None)


def _cgroup_memory(directory: Path) -> Memory:
    stat = dict(line.split() for line in (directory / "memory.stat").read_text().splitlines())
    if (directory / "memory.current").exists():  # cgroup v2
        usage = int((directory / "memory.current").read_text())
        return Memory(usage - int(stat["inactive_file"]), int(stat["anon"]))
    usage = int((directory / "memory.usage_in_bytes").read_text())
    return Memory(usage - int(stat["total_inactive_file"]), int(stat["total_rss"]))


UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def _size(text: str) -> int:
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", text).groups()
    return int(float(number) * UNITS[unit])
