"""The `valuegraph` command (valuegraph.cli.main) against the real server: what it prints and its exit
status, 0 on success, 1 on a refusal (or, for grade and batch, a graph that did not pass), 2 on a usage
error or a service that cannot be reached or read."""

import inspect
import io
import json
import math
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

import valuegraph
from tests.support import SEED_GRAPH
from tests.test_client_retries import head_too_long, misbehaving_server
from tests.test_grading_broken import ASSIGNMENT
from tools import reference_value as seed_value
from tools.server import free_port
from valuegraph import cli
from valuegraph.suites import KINDS


@pytest.fixture
def offline(monkeypatch):
    """offline(*argv, stdin=None) -> (exit status, stdout, stderr)."""

    def invoke(*argv, stdin=None):
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr("sys.stdout", out)  # where argparse writes --version
        monkeypatch.setattr("sys.stderr", err)  # and its usage errors
        try:
            status = cli.main(list(argv), out, err)
        except SystemExit as exit:  # argparse's usage errors and --version
            status = exit.code
        return status, out.getvalue(), err.getvalue()

    return invoke


@pytest.fixture
def run(live_server, monkeypatch, offline):
    """run(*argv, stdin=None) -> (exit status, stdout, stderr), the service found through VALUEGRAPH_URL."""
    monkeypatch.setenv("VALUEGRAPH_URL", live_server)
    return offline


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


def test_version(offline):
    assert offline("--version") == (0, f"valuegraph {valuegraph.__version__}\n", "")


@pytest.mark.parametrize("command", [["expr", "a", "a=1"], ["batch", "-"], ["grade", "STUDENT", "--suite", "2"]])
def test_a_service_that_cannot_be_reached_is_one_line_naming_the_url_and_why(offline, command, tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    command = [str(student_file(tmp_path)) if word == "STUDENT" else word for word in command]
    status, _, err = offline("--url", nowhere, "--retries", "1", *command, stdin=json.dumps([SEED_GRAPH]))
    assert (status, err) == (2, f"valuegraph: cannot reach the service at {nowhere}: connection refused\n")


def test_an_answer_that_cannot_be_read_is_one_line_and_is_not_asked_for_again(offline):
    with misbehaving_server(head_too_long) as (url, accepted):
        status, _, err = offline("--url", url, "evaluate", "-", stdin=json.dumps(SEED_GRAPH))
    assert status == 2 and len(accepted) == 1
    assert err == (
        f"valuegraph: cannot read the answer of the service at {url}: its answer's head cannot be read "
        "(got more than 65536 bytes when reading header line)\n"
    )


@pytest.mark.parametrize(
    "argv, words",
    [
        (["grade", "x.py", "--graphs", "g.json", "--suite", "3"], "not allowed with argument"),
        (["grade", "x.py", "--suite", "0"], "'0' is not a whole number >= 1"),
        (["grade", "x.py", "--mode", "everything"], "invalid choice"),
        (["grade", "x.py", "--rtol", "-1"], "'-1' is not a finite number >= 0"),
        (["grade", "x.py", "--graphs", "/no/such.json"], "cannot read /no/such.json"),
        (["batch", "/no/such.ndjson"], "cannot read /no/such.ndjson"),
    ],
)
def test_grade_and_batch_usage_errors_exit_2(offline, argv, words):
    status, _, err = offline("--url", f"http://127.0.0.1:{free_port()}", *argv)
    assert status == 2 and words in err


def test_suite_prints_the_suite_as_json(offline):
    status, out, _ = offline("suite", "12", "--variant", "3")
    assert status == 0 and json.loads(out) == valuegraph.suite(12, variant=3)
    status, out, _ = offline("suite")
    assert status == 0 and len(json.loads(out)) == len(KINDS)


# valuegraph grade: a student's class file, end to end.

GRADESCOPE_KEYS = {
    "score",
    "execution_time",
    "output",
    "output_format",
    "test_output_format",
    "test_name_format",
    "visibility",
    "stdout_visibility",
    "extra_data",
    "tests",
    "leaderboard",
}


def student_file(tmp_path, mutation=None, name="student.py"):
    """The reference class's module as a student's file, with a mutation (old, new) if given."""
    source = inspect.getsource(seed_value)
    if mutation:
        assert source.count(mutation[0]) == 1
        source = source.replace(*mutation)
    path = tmp_path / name
    path.write_text(source)
    return path


def read_gradescope(path):
    """results.json as Gradescope documents it: its keys and their types, checked."""
    results = json.loads(path.read_text())
    assert set(results) <= GRADESCOPE_KEYS, set(results) - GRADESCOPE_KEYS
    assert isinstance(results["score"], float) and isinstance(results["output"], str)
    assert isinstance(results["execution_time"], int) and isinstance(results["extra_data"], dict)
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output"}
        assert isinstance(test["name"], str) and isinstance(test["output"], str)
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert test["status"] in ("passed", "failed")
        assert test["score"] == (test["max_score"] if test["status"] == "passed" else 0.0)
    assert results["score"] == pytest.approx(sum(test["score"] for test in results["tests"]))
    return results


def read_junit(path):
    """The JUnit XML: testsuites > testsuite > testcase, each with a failure or error when it did not pass,
    then what the class printed, if anything."""
    root = ElementTree.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.tag == "testsuite"
    cases = list(suite)
    assert all(case.tag == "testcase" and case.get("name") and case.get("classname") for case in cases)
    failures = [case for case in cases if case.find("failure") is not None]
    errors = [case for case in cases if case.find("error") is not None]
    for counts in (root, suite):
        assert int(counts.get("tests")) == len(cases)
        assert (int(counts.get("failures")), int(counts.get("errors"))) == (len(failures), len(errors))
    shapes = ([], ["failure"], ["error"], ["system-out"], ["failure", "system-out"], ["error", "system-out"])
    assert all([element.tag for element in case] in shapes for case in cases)  # JUnit's order
    for case in failures + errors:
        problem = case[0]
        assert problem.get("message") and problem.get("type") and problem.text
    return suite, cases


@pytest.mark.slow
def test_grade_a_correct_class_file(run, tmp_path):
    path = student_file(tmp_path)
    gradescope, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    status, out, err = run("grade", f"{path}:Value", "--gradescope", str(gradescope), "--junit", str(junit))
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"valuegraph grade {path}:Value",
        f"Graded: data, grad and local_grads of every node, on {len(KINDS)} graphs.",
        "",
        f"{len(KINDS)} of {len(KINDS)} graphs passed.",
    ]
    results = read_gradescope(gradescope)
    assert results["score"] == len(KINDS) and [test["status"] for test in results["tests"]] == ["passed"] * len(KINDS)
    assert [test["name"] for test in results["tests"]] == list(valuegraph.suite(len(KINDS)))
    suite, cases = read_junit(junit)
    assert len(cases) == len(KINDS) and suite.get("failures") == "0" and cases[0].get("classname") == "student.Value"


@pytest.mark.slow
def test_grade_a_broken_class_file_names_each_failure(run, tmp_path):
    path = student_file(tmp_path, ASSIGNMENT)
    gradescope, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    status, out, _ = run(
        "grade",
        f"{path}:Value",
        "--suite",
        "30",
        "--gradescope",
        str(gradescope),
        "--junit",
        str(junit),
        "--max-score",
        "60",
    )
    assert status == 1
    report = out.split("\n\n")
    failed = [block for block in report if block.startswith("FAILED: ")]
    assert failed and "FAILED: x + x (graph 17)\n  x1 (a leaf): grad should be" in out
    assert all("+=" in block for block in failed if block.startswith("FAILED: x + x"))
    assert report[-1] == f"{30 - len(failed)} of 30 graphs passed; {len(failed)} failed.\n"
    results = read_gradescope(gradescope)
    assert sum(test["max_score"] for test in results["tests"]) == pytest.approx(60)
    failing = [test for test in results["tests"] if test["status"] == "failed"]
    assert [test["name"] for test in failing] == [block.split("\n")[0].removeprefix("FAILED: ") for block in failed]
    assert all(test["output"].startswith(block.split("\n")[1].strip()) for test, block in zip(failing, failed))
    suite, cases = read_junit(junit)
    assert int(suite.get("failures")) == len(failed) and suite.get("errors") == "0"
    kinds = {case.find("failure").get("type") for case in cases if case.find("failure") is not None}
    assert kinds == {"accumulation"}


@pytest.mark.slow
def test_grade_a_class_that_raises_or_cannot_be_imported(run, tmp_path):
    no_exp = student_file(tmp_path, ("    def exp(self):", "    def exponential(self):"), "no_exp.py")
    status, out, _ = run("grade", f"{no_exp}:Value", "--suite", str(len(KINDS)))
    assert status == 1
    assert (
        "ERROR: exp (graph 7)\n  Building node 'n1' (exp(x1)) raised AttributeError: 'Value' object has no attribute 'exp'"
        in out
    )

    broken = tmp_path / "broken.py"
    broken.write_text("class Value(\n")
    gradescope, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    status, out, _ = run(
        "grade", f"{broken}:Value", "--suite", "3", "--gradescope", str(gradescope), "--junit", str(junit)
    )
    assert status == 1 and f"Importing {broken} raised SyntaxError" in out
    assert out.rstrip().endswith("0 of 3 graphs passed; 3 not graded.")
    assert read_gradescope(gradescope)["score"] == 0
    suite, _ = read_junit(junit)
    assert suite.get("errors") == "3"


@pytest.mark.slow
@pytest.mark.parametrize(
    "spec, words",
    [
        ("STUDENT:Valeu", "STUDENT has no Valeu."),
        ("no_such_student.py:Value", "There is no file no_such_student.py."),
        ("no_such_package.autograd", "There is no module no_such_package.autograd."),
    ],
)
def test_a_module_or_class_that_does_not_exist_is_a_usage_error_and_the_reports_are_still_written(
    run, tmp_path, monkeypatch, spec, words
):
    """The grader's command names the class: a wrong name is exit status 2, one line, and no student's fault
    to grade; the reports say why every graph was not graded."""
    monkeypatch.chdir(tmp_path)
    student = str(student_file(tmp_path))
    spec, words = spec.replace("STUDENT", student), words.replace("STUDENT", student)
    gradescope, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    status, out, err = run("grade", spec, "--suite", "3", "--gradescope", str(gradescope), "--junit", str(junit))
    assert (status, out, err) == (2, "", f"valuegraph: {words}\n")
    results = read_gradescope(gradescope)
    assert results["score"] == 0 and all(test["output"] == words for test in results["tests"])
    suite, _ = read_junit(junit)
    assert suite.get("errors") == "3"


@pytest.mark.slow
def test_a_dotted_module_whose_own_import_fails_is_the_students_error(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "needs_numpy_two.py").write_text("import numpy_two\n")
    status, out, err = run("grade", "needs_numpy_two", "--suite", "2")
    assert status == 1 and err == ""
    assert "Importing needs_numpy_two raised ModuleNotFoundError: No module named 'numpy_two'" in out


@pytest.mark.slow
def test_grade_a_dotted_module_on_graphs_from_a_file(run, tmp_path, monkeypatch):
    package = tmp_path / "coursework"
    package.mkdir()
    (package / "__init__.py").write_text("")
    student_file(package, name="autograd.py")
    monkeypatch.chdir(tmp_path)
    graphs = list(valuegraph.suite(5, variant=2).values())
    (tmp_path / "graphs.ndjson").write_text("".join(json.dumps(graph) + "\n" for graph in graphs))
    (tmp_path / "graphs.json").write_text(json.dumps(graphs))
    for file in ("graphs.ndjson", "graphs.json"):
        status, out, _ = run("grade", "coursework.autograd", "--graphs", file, "--mode", "grads", "--json")
        report = json.loads(out)
        assert status == 0 and report["passed"] and report["fields"] == ["grad"]
        assert [graph["name"] for graph in report["results"]] == [f"graph {k}" for k in range(1, 6)]


def documented_json_names():
    """The names the client's README gives for `to_dict()`: (the report's, each result's)."""
    text = " ".join(cli_readme_path().read_text().split())
    paragraph = text.split("`to_dict()` is the same as JSON, under the same names", 1)[1].split("###", 1)[0]
    names = re.compile(r"`(\w+)`")
    report_part = paragraph.split("the report's", 1)[1].split("(", 1)[0]
    return names.findall(report_part), names.findall(paragraph.split("each result's", 1)[1])


def cli_readme_path():
    return Path(__file__).resolve().parents[1] / "client" / "README.md"


@pytest.mark.slow
def test_grade_json_has_every_name_the_readme_gives_each_result_its_message(run, tmp_path):
    report_names, result_names = documented_json_names()
    assert report_names == ["passed", "counts", "mode", "fields", "results"]
    assert "message" in result_names and "root_causes" in result_names and len(result_names) == 10
    student = student_file(tmp_path, ASSIGNMENT)
    status, out, _ = run("grade", f"{student}:Value", "--suite", "22", "--json")
    report = json.loads(out)
    assert status == 1 and set(report) == set(report_names)
    failed = [result for result in report["results"] if not result["passed"]]
    assert failed and all(set(result) == set(result_names) for result in report["results"])
    assert all(result["message"] == result["root_causes"][0]["message"] for result in failed)


# valuegraph batch


@pytest.mark.slow
def test_batch_prints_each_result_from_an_array_or_ndjson(run, tmp_path):
    bad = {"nodes": [{"id": "x", "data": 3.0}, {"id": "y", "op": "log", "children": ["z"]}]}
    (tmp_path / "graphs.ndjson").write_text(json.dumps(SEED_GRAPH) + "\n\n" + json.dumps(bad) + "\n")
    status, out, _ = run("batch", str(tmp_path / "graphs.ndjson"))
    assert status == 1
    first, second = out.split("\n\n")
    assert first.splitlines()[0] == "graph 1: output e" and first.splitlines()[1].split() == ["id", "data", "grad"]
    assert second == (
        "graph 2: refused\n422 The graph is not valid: A child names no node.\n"
        "  - node 'y' (index 1) field children[0]: No node has the id 'z'.\n"
    )
    status, out, _ = run("batch", "-", "--json", "--batch-size", "1", stdin=json.dumps([SEED_GRAPH] * 3))
    assert status == 0 and [result["status"] for result in json.loads(out)["results"]] == [200] * 3
