"""A GradeReport for a student (plain text), for Gradescope (its autograder results.json) and for CI
graders (JUnit XML).

Each graph is one test worth the same share of the points (`shares`): full marks when it passed,
none when not.
"""

import re
import xml.etree.ElementTree as ElementTree
from decimal import Decimal

from valuegraph.grading import GradeReport, GraphResult

#: Characters XML 1.0 cannot carry, which a student's exception text may hold.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def summary(report: GradeReport) -> str:
    """One line: how many graphs passed, failed and could not be graded."""
    counts = report.counts
    line = f"{counts['passed']} of {counts['graphs']} graphs passed"
    details = []
    if counts["failed"]:
        details.append(f"{counts['failed']} failed")
    if counts["not_graded"]:
        details.append(f"{counts['not_graded']} not graded")
    return line + (f"; {', '.join(details)}." if details else ".")


def graded(report: GradeReport) -> str:
    """What was compared, in a sentence: "Graded: data, grad and local_grads of every node, on 30 graphs."."""
    fields = list(report.fields)
    listed = fields[0] if len(fields) == 1 else ", ".join(fields[:-1]) + " and " + fields[-1]
    sentence = f"Graded: {listed} of every node, on {report.counts['graphs']} graphs"
    if report.mode == "full" and "local_grads" not in fields:
        sentence += " (the class records no local gradients)"
    return sentence + "."


#: How the text report heads a graph that did not pass, by GraphResult.error_kind: FAILED when it was
#: graded and something mismatched; ERROR when the student's code failed on it; NOT GRADED when the
#: graph cannot be built with the class or the service refused it. ERROR and NOT GRADED are both
#: counted as not graded.
HEADINGS = {
    None: "FAILED",
    "student-error": "ERROR",
    "timed-out": "ERROR",
    "crashed": "ERROR",
    "not-run": "ERROR",
    "not-loaded": "ERROR",
    "not-built": "NOT GRADED",
    "refused": "NOT GRADED",
}
#: How many lines of what the student's code printed the text report shows under a graph.
PRINTED_LINES = 10
#: The decimals of each graph's share of Gradescope's points.
SHARE_DECIMALS = 2


def text(report: GradeReport, title: str = "") -> str:
    """The report for a student: each graph that did not pass with the first thing to fix, then a summary."""
    lines = [title] if title else []
    lines.append(graded(report))
    for result in report.failures:
        lines.append("")
        lines.append(f"{HEADINGS.get(result.error_kind, 'NOT GRADED')}: {result.name}")
        lines.extend("  " + line for line in result.message.splitlines())
        more = len(result.root_causes) - 1 + result_not_listed(result)
        if more > 0:
            lines.append(f"  ({more} more root cause{'s' if more > 1 else ''} in this graph; fix this one first.)")
        if result.output:
            printed = result.output.splitlines()
            lines.append("  It printed:" if len(printed) <= PRINTED_LINES else f"  It printed ({len(printed)} lines):")
            lines.extend("  | " + line for line in printed[:PRINTED_LINES])
    lines.append("")
    lines.append(summary(report))
    return "\n".join(lines) + "\n"


def result_not_listed(result: GraphResult) -> int:
    """Root causes the service counted but did not list."""
    return int((result.answer or {}).get("root_causes_not_listed", 0) or 0) if result.error is None else 0


def _output(result: GraphResult) -> str:
    if result.passed:
        return "Passed." + (f" Exercised: {', '.join(result.exercised)}." if result.exercised else "")
    lines = [result.message]
    for cause in result.root_causes[1:]:
        lines.append(f"Then: {cause.get('message', '')}")
    if result_not_listed(result):
        lines.append(f"({result_not_listed(result)} more root causes not listed.)")
    return "\n".join(lines)


def _output_and_printed(result: GraphResult) -> str:
    if result.passed or not result.output:
        return _output(result)
    return f"{_output(result)}\n\nIt printed:\n{result.output}"


def shares(max_score: float, count: int) -> list[Decimal]:
    """`max_score` parted among `count` tests in hundredths (SHARE_DECIMALS), so that they add up to it
    exactly: each gets max_score / count rounded down to a hundredth, and the first ones a hundredth
    more each until the sum is max_score (rounded to a hundredth): 50 among 28 is 16 tests of 1.79
    and 12 of 1.78."""
    if count == 0:
        return []
    unit = Decimal(1).scaleb(-SHARE_DECIMALS)
    units = int((Decimal(repr(float(max_score))) / unit).to_integral_value())
    each, extra = divmod(units, count)
    return [(each + (k < extra)) * unit for k in range(count)]


def gradescope(report: GradeReport, max_score: float | None = None, execution_time: float | None = None) -> dict:
    """Gradescope's autograder results (results.json): a test per graph, each worth its share of
    `max_score` (`shares`; default: 1 per graph), its output the root causes or why it was not graded."""
    results = report.results
    points = [Decimal(1)] * len(results) if max_score is None else shares(max_score, len(results))
    tests = [
        {
            "name": result.name,
            "score": float(share) if result.passed else 0.0,
            "max_score": float(share),
            "status": "passed" if result.passed else "failed",
            "output": _output_and_printed(result),
        }
        for result, share in zip(results, points)
    ]
    answer: dict = {
        "score": float(sum((share for result, share in zip(results, points) if result.passed), Decimal(0))),
        "output": f"{summary(report)} {graded(report)}",
        "tests": tests,
        "extra_data": {"counts": report.counts, "mode": report.mode, "fields": list(report.fields)},
    }
    if execution_time is not None:
        answer["execution_time"] = round(execution_time)
    return answer


def junit_xml(
    report: GradeReport, suite_name: str = "valuegraph", classname: str = "valuegraph", time: float = 0.0
) -> str:
    """The report as JUnit XML: a testsuite of one testcase per graph; a graph that mismatched has a
    <failure> (its first root cause's kind and message), one that could not be graded an <error>, and
    one whose code printed something a <system-out> with what it printed."""
    counts = report.counts
    attributes = {
        "name": suite_name,
        "tests": str(counts["graphs"]),
        "failures": str(counts["failed"]),
        "errors": str(counts["not_graded"]),
        "skipped": "0",
        "time": f"{time:.3f}",
    }
    suites = ElementTree.Element("testsuites", attributes)
    suite = ElementTree.SubElement(suites, "testsuite", attributes)
    for result in report.results:
        case = ElementTree.SubElement(suite, "testcase", {"classname": classname, "name": _xml(result.name)})
        if not result.passed:
            first_line = result.message.splitlines()[0] if result.message else "did not pass"
            if result.error is not None:
                tag, kind = "error", result.error_kind or "not-graded"
            else:
                cause = result.root_causes[0].get("kind", "mismatch") if result.root_causes else "mismatch"
                tag, kind = "failure", cause
            element = ElementTree.SubElement(case, tag, {"message": _xml(first_line), "type": kind})
            element.text = _xml(_output(result))
        if result.output:
            ElementTree.SubElement(case, "system-out").text = _xml(result.output)
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _xml(words: str) -> str:
    return _NOT_XML.sub("\ufffd", words)
