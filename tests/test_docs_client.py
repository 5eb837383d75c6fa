"""The pictures page's picture, and the client's Python and command examples, give what their pages
print (tests/test_docs.py covers the curl examples answered in JSON, /v1/expression's among them)."""

import contextlib
import io
import json
import re
import shlex

import pytest

from tests.support import ROOT, SEED_GRAPH
from valuegraph import cli
from valuegraph.graph import serialize

PICTURES_PAGE = (ROOT / "docs" / "expressions-and-pictures.md").read_text()
CLIENT_PAGE = (ROOT / "client" / "README.md").read_text()
PICTURES = re.findall(
    r"```sh\n(curl -s 'localhost:8000(/v1/render\?format=\w+)'[^`]*?)```\nanswers[^\n]*\n```mermaid\n(.*?)```",
    PICTURES_PAGE,
    re.S,
)
GRADING_PAGE = (ROOT / "docs" / "grading.md").read_text()
PYTHON = [
    example
    for page in (CLIENT_PAGE, GRADING_PAGE)
    for example in re.findall(r"```python\n(.*?)```\n(?:prints:\n```text\n(.*?)```)?", page, re.S)
]
CONSOLE = re.findall(r"```console\n(.*?)```", CLIENT_PAGE, re.S)


def payload(command):
    return re.search(r"-d '(.*?)'", command, re.S).group(1)


def test_the_pages_have_the_examples():
    assert "curl -s localhost:8000/v1/expression" in PICTURES_PAGE and len(PICTURES) == 1
    assert len(PYTHON) >= 5 and all(printed for code, printed in PYTHON if "MLP" not in code)
    commands = [line.split()[2] for session in CONSOLE for line in session.splitlines() if line.startswith("$ ")]
    assert {"--version", "expr", "evaluate", "render", "batch", "grade"} <= set(commands)


@pytest.mark.parametrize("command, path, picture", PICTURES)
def test_the_picture_is_the_services(client, command, path, picture):
    assert json.loads(payload(command)) == SEED_GRAPH
    response = client.post(path, data=payload(command), content_type="application/json")
    assert response.status_code == 200 and response.data.decode() == picture


@pytest.mark.slow
@pytest.mark.parametrize("code, printed", PYTHON)
def test_python_examples_run_and_print_as_shown(live_server, code, printed):
    code = code.replace('"http://127.0.0.1:8000"', repr(live_server))
    before_update, loop, update = code.partition("\nfor p in model.parameters():")
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(before_update, namespace)  # the page's own code
    assert out.getvalue() == printed
    if "loss" in namespace:
        _, values = serialize(namespace["loss"])
        remote = [value.grad for value in values]
        for value in values:
            value.grad = 0
        namespace["loss"].backward()
        assert [float(grad).hex() for grad in remote] == [float(value.grad).hex() for value in values]
        exec(loop + update, namespace)


#: The files the console examples name, as the page describes them.
NOT_A_CHILD = {"nodes": [{"id": "x", "data": 3.0}, {"id": "y", "op": "log", "children": ["z"]}]}
FILES = {
    "example.json": json.dumps(SEED_GRAPH),
    "graphs.ndjson": json.dumps(SEED_GRAPH) + "\n" + json.dumps(NOT_A_CHILD) + "\n",
    "student.py": "from micrograd.engine import Value\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("session", CONSOLE)
def test_console_examples_print_as_shown(live_server, monkeypatch, tmp_path, session):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VALUEGRAPH_URL", live_server)
    for name, content in FILES.items():
        (tmp_path / name).write_text(content)
    for command in re.split(r"^\$ ", session, flags=re.M)[1:]:
        line, _, expected = command.partition("\n")
        argv = shlex.split(line)
        assert argv[0] == "valuegraph"
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)  # argparse prints --version there
        monkeypatch.setattr("sys.stderr", out)
        try:
            status = cli.main(argv[1:], out, out)
        except SystemExit as exit:
            status = exit.code
        assert out.getvalue() == expected, line
        failed = "refused" in expected or re.search(r"^(FAILED|ERROR|NOT GRADED): ", expected, re.M)
        assert status == (1 if failed else 0), line


#: The `valuegraph` command lines of the top README, as printed there.
README_COMMANDS = [
    line
    for block in re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    for line in block.splitlines()
    if line.startswith("valuegraph ")
]
#: The command lines the console sessions above run (and check the output of).
CONSOLE_COMMANDS = [line[2:] for session in CONSOLE for line in session.splitlines() if line.startswith("$ ")]


#: The README's lines no console session runs: run here.
RUN_HERE = [line for line in README_COMMANDS if line not in CONSOLE_COMMANDS]


def test_each_of_the_readmes_commands_is_run_by_a_test():
    """`valuegraph expr` is a console session's line (test_console_examples_print_as_shown checks what it
    prints); `valuegraph grade ... --gradescope` writes a file, and runs here."""
    assert [shlex.split(line)[1] for line in README_COMMANDS] == ["expr", "grade"]
    assert README_COMMANDS[0] in CONSOLE_COMMANDS
    assert [README_COMMANDS[1]] == RUN_HERE


@pytest.mark.slow
@pytest.mark.parametrize("line", RUN_HERE)
def test_the_readmes_grade_command_runs_as_printed(live_server, monkeypatch, tmp_path, line):
    """With the reference class as student.py: every graph passes, and the Gradescope file has every point."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VALUEGRAPH_URL", live_server)
    (tmp_path / "student.py").write_text((ROOT / "tools" / "reference_value.py").read_text())
    argv = shlex.split(line)
    out, err = io.StringIO(), io.StringIO()
    status = cli.main(argv[1:], out, err)
    assert (status, err.getvalue()) == (0, ""), out.getvalue()
    graphs = int(argv[argv.index("--suite") + 1])
    assert out.getvalue().endswith(f"{graphs} of {graphs} graphs passed.\n")
    results = json.loads((tmp_path / argv[argv.index("--gradescope") + 1]).read_text())
    assert results["score"] == graphs and len(results["tests"]) == graphs
    assert {test["status"] for test in results["tests"]} == {"passed"}
    assert any("a number - x (__rsub__)" in test["name"] for test in results["tests"])
