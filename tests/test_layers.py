"""The layout keeps its architecture: import-linter's contracts (pyproject.toml) hold, and the core
imports, and passes its tests, with Flask and every web or JSON library unavailable."""

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

WEB_LIBRARIES = ("flask", "werkzeug", "marshmallow", "gunicorn", "prometheus_client", "orjson", "yaml", "requests")

WITHOUT_THE_WEB = f"""
import pkgutil, sys
for name in {WEB_LIBRARIES!r}:
    sys.modules[name] = None  # importing it raises ImportError, as if it were not installed
import service.core
for module in pkgutil.iter_modules(service.core.__path__, "service.core."):
    __import__(module.name)
from service.core import fastpath
assert fastpath.ACTIVE or fastpath.WHY_INACTIVE
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "--noconftest", "tests/test_engine.py"]))
"""


def test_the_import_contracts_hold():
    lint = subprocess.run(
        [Path(sys.executable).parent / "lint-imports"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 broken" in lint.stdout


def test_the_core_imports_and_passes_its_tests_without_flask():
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_WEB],
        cwd=ROOT,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},  # schemathesis's plugin needs requests
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
