"""How many CPUs this process may really use: the default worker count (WEB_CONCURRENCY).

os.cpu_count() is the host's: in a container limited to one CPU (`docker run --cpus 1`, a Kubernetes
CPU limit) on a 64-core host it would start 64 CPU-bound workers that the quota then throttles, each
holding its own share of the memory budget. The quota is the cgroup's: v2 `cpu.max`, v1
`cpu.cfs_quota_us` / `cpu.cfs_period_us`, the smallest along this process's cgroup and its ancestors.
"""

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")


def default_workers(root: Path = CGROUP_ROOT, membership: Path = MEMBERSHIP) -> int:
    """The CPU quota rounded up where one is set, never more than the cores this process may run on; at least 1."""
    cores = usable_cores()
    quota = cpu_quota(root, membership)
    return cores if quota is None else max(1, min(cores, math.ceil(quota)))


def usable_cores() -> int:
    """The cores this process may run on (its affinity: `taskset`, `docker run --cpuset-cpus`)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_quota(root: Path = CGROUP_ROOT, membership: Path = MEMBERSHIP) -> float | None:
    """The CPUs' worth of time this process's cgroups allow (1.5 for `--cpus 1.5`), or None where none is set."""
    quotas = [quota for directory in cgroup_directories(root, membership) if (quota := quota_in(directory))]
    return min(quotas, default=None)


def cgroup_directories(root: Path, membership: Path) -> list[Path]:
    """The cgroup directories that may hold this process's CPU quota: the mount points themselves (a
    container sees its own cgroup there) and, where /proc/self/cgroup names this process's cgroup, that
    cgroup and each of its ancestors, in the v2 tree and in v1's cpu tree."""
    mounts = {"": root, "cpu": root / "cpu", "cpu,cpuacct": root / "cpu,cpuacct"}
    directories = list(mounts.values())
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split(":", 2)  # hierarchy id, controllers ("" for v2), the cgroup's path
        if len(fields) != 3 or fields[1] not in mounts:
            continue
        parts = Path(fields[2]).parts[1:]
        if ".." not in parts:
            directories += [mounts[fields[1]].joinpath(*parts[:depth]) for depth in range(len(parts), 0, -1)]
    return directories


def quota_in(directory: Path) -> float | None:
    """The quota one cgroup directory sets, in CPUs, or None where it sets none."""
    try:
        quota, _, period = (directory / "cpu.max").read_text().partition(" ")
    except OSError:
        try:
            quota = (directory / "cpu.cfs_quota_us").read_text()
            period = (directory / "cpu.cfs_period_us").read_text()
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None
