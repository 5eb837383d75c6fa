"""Settings: one table (service/runtime/config.py) that docs/configuration.md documents row for row; a bad value is a
one-line message naming the variable."""

import re

import pytest

from service.runtime import cpus
from service.runtime.config import (
    SERVER_SETTINGS,
    SETTINGS,
    WEB_CONCURRENCY,
    ConfigError,
    from_environment,
    server_from_environment,
)
from service.runtime.memory import MemoryBudget, default_memory_budget
from tests.support import ROOT


def test_the_docs_document_every_setting_and_no_other():
    page = (ROOT / "docs" / "configuration.md").read_text()
    configuration = page.split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", "".join(re.findall(r"^\| [^|]*\|", configuration, re.MULTILINE))))
    assert documented - {"PROMETHEUS_MULTIPROC_DIR"} == {setting.variable for setting in SETTINGS + SERVER_SETTINGS}


@pytest.mark.parametrize(
    "variable, raw, words",
    [
        ("VALUEGRAPH_MAX_NODES", "many", "VALUEGRAPH_MAX_NODES must be a whole number, not 'many'"),
        ("VALUEGRAPH_MAX_BODY_BYTES", "-1", "VALUEGRAPH_MAX_BODY_BYTES must be positive, not -1"),
        ("VALUEGRAPH_DEADLINE_SECONDS", "inf", "VALUEGRAPH_DEADLINE_SECONDS must be finite, not 'inf'"),
        ("VALUEGRAPH_DEADLINE_SECONDS", "0", "VALUEGRAPH_DEADLINE_SECONDS must be positive, not '0'"),
        ("VALUEGRAPH_ADMISSION_WAIT_SECONDS", "-2", "VALUEGRAPH_ADMISSION_WAIT_SECONDS must be zero or more"),
        ("WEB_CONCURRENCY", "two", "WEB_CONCURRENCY must be a whole number, not 'two'"),
    ],
)
def test_a_bad_value_stops_with_a_message_naming_the_variable(variable, raw, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        from_environment({variable: raw})


def test_empty_means_the_default_and_zero_wait_is_allowed():
    defaults = from_environment({})
    assert from_environment({"VALUEGRAPH_MAX_NODES": "", "VALUEGRAPH_ADMISSION_WAIT_SECONDS": "0"}) == {
        **defaults,
        "ADMISSION_WAIT_SECONDS": 0.0,
    }


def test_the_default_memory_budget_is_a_share_of_memory_per_worker():
    one, four = default_memory_budget(1), default_memory_budget(4)
    assert one > four > 0
    assert from_environment({"WEB_CONCURRENCY": "4"})["MEMORY_BUDGET_BYTES"] == four
    assert from_environment({"VALUEGRAPH_MEMORY_BUDGET_BYTES": "12345"})["MEMORY_BUDGET_BYTES"] == 12345


def test_the_budget_is_given_back_when_a_request_fails():
    budget = MemoryBudget(10**6, wait_seconds=0)
    with pytest.raises(RuntimeError), budget.admit(1000):
        assert budget.admitted > 0
        raise RuntimeError
    assert budget.admitted == 0


# The default worker count: the cgroup's CPU quota, with fake cgroup trees


def cgroup_tree(tmp_path, files, membership=""):
    """A fake /sys/fs/cgroup with `files` ({relative path: text}) and a fake /proc/self/cgroup."""
    for name, text in files.items():
        (tmp_path / "cgroup" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "cgroup" / name).write_text(text)
    (tmp_path / "membership").write_text(membership)
    return tmp_path / "cgroup", tmp_path / "membership"


@pytest.fixture
def cores(monkeypatch):
    """Pretend this process may run on 8 cores."""
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(8)))
    return 8


@pytest.mark.parametrize(
    "files, membership, workers",
    [
        ({"cpu.max": "100000 100000\n"}, "0::/\n", 1),  # cgroup v2, docker run --cpus 1
        ({"cpu.max": "150000 100000\n"}, "0::/\n", 2),  # --cpus 1.5: rounded up
        ({"cpu.max": "10000 100000\n"}, "0::/\n", 1),  # a tenth of a CPU: still one worker
        ({"cpu.max": "max 100000\n"}, "0::/\n", 8),  # no quota: the cores
        ({"cpu.max": "1600000 100000\n"}, "0::/\n", 8),  # more quota than cores: the cores
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", 2),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "", 8),  # v1, no quota
        (  # v2 outside a container: the process's own cgroup and its ancestors, the smallest quota
            {
                "kubepods/cpu.max": "300000 100000",
                "kubepods/pod1/cpu.max": "max 100000",
                "kubepods/pod1/c/cpu.max": "max",
            },
            "0::/kubepods/pod1/c\n",
            3,
        ),
        (  # v1 with the process's cgroup named in /proc/self/cgroup
            {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"},
            "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n",
            1,
        ),
        ({"cpu.max": "garbage"}, "no colons here\n0::/../escape\n", 8),  # unreadable: the cores
        ({}, "", 8),  # no cgroup files at all
    ],
)
def test_the_default_worker_count_follows_the_cgroup_cpu_quota(tmp_path, cores, files, membership, workers):
    root, proc = cgroup_tree(tmp_path, files, membership)
    assert cpus.default_workers(root, proc) == workers


def test_the_default_worker_count_follows_the_cpu_affinity(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: {3})
    root, proc = cgroup_tree(tmp_path, {"cpu.max": "400000 100000"})
    assert cpus.default_workers(root, proc) == 1


def test_web_concurrency_defaults_to_the_usable_cpus():
    assert WEB_CONCURRENCY.default == cpus.default_workers()
    assert server_from_environment({})["workers"] == WEB_CONCURRENCY.default
    assert server_from_environment({"WEB_CONCURRENCY": "3"})["workers"] == 3
