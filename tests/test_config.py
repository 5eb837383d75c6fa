"""Settings: one table (service/runtime/config.py) that docs/configuration.md documents row for row; a bad value is a
one-line message naming the variable."""

import re

import pytest

from service.runtime.config import SERVER_SETTINGS, SETTINGS, ConfigError, from_environment
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
