"""Grading in a child process (valuegraph.isolation, `valuegraph grade`) against the real server, with a
student's file per hostile case: loops in backward and in an operator, sys.exit, os._exit, print spam,
a module that patches valuegraph, a huge allocation, exceptions, a forged answer. Each graph the code
fails on is that graph's error, with the reason; the other graphs are graded in a new child; the
reports are always written; and what the student's code prints stays out of the command's own output."""

import inspect
import json
import sys

import pytest

import valuegraph
from tests import test_cli
from tests.test_cli import read_gradescope, read_junit, student_file
from tests.test_client_grading import WITH_A_NUMBER_MISTAKES, kind_of
from tests.test_grading_broken import broken_copy
from tools import reference_value
from valuegraph.grading import build
from valuegraph.isolation import OUTPUT_LIMIT

offline, run = test_cli.offline, test_cli.run  # the command's fixtures

SUITE = valuegraph.suite()

IMPORTS = "import math\n"
LOG = "    def log(self):\n"
EXP = "    def exp(self):\n"
RELU = "    def relu(self):\n"
BACKWARD = "        topo = build_topo(self)\n"


def hostile(tmp_path, *mutations, name="student.py"):
    """The reference class's module as a student's file, with each mutation (old, new) made once."""
    source = inspect.getsource(reference_value)
    for old, new in mutations:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    path = tmp_path / name
    path.write_text(source)
    return path


def on_call(number, code):
    """Mutations that run `code` in the child's `number`-th backward (the child's graphs come in order)."""
    return (IMPORTS, IMPORTS + "CALLS = []\n"), (
        BACKWARD,
        f"        CALLS.append(1)\n        if len(CALLS) == {number}:\n{code}" + BACKWARD,
    )


def with_ops(*names):
    """The suite's graphs that have a node of one of these ops."""
    return {name for name, graph in SUITE.items() if any(node.get("op") in names for node in graph["nodes"])}


def hidden_values(graph):
    """How many Values the reference class makes for `graph` (its hidden ones included): what its backward sorts."""
    values, output = build(reference_value.Value, graph)
    return len(reference_value.build_topo(values[output]))


def grade(run, tmp_path, student, *options):
    """`valuegraph grade STUDENT --json` with both reports: (exit status, {name: graph's result}, stderr)."""
    gradescope, junit = tmp_path / "results.json", tmp_path / "junit.xml"
    status, out, err = run(
        "grade", f"{student}:Value", "--json", "--gradescope", str(gradescope), "--junit", str(junit), *options
    )
    report = json.loads(out)  # what the student printed is not in it
    results = {result["name"]: result for result in report["results"]}
    scores = read_gradescope(gradescope)
    assert [test["status"] == "passed" for test in scores["tests"]] == [result["passed"] for result in results.values()]
    _, cases = read_junit(junit)
    assert [case.get("name") for case in cases] == list(results)
    for case, result in zip(cases, results.values()):
        error = case.find("error")
        assert (error is not None) == (result["error"] is not None)
        if error is not None:
            assert (error.get("type"), error.get("message")) == (result["error_kind"], result["error"].splitlines()[0])
    return status, results, err


def failing(results):
    return {name: result for name, result in results.items() if not result["passed"]}


@pytest.mark.slow
def test_a_correct_class_passes_as_in_process(run, live_server, tmp_path):
    student = student_file(tmp_path)
    status, results, err = grade(run, tmp_path, student)
    assert (status, err, failing(results)) == (0, "", {})
    with valuegraph.Client(live_server) as client:
        in_process = client.grade_class(reference_value.Value, SUITE)
        isolated = client.grade_isolated(f"{student}:Value", SUITE)
    assert [result.to_dict() for result in isolated.results] == [result.to_dict() for result in in_process.results]
    assert isolated.fields == in_process.fields == ("data", "grad", "local_grads")
    assert "student" not in sys.modules  # the student's module was imported in the child only


@pytest.mark.slow
def test_an_infinite_loop_in_backward_times_out_that_graph_only(run, tmp_path):
    """Every graph whose backward sorts more than 250 Values loops; the others are graded by a new child."""
    student = student_file(tmp_path, (BACKWARD, BACKWARD + "        while len(topo) > 250:\n            pass\n"))
    status, results, _ = grade(run, tmp_path, student, "--timeout-per-graph", "1")
    looping = {name for name, graph in SUITE.items() if hidden_values(graph) > 250}
    assert status == 1 and looping and set(failing(results)) == looping
    for name in looping:
        assert results[name]["error_kind"] == "timed-out"
        assert results[name]["error"] == (
            "The class did not finish this graph within 1 s (the time allowed for one graph); it was stopped."
        )


@pytest.mark.slow
def test_an_infinite_loop_in_an_operator_times_out_the_graphs_that_use_it(run, tmp_path):
    student = student_file(tmp_path, (LOG, LOG + "        while True:\n            pass\n"))
    status, results, _ = grade(run, tmp_path, student, "--timeout-per-graph", "1")
    assert status == 1 and set(failing(results)) == with_ops("log")
    assert {result["error_kind"] for result in failing(results).values()} == {"timed-out"}


@pytest.mark.slow
def test_the_time_for_all_graphs_runs_out(live_server, tmp_path):
    student = student_file(
        tmp_path, ("    def __add__(self, other):\n", "    def __add__(self, other):\n        while 1: pass\n")
    )
    graphs = {name: SUITE[name] for name in list(SUITE)[:4]}  # add, mul, sub, div: add's and sub's loop
    with valuegraph.Client(live_server) as client:
        report = client.grade_isolated(f"{student}:Value", graphs, timeout_per_graph=1, timeout_total=1.5)
    kinds = [result.error_kind for result in report.results]
    assert kinds[0] == "timed-out" and kinds[-1] == "not-run" and not report.passed, kinds
    assert report.results[-1].error == "Not run: the 1.5 s allowed for all of the class's graphs ran out before it."


@pytest.mark.slow
@pytest.mark.parametrize("code", ["0", "3", "None"])
def test_sys_exit_in_backward_is_that_graphs_error_and_the_command_still_reports(run, tmp_path, code):
    student = student_file(tmp_path, (BACKWARD, f"        import sys\n        sys.exit({code})\n"))
    status, results, err = grade(run, tmp_path, student, "--suite", "3")
    assert status == 1 and err == ""
    words = "backward() raised SystemExit" + (f": {code}" if code != "None" else "")
    assert [(result["error_kind"], result["error"]) for result in results.values()] == [("student-error", words)] * 3


@pytest.mark.slow
def test_os_exit_in_an_operator_is_that_graphs_crash_and_the_others_are_graded(run, tmp_path):
    student = student_file(
        tmp_path, (EXP, EXP + "        print('leaving now')\n        import os\n        os._exit(3)\n")
    )
    status, results, _ = grade(run, tmp_path, student)
    assert status == 1 and set(failing(results)) == with_ops("exp")
    for result in failing(results).values():
        assert result["error_kind"] == "crashed" and result["output"] == "leaving now\n"
        assert result["error"] == (
            "The process running the class exited with status 3 while it built or differentiated this graph."
        )


@pytest.mark.slow
def test_print_spam_stays_out_of_the_commands_output_and_each_graph_keeps_the_start_of_its_own(run, tmp_path):
    spam = (
        "        import os, sys\n"
        "        print(f'backward of {len(topo)} values')\n"
        "        print('x' * 100_000, file=sys.stderr)\n"
        "        os.write(1, b'y' * 100_000)\n"
    )
    student = student_file(tmp_path, (BACKWARD, BACKWARD + spam))
    status, results, err = grade(run, tmp_path, student, "--suite", "5")
    assert (status, err, failing(results)) == (0, "", {})
    for name, result in results.items():
        first_line = f"backward of {hidden_values(SUITE[name])} values\n"
        head, _, dropped = result["output"].rpartition("\n[... ")
        assert head.startswith(first_line + "xxx") and len(head.encode()) == OUTPUT_LIMIT
        assert dropped == f"{len(first_line) + 200_001 - OUTPUT_LIMIT} more bytes]"


@pytest.mark.slow
def test_print_in_a_failing_graph_is_shown_to_the_student(run, tmp_path):
    student = student_file(
        tmp_path, (RELU, RELU + "        print('relu of', self.data)\n        raise ValueError('no')\n")
    )
    status, out, _ = run("grade", f"{student}:Value", "--suite", "15")
    leaf = SUITE["relu of a positive (graph 14)"]["nodes"][0]
    assert status == 1 and leaf["id"] == "x1"
    assert (
        "ERROR: relu of a positive (graph 14)\n  Building node 'n1' (relu(x1)) raised ValueError: no\n"
        f"  It printed:\n  | relu of {leaf['data']!r}\n"
    ) in out


@pytest.mark.slow
def test_a_module_that_patches_valuegraph_is_graded_as_what_it_computes(run, tmp_path):
    """The patches land in the child, which grades nothing: every graph fails on the class's zeros."""
    cheat = tmp_path / "cheat.py"
    cheat.write_text(
        "import valuegraph, valuegraph.grading, valuegraph.isolation\n"
        "PASSED = {'output': None, 'passed': True, 'score': {'checked': 1, 'matched': 1}, 'root_causes': []}\n"
        "valuegraph.Client.grade_batch = lambda self, bodies: {'results': [\n"
        "    {'status': 200, 'grade': PASSED} for _ in bodies]}\n"
        "valuegraph.grading.graded = lambda *a, **k: None\n"
        "valuegraph.isolation._well_formed = lambda *a: True\n"
        "class Value:\n"
        "    def __init__(self, data, children=(), local_grads=()):\n"
        "        self.data, self.grad = data, 0\n"
        "    def _zero(self, *others):\n"
        "        return Value(0.0)\n"
        "    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __pow__ = _zero\n"
        "    __neg__ = log = exp = relu = _zero\n"
        "    def backward(self):\n"
        "        pass\n"
    )
    status, results, _ = grade(run, tmp_path, cheat, "--suite", "5")
    assert status == 1 and len(failing(results)) == 5
    assert all(result["root_causes"] and result["error"] is None for result in results.values())


@pytest.mark.slow
def test_a_huge_allocation_is_a_memory_error_within_the_limit_and_a_big_one_within_reason_passes(run, tmp_path):
    huge = student_file(tmp_path, (BACKWARD, BACKWARD + "        hoard = bytearray(2**30)\n"), "huge.py")
    status, results, _ = grade(run, tmp_path, huge, "--suite", "3", "--memory-limit", "512")
    assert status == 1
    assert [result["error"] for result in results.values()] == ["backward() raised MemoryError"] * 3

    lift = "        import resource\n        resource.setrlimit(resource.RLIMIT_AS, (2**40, 2**40))\n"
    lifts = student_file(tmp_path, (BACKWARD, lift + BACKWARD), "lifts.py")
    status, results, _ = grade(run, tmp_path, lifts, "--suite", "1", "--memory-limit", "512")
    assert status == 1 and results["add (graph 1)"]["error"] == (
        "backward() raised ValueError: not allowed to raise maximum limit"
    )

    big = student_file(tmp_path, (BACKWARD, BACKWARD + "        hoard = bytearray(128 * 2**20)\n"), "big.py")
    status, results, _ = grade(run, tmp_path, big, "--suite", "3", "--memory-limit", "512")
    assert status == 0 and not failing(results)


@pytest.mark.slow
def test_exceptions_of_every_kind_are_their_graphs_errors(run, tmp_path):
    student = hostile(
        tmp_path,
        *on_call(2, "            raise KeyboardInterrupt\n"),
        (RELU, RELU + "        raise ArithmeticError('relu')\n"),
        ("        return Value(math.exp(self.data), (self,), (math.exp(self.data),))\n", "        input()\n"),
    )
    status, results, _ = grade(run, tmp_path, student, "--suite", "15")
    assert status == 1
    errors = {name: result["error"] for name, result in failing(results).items()}
    assert (
        errors
        == {
            "mul (graph 2)": "The class raised KeyboardInterrupt",
            "exp (graph 7)": "Building node 'n1' (exp(x1)) raised EOFError: EOF when reading a line",  # stdin is not the channel
            "relu of a positive (graph 14)": "Building node 'n1' (relu(x1)) raised ArithmeticError: relu",
            "relu of a negative (graph 15)": "Building node 'n1' (relu(x1)) raised ArithmeticError: relu",
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, words",
    [
        (
            "import time\nwhile True:\n    time.sleep(1)\n",
            "Importing {student} did not finish within 1 s; it was stopped.",
        ),
        (
            "import os\nprint('bye')\nos._exit(7)\n",
            "Importing {student}: the process running it exited with status 7.\nIt printed:\nbye\n",
        ),
        ("raise SystemExit(0)\n", "Importing {student} raised SystemExit: 0"),
    ],
    ids=["loops", "os-exit", "sys-exit"],
)
def test_a_module_that_fails_while_imported_fails_every_graph(run, tmp_path, module, words):
    student = tmp_path / "student.py"
    student.write_text(module)
    status, results, _ = grade(run, tmp_path, student, "--suite", "3", "--timeout-per-graph", "1")
    assert status == 1
    assert [(result["error_kind"], result["error"]) for result in results.values()] == [
        ("not-loaded", words.format(student=student))
    ] * 3


@pytest.mark.slow
def test_a_forged_answer_is_the_graphs_crash(run, tmp_path):
    """The student's code finds the child's answers pipe and writes to it: that graph is not graded, the
    child is replaced, and the next graphs are graded."""
    forge = (
        "            import gc, io\n"
        "            for thing in gc.get_objects():\n"
        "                if isinstance(thing, io.BufferedWriter) and thing.fileno() > 2:\n"
        '                    thing.write(b\'{"submitted": "all of it"}\\n\')\n'
        "                    thing.flush()\n"
    )
    student = hostile(tmp_path, *on_call(5, forge))
    status, results, _ = grade(run, tmp_path, student, "--suite", "7")
    assert status == 1 and list(failing(results)) == ["neg (graph 5)"]
    assert results["neg (graph 5)"]["error_kind"] == "crashed"
    assert results["neg (graph 5)"]["error"] == (
        "The process running the class answered something that is not what the class computed."
    )


@pytest.mark.slow
def test_the_child_has_no_token_and_the_parent_never_imports_the_students_module(live_server, tmp_path, monkeypatch):
    monkeypatch.setenv("VALUEGRAPH_TOKEN", "s3cret")
    student = student_file(
        tmp_path, (BACKWARD, "        import os\n        print(os.environ.get('VALUEGRAPH_TOKEN'))\n" + BACKWARD)
    )
    with valuegraph.Client(live_server) as client:
        report = client.grade_isolated(f"{student}:Value", {"add": SUITE["add (graph 1)"]})
    assert report.passed and report.results[0].output == "None\n"
    assert not any(getattr(module, "__file__", None) == str(student) for module in list(sys.modules.values()))


@pytest.mark.slow
def test_a_missing_class_raises_class_not_found_from_the_python_api(live_server, tmp_path):
    student = student_file(tmp_path)
    with valuegraph.Client(live_server) as client, pytest.raises(valuegraph.ClassNotFound, match="has no Valeu"):
        client.grade_isolated(f"{student}:Valeu", SUITE)


def test_isolation_needs_no_server_until_it_grades(offline, tmp_path):
    """Building happens in the child before anything is sent: a service that cannot be reached is still exit 2."""
    status, _, err = offline("--url", "http://127.0.0.1:9", "--retries", "0", "grade", str(student_file(tmp_path)))
    assert status == 2 and err.startswith("valuegraph: cannot reach the service at http://127.0.0.1:9")


@pytest.mark.slow
def test_a_graph_that_is_not_json_is_not_built_and_the_others_are_graded(live_server, tmp_path):
    graphs = {"a set": {"nodes": [{"id": "x", "data": {1.0}}]}, "add": SUITE["add (graph 1)"]}
    with valuegraph.Client(live_server) as client:
        report = client.grade_isolated(f"{student_file(tmp_path)}:Value", graphs)
    not_json, add = report.results
    assert (not_json.error_kind, not_json.error) == (
        "not-built",
        "The graph is not JSON: Object of type set is not JSON serializable",
    )
    assert add.passed


@pytest.mark.slow
@pytest.mark.parametrize("mistake", list(WITH_A_NUMBER_MISTAKES))
def test_a_wrong_operator_with_a_plain_number_fails_in_the_child_as_in_process(live_server, tmp_path, mistake):
    """The child builds the constants as plain numbers too; the service sees none of them."""
    mutation, failing = WITH_A_NUMBER_MISTAKES[mistake]
    student = student_file(tmp_path, mutation)
    sent = []
    with valuegraph.Client(live_server) as client:
        client.session.hooks["response"].append(lambda response, **_: sent.append(response.request.body))
        isolated = client.grade_isolated(f"{student}:Value", SUITE)
        in_process = client.grade_class(broken_copy(*mutation).Value, SUITE)
    assert {kind_of(result.name) for result in isolated.failures} == failing
    assert [graded(result) for result in isolated.results] == [graded(result) for result in in_process.results]
    assert sent and all(b'"constant"' not in body for body in sent)


def graded(result):
    """A result but its error's words (a RecursionError's differ with the depth it was raised at)."""
    return result.name, result.passed, result.error_kind, result.root_causes, result.score
