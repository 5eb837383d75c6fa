"""The `valuegraph` command (valuegraph.cli.main) against the real server: what it prints and its exit
status, 0 on success, 1 on a refusal, 2 on a usage or connection error."""

import io
import json
import math
import shutil

import pytest

from tests.support import SEED_GRAPH
from tools.server import free_port
from valuegraph import cli


@pytest.fixture
def run(live_server, monkeypatch):
    """run(*argv, stdin=None) -> (exit status, stdout, stderr), the service found through VALUEGRAPH_URL."""
    monkeypatch.setenv("VALUEGRAPH_URL", live_server)

    def invoke(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stderr", err)  # where argparse writes its usage errors
        try:
            status = cli.main(list(argv), out, err)
        except SystemExit as exit:  # argparse's usage errors
            status = exit.code
        return status, out.getvalue(), err.getvalue()

    return invoke


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(SEED_GRAPH))
    return str(path)


@pytest.mark.slow
def test_expr_prints_the_value_and_the_grads(run):
    status, out, _ = run("expr", "log((a + b) * a)", "a=2", "b=3")
    assert status == 0
    assert out.splitlines() == [
        f"e = {math.log(10)!r}    # log((a + b) * a)",
        "a.grad = 0.7",
        "b.grad = 0.2",
    ]
    assert "e = 2.302585092994046" in out


@pytest.mark.slow
def test_expr_with_every_node_and_as_json(run):
    status, out, _ = run("expr", "a / b", "a=1", "b=4", "--nodes")
    assert status == 0 and "b ** -1" in out and out.splitlines()[4].split() == ["id", "expression", "data", "grad"]
    status, out, _ = run("expr", "--json", "a * 2", "a=1.5")
    assert status == 0 and json.loads(out)["grads"] == {"a": 2.0}


@pytest.mark.slow
def test_evaluate_prints_a_table(run, seed_file):
    status, out, _ = run("evaluate", seed_file)
    lines = out.splitlines()
    assert status == 0 and lines[0].split() == ["id", "data", "grad"]
    assert lines[1].split() == ["a", "2.0", "0.7"]
    assert lines[-1].split() == ["e", repr(math.log(10)), "1", "output"]


@pytest.mark.slow
def test_evaluate_from_stdin_as_json(run):
    status, out, _ = run("evaluate", "-", "--json", stdin=json.dumps(SEED_GRAPH))
    assert status == 0 and json.loads(out)["output"] == "e"


@pytest.mark.slow
def test_render_prints_a_mermaid_flowchart_or_dot(run, seed_file):
    status, out, _ = run("render", seed_file)
    assert status == 0 and out.startswith("flowchart BT\n") and '    n0 -- "local 5, back 0.5" --> n3' in out
    status, out, _ = run("render", seed_file, "--format", "dot")
    assert status == 0 and out.startswith("digraph valuegraph {")
    status, out, _ = run("render", seed_file, "--format", "json")
    assert status == 0 and json.loads(out)["output"] == "e"
    if shutil.which("dot"):
        status, out, _ = run("render", seed_file, "--format", "svg")
        assert status == 0 and out.startswith("<?xml") and out.rstrip().endswith("</svg>")


@pytest.mark.slow
def test_a_refused_graph_exits_1_with_the_problems_messages(run, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps({"nodes": [{"id": "x", "op": "value", "data": "2.0"}, {"id": "y", "op": "pow", "children": ["x"]}]})
    )
    status, out, err = run("evaluate", str(path))
    assert status == 1 and out == ""
    assert "422 The graph is not valid: 2 problems found; see errors." in err
    assert "node 'x' (index 0) field data: Not a valid number: '2.0'" in err
    assert "node 'y' (index 1) field exponent: pow requires an exponent." in err


@pytest.mark.slow
def test_a_refused_expression_exits_1_pointing_at_the_text(run):
    status, _, err = run("expr", "a.data * 2", "a=1")
    assert status == 1 and "at column 1 ('a.data'): Attribute access is not allowed." in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["expr", "a * 2", "a"], "is not NAME=VALUE"),
        (["expr", "a * 2", "a=two"], "is not a finite number"),
        (["evaluate", "/no/such/file.json"], "cannot read /no/such/file.json"),
        (["render", "graph.json", "--format", "png"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
@pytest.mark.slow
def test_usage_errors_exit_2(run, argv, words):
    status, _, err = run(*argv)
    assert status == 2 and words in err


@pytest.mark.slow
def test_a_file_that_is_not_json_exits_2(run, tmp_path):
    path = tmp_path / "graph.json"
    path.write_text("{nodes")
    status, _, err = run("evaluate", str(path))
    assert status == 2 and "is not JSON" in err


@pytest.mark.slow
def test_no_service_exits_2_and_url_overrides_the_environment(run):
    nowhere = f"http://127.0.0.1:{free_port()}"
    status, _, err = run("--url", nowhere, "--retries", "0", "expr", "a", "a=1")
    assert status == 2 and f"cannot reach the service at {nowhere}" in err
    status, _, err = run("expr", "--url", nowhere, "--retries", "0", "a", "a=1")
    assert status == 2 and nowhere in err
