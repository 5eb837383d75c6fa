"""The client is ready to publish: `python -m build` makes a wheel and an sdist of client/, with the
typing marker, the command and the README as the long description, and `twine check` passes on them."""

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

import valuegraph
from tests.support import ROOT


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The wheel and the sdist, built from a copy of client/ so that the build leaves nothing in the tree."""
    home = tmp_path_factory.mktemp("dist")
    source = home / "client"
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(home / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    version = valuegraph.__version__
    return home / "dist" / f"valuegraph-{version}-py3-none-any.whl", home / "dist" / f"valuegraph-{version}.tar.gz"


@pytest.mark.slow
def test_the_wheel_has_the_package_its_typing_marker_its_command_and_its_readme(dist):
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"valuegraph-{valuegraph.__version__}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
        entry_points = archive.read(f"{info}/entry_points.txt").decode()
    modules = {
        "__init__",
        "__main__",
        "child",
        "cli",
        "client",
        "grading",
        "graph",
        "isolation",
        "problems",
        "reports",
        "suites",
        "transport",
    }
    assert {f"valuegraph/{module}.py" for module in modules} | {"valuegraph/py.typed"} <= names
    assert (metadata["Name"], metadata["Version"]) == ("valuegraph", valuegraph.__version__)
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (ROOT / "client" / "README.md").read_text().strip()
    assert "valuegraph = valuegraph.cli:main" in entry_points


@pytest.mark.slow
def test_the_sdist_has_the_sources_and_the_readme(dist):
    _, sdist = dist
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"README.md", "pyproject.toml", "src/valuegraph/py.typed", "src/valuegraph/grading.py"} <= names


@pytest.mark.slow
def test_twine_check_passes(dist):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dist)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2
