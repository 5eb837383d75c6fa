"""`pip install ./client` in a fresh virtual environment gives a working client and command: the
issue's done-when, run literally against the real server."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT, SEED_GRAPH
from valuegraph import __version__ as VERSION

MICROGRAD = next(
    line.strip() for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("micrograd==")
)


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    """A virtual environment with only the client (and micrograd) installed, from a copy of client/
    so that the build leaves nothing in the work tree."""
    home = tmp_path_factory.mktemp("fresh")
    source = home / "client"
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = home / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    for target in (str(source), MICROGRAD):
        result = subprocess.run([*pip, target], capture_output=True, text=True, timeout=600, env=environment)
        assert result.returncode == 0, f"pip install {target} failed:\n{result.stdout}\n{result.stderr}"
    return venv, environment


@pytest.mark.slow
def test_micrograd_and_seed_graphs_through_the_installed_client(fresh_venv, live_server):
    venv, environment = fresh_venv
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            str(ROOT / "tests" / "fresh_client_check.py"),
            live_server,
            str(ROOT / "tools" / "reference_value.py"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=venv,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every grad bit for bit" in result.stdout


@pytest.mark.slow
def test_the_installed_command(fresh_venv, live_server, tmp_path):
    venv, environment = fresh_venv
    environment = {**environment, "VALUEGRAPH_URL": live_server}

    def valuegraph(*argv):
        return subprocess.run(
            [str(venv / "bin" / "valuegraph"), *argv],
            capture_output=True,
            text=True,
            timeout=120,
            env=environment,
            cwd=tmp_path,
        )

    expr = valuegraph("expr", "log((a + b) * a)", "a=2", "b=3")
    assert expr.returncode == 0, expr.stderr
    assert expr.stdout.splitlines() == ["e = 2.302585092994046    # log((a + b) * a)", "a.grad = 0.7", "b.grad = 0.2"]

    (tmp_path / "seed.json").write_text(json.dumps(SEED_GRAPH))
    render = valuegraph("render", "seed.json")
    assert render.returncode == 0 and render.stdout.startswith("flowchart BT\n")
    assert (
        '    n4["e = log(d)<br/>data 2.303, grad 1"]:::op' in render.stdout and "    class n4 output" in render.stdout
    )

    (tmp_path / "bad.json").write_text(json.dumps({"nodes": [{"id": "x", "op": "log", "children": ["nowhere"]}]}))
    refused = valuegraph("evaluate", "bad.json")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "422 The graph is not valid: A child names no node." in refused.stderr
    assert "node 'x' (index 0) field children[0]: No node has the id 'nowhere'." in refused.stderr

    version = valuegraph("--version")
    assert (version.returncode, version.stdout) == (0, f"valuegraph {VERSION}\n")
    assert list(venv.glob("lib/python*/site-packages/valuegraph/py.typed"))
    shutil.copy(ROOT / "tools" / "reference_value.py", tmp_path / "student.py")
    grade = valuegraph("grade", "student.py:Value", "--suite", "8", "--junit", "junit.xml")
    assert grade.returncode == 0, grade.stdout + grade.stderr
    assert grade.stdout.endswith("\n8 of 8 graphs passed.\n") and (tmp_path / "junit.xml").exists()

    source = (ROOT / "tools" / "reference_value.py").read_text()
    exits = "        topo = build_topo(self)\n", "        print('done here')\n        raise SystemExit(0)\n"
    (tmp_path / "leaves.py").write_text(source.replace(*exits))
    leaves = valuegraph("grade", "leaves.py", "--suite", "2", "--gradescope", "results.json")
    assert leaves.returncode == 1 and leaves.stderr == "", leaves.stdout + leaves.stderr
    assert "ERROR: add (graph 1)\n  backward() raised SystemExit: 0\n  It printed:\n  | done here\n" in leaves.stdout
    assert json.loads((tmp_path / "results.json").read_text())["score"] == 0
