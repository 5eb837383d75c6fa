"""A GradeReport as text, as Gradescope's results.json and as JUnit XML (valuegraph.reports), on results
of every kind, read back with json and ElementTree; the fields of issue 14's grade answer (exercised,
root_causes_not_listed) are shown where present."""

import json
import xml.etree.ElementTree as ElementTree
from decimal import Decimal

import pytest

from valuegraph import reports
from valuegraph.grading import ERROR_KINDS, GradeReport, GraphResult


def cause(node, kind, message):
    return {"node": node, "kind": kind, "field": "grad", "message": message, "expected": 1.0, "submitted": 2.0}


@pytest.fixture
def report():
    return GradeReport(
        [
            GraphResult("add (graph 1)", True, score={"checked": 5, "matched": 5}, exercised=["add", "chain rule"]),
            GraphResult(
                "x + x (graph 2)",
                False,
                score={"checked": 4, "matched": 3},
                root_causes=[
                    cause("x1", "accumulation", 'use += <not => & "quotes"'),
                    cause("n1", "forward", "then this"),
                ],
                answer={"root_causes_not_listed": 3},
            ),
            GraphResult(
                "log (graph 3)", False, error="Building node 'n1' raised KeyError: '\x00'", error_kind="student-error"
            ),
            GraphResult("recorded (graph 4)", False, error="Node 'r' is recorded ...", error_kind="not-built"),
        ],
        mode="full",
        fields=("data", "grad"),
    )


def test_text_names_each_graph_that_did_not_pass_and_sums_up(report):
    assert reports.text(report, "valuegraph grade student.py:Value").split("\n\n") == [
        "valuegraph grade student.py:Value\n"
        "Graded: data and grad of every node, on 4 graphs (the class records no local gradients).",
        'FAILED: x + x (graph 2)\n  use += <not => & "quotes"\n  (4 more root causes in this graph; fix this one first.)',
        "ERROR: log (graph 3)\n  Building node 'n1' raised KeyError: '\x00'",
        "NOT GRADED: recorded (graph 4)\n  Node 'r' is recorded ...",
        "1 of 4 graphs passed; 1 failed, 2 not graded.\n",
    ]
    assert report.counts == {"graphs": 4, "passed": 1, "failed": 1, "not_graded": 2}


def test_gradescope_results_share_the_points_and_say_what_a_pass_covers(report):
    results = json.loads(json.dumps(reports.gradescope(report, max_score=10, execution_time=2.6)))
    assert results["score"] == 2.5 and results["execution_time"] == 3
    assert [(test["status"], test["score"], test["max_score"]) for test in results["tests"]] == [
        ("passed", 2.5, 2.5),
        ("failed", 0.0, 2.5),
        ("failed", 0.0, 2.5),
        ("failed", 0.0, 2.5),
    ]
    assert results["tests"][0]["output"] == "Passed. Exercised: add, chain rule."
    assert (
        results["tests"][1]["output"] == 'use += <not => & "quotes"\nThen: then this\n(3 more root causes not listed.)'
    )
    assert results["output"].startswith("1 of 4 graphs passed; 1 failed, 2 not graded. Graded: data and grad")
    assert results["extra_data"]["counts"] == report.counts
    assert reports.gradescope(report)["score"] == 1.0


def test_junit_xml_has_a_failure_or_an_error_per_graph_that_did_not_pass(report):
    text = reports.junit_xml(report, "valuegraph grade s.py:Value", "s.Value", 1.25)
    root = ElementTree.fromstring(text)
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("time")) == (
        "4",
        "1",
        "2",
        "1.250",
    )
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == [result.name for result in report.results]
    assert list(cases[0]) == []
    failure = cases[1].find("failure")
    assert (failure.get("type"), failure.get("message")) == ("accumulation", 'use += <not => & "quotes"')
    error = cases[2].find("error")
    assert (
        error.get("type") == "student-error" and error.get("message") == "Building node 'n1' raised KeyError: '\ufffd'"
    )
    assert cases[3].find("error").get("type") == "not-built"


def test_an_empty_report_does_not_pass():
    empty = GradeReport([])
    assert not empty.passed and reports.gradescope(empty)["score"] == 0
    assert ElementTree.fromstring(reports.junit_xml(empty)).find("testsuite").get("tests") == "0"


@pytest.mark.parametrize("max_score, count", [(50, 28), (60, 30), (10, 7), (1, 3), (7.5, 4), (100, 27), (0.05, 7)])
def test_the_points_are_shared_in_hundredths_and_add_up_to_max_score_exactly(max_score, count):
    report = GradeReport([GraphResult(f"graph {k}", True) for k in range(count)])
    results = json.loads(json.dumps(reports.gradescope(report, max_score=max_score)))
    points = [Decimal(repr(test["max_score"])) for test in results["tests"]]
    assert sum(points) == Decimal(repr(float(max_score))) and results["score"] == max_score
    assert all(point == point.quantize(Decimal("0.01")) for point in points)
    assert max(points) - min(points) <= Decimal("0.01") and points == sorted(points, reverse=True)


def test_fifty_points_among_28_graphs():
    """The grader's case: 50 / 28 was 1.7857142857142858 a test and 49.999999999999986 in all."""
    report = GradeReport([GraphResult(f"graph {k}", k != 3) for k in range(28)])
    results = reports.gradescope(report, max_score=50)
    assert [test["max_score"] for test in results["tests"]] == [1.79] * 16 + [1.78] * 12
    assert results["score"] == 48.21  # every graph but the fourth (1.79)


def test_what_the_class_printed_goes_with_its_graph(report):
    report.results[1].output = "debug: topo has 7 nodes\n"
    report.results[0].output = "passing graphs print too\n"
    text = reports.text(report)
    assert (
        'FAILED: x + x (graph 2)\n  use += <not => & "quotes"\n  (4 more root causes in this graph; fix this one first.)\n  It printed:\n  | debug: topo has 7 nodes\n'
        in text
    )
    assert "passing graphs" not in text
    tests = reports.gradescope(report)["tests"]
    assert (
        tests[1]["output"].endswith("\n\nIt printed:\ndebug: topo has 7 nodes\n") and "print" not in tests[0]["output"]
    )
    cases = ElementTree.fromstring(reports.junit_xml(report)).find("testsuite").findall("testcase")
    assert [element.tag for element in cases[0]] == ["system-out"] and cases[0][0].text == "passing graphs print too\n"
    assert [element.tag for element in cases[1]] == ["failure", "system-out"]
    assert [element.tag for element in cases[2]] == ["error"]


def test_a_long_output_shows_its_first_lines_in_the_text_report(report):
    report.results[2].output = "".join(f"line {k}\n" for k in range(25))
    text = reports.text(report)
    assert (
        "  It printed (25 lines):\n" + "".join(f"  | line {k}\n" for k in range(reports.PRINTED_LINES)) + "\n" in text
    )
    assert "line 10" not in text


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_every_kind_of_error_has_a_heading_and_counts_as_not_graded(kind):
    report = GradeReport([GraphResult("g", False, error="why", error_kind=kind)])
    assert reports.HEADINGS[kind] in ("ERROR", "NOT GRADED")
    assert report.counts["not_graded"] == 1 and reports.text(report).split("\n")[2] == f"{reports.HEADINGS[kind]}: g"
