"""The `valuegraph` command: evaluate graphs, differentiate a formula, draw a graph, grade a Value class.

Exit status: 0 on success (for grade: every graph passed); 1 when the service refuses the request (its
problem is printed) or, for grade and batch, when a graph did not pass; 2 on a usage error (for grade,
a student's module or class that does not exist too) or when the service cannot be reached or its
answer cannot be read.

`valuegraph grade` runs the student's code in a child process (valuegraph.isolation), so that nothing
it does (loop, exit, print, patch valuegraph) reaches this one, whose reports are always written.
"""

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import requests

from valuegraph import __version__, reports
from valuegraph.client import DEFAULT_URL, Client, ProblemError
from valuegraph.grading import MODES, ClassNotFound, GradeReport, GraphResult
from valuegraph.isolation import MEMORY_LIMIT, TIMEOUT_PER_GRAPH, ChildNotStarted
from valuegraph.suites import KINDS, suite
from valuegraph.transport import describe, nothing_arrived

EXAMPLES = """examples:
  valuegraph evaluate graph.json
  cat graph.json | valuegraph evaluate - --json
  valuegraph batch graphs.ndjson
  valuegraph expr "log((a + b) * a)" a=2 b=3
  valuegraph render graph.json --format svg > graph.svg
  valuegraph grade student.py:Value --suite 50 --gradescope results.json

The service is at --url, else $VALUEGRAPH_URL, else http://127.0.0.1:8000; a service that
requires a token gets --token, else $VALUEGRAPH_TOKEN."""


class UsageError(Exception):
    """A mistake in the command line or its files: exit status 2."""


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command with `argv` (default: sys.argv[1:]); returns the exit status."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    url = getattr(args, "url", None) or os.environ.get("VALUEGRAPH_URL") or DEFAULT_URL
    token = getattr(args, "token", None) or os.environ.get("VALUEGRAPH_TOKEN") or None
    try:
        with Client(url, timeout=args.timeout, retries=args.retries, token=token, **_batch_size(args)) as client:
            return args.run(client, args, stdout) or 0
    except UsageError as error:
        print(f"valuegraph: {error}", file=stderr)
        return 2
    except ProblemError as problem:
        print(f"valuegraph: the service refused the request\n{problem.describe()}", file=stderr)
        return 1
    except requests.RequestException as error:
        if nothing_arrived(error):
            print(f"valuegraph: cannot reach the service at {url}: {describe(error, args.timeout)}", file=stderr)
        else:
            print(
                f"valuegraph: cannot read the answer of the service at {url}: {describe(error, args.timeout)}",
                file=stderr,
            )
        return 2
    except ValueError as error:  # a graph with NaN or Infinity, which JSON cannot carry
        print(f"valuegraph: cannot send the request: {error}", file=stderr)
        return 2


def _batch_size(args: argparse.Namespace) -> dict:
    size = getattr(args, "batch_size", None)
    return {} if size is None else {"batch_graphs": size}


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"the service (default: $VALUEGRAPH_URL or {DEFAULT_URL})"
    )
    common.add_argument(
        "--token",
        default=argparse.SUPPRESS,
        help="a bearer token, for a service that requires one (default: $VALUEGRAPH_TOKEN)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=argparse.SUPPRESS,
        help="seconds to wait for the service's answer (default 60), and 0.01 s more per graph of a batch",
    )
    common.add_argument(
        "--retries",
        type=int,
        default=argparse.SUPPRESS,
        help="retries of a request no byte of whose answer arrived (default 3)",
    )
    parser = argparse.ArgumentParser(
        prog="valuegraph",
        description="Scalar automatic differentiation on the valuegraph service.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"valuegraph {__version__}")
    parser.set_defaults(timeout=60.0, retries=3)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    evaluate = commands.add_parser("evaluate", parents=[common], help="evaluate a graph: every node's data and grad")
    evaluate.add_argument("graph", help="a graph request as JSON (a file, or - for standard input)")
    evaluate.add_argument("--json", action="store_true", help="print the service's JSON answer")
    evaluate.set_defaults(run=_evaluate)

    batch = commands.add_parser(
        "batch",
        parents=[common],
        help="evaluate many graphs: each one's data and grads, or why it was refused",
        description="Evaluate many graphs (POST /v1/evaluate/batch), each answered on its own. Exit status 1 "
        "when the service refused any of them.",
    )
    batch.add_argument("graphs", help="a JSON array or NDJSON (one per line) of graph requests; - for standard input")
    batch.add_argument("--json", action="store_true", help="print the service's JSON answer")
    batch.add_argument("--batch-size", type=_positive, default=None, help="graphs per request (default 1000)")
    batch.set_defaults(run=_batch)

    expr = commands.add_parser(
        "expr",
        parents=[common],
        help="differentiate a formula",
        description="Differentiate a formula in Python's syntax: + - * / ** (a plain-number exponent), "
        "unary -, log, exp, relu. Put -- before a formula that starts with -.",
    )
    expr.add_argument("expression", help='e.g. "log((a + b) * a)"')
    expr.add_argument("inputs", nargs="*", metavar="NAME=VALUE", help="the value of each name, e.g. a=2 b=3")
    expr.add_argument("--json", action="store_true", help="print the service's JSON answer")
    expr.add_argument("--nodes", action="store_true", help="also print every node the formula builds")
    expr.set_defaults(run=_expr)

    render = commands.add_parser(
        "render", parents=[common], help="draw a graph as Mermaid, Graphviz dot, SVG, or the picture's content as JSON"
    )
    render.add_argument("graph", help="a graph request as JSON (a file, or - for standard input)")
    render.add_argument(
        "--format",
        choices=("mermaid", "dot", "svg", "json"),
        default="mermaid",
        help="mermaid (the default), dot, svg (drawn by Graphviz on the service, where it is installed), "
        "or json (the nodes and edges a picture shows, with exact numbers)",
    )
    render.set_defaults(run=_render)

    grade = commands.add_parser(
        "grade",
        parents=[common],
        help="grade a student's Value class",
        description="Build each graph with a student's Value class (its own operators and backward), in a child "
        "process within time and memory limits, then grade what it computed on the service. Exit status 0 when "
        "every graph passed, 1 when one did not, 2 when there is no such module or class.",
    )
    grade.add_argument(
        "value_class",
        metavar="MODULE:CLASS",
        help="the class: a dotted module or a .py file, then : and the class's name (default Value)",
    )
    source = grade.add_mutually_exclusive_group()
    source.add_argument(
        "--graphs",
        metavar="FILE",
        help="the graphs: a JSON array or NDJSON of graph requests, or a JSON object of them by name",
    )
    source.add_argument(
        "--suite",
        type=_positive,
        metavar="N",
        help=f"N graphs that exercise every op and backward rule (the default, with N = {len(KINDS)})",
    )
    grade.add_argument("--variant", type=int, default=0, help="which draw of the suite's random data (default 0)")
    grade.add_argument("--mode", choices=tuple(MODES), default="full", help="what is graded (default full)")
    grade.add_argument("--rtol", type=_tolerance, default=None, help="relative tolerance (default: the service's)")
    grade.add_argument("--atol", type=_tolerance, default=None, help="absolute tolerance (default: the service's)")
    grade.add_argument("--gradescope", metavar="FILE", help="also write Gradescope's results.json here")
    grade.add_argument(
        "--max-score",
        type=float,
        default=None,
        help="Gradescope's points for all graphs, shared in hundredths (default 1 each)",
    )
    grade.add_argument("--junit", metavar="FILE", help="also write the report as JUnit XML here")
    grade.add_argument("--json", action="store_true", help="print the report as JSON")
    grade.add_argument("--batch-size", type=_positive, default=None, help="graphs per request (default 1000)")
    grade.add_argument(
        "--timeout-per-graph",
        type=_seconds,
        default=TIMEOUT_PER_GRAPH,
        metavar="SECONDS",
        help=f"the most time the class may take for one graph, and to be imported (default {TIMEOUT_PER_GRAPH:g})",
    )
    grade.add_argument(
        "--timeout-total",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="the most time the class may take for all the graphs; those left are not run (default: no limit)",
    )
    grade.add_argument(
        "--memory-limit",
        type=_whole,
        default=MEMORY_LIMIT // 2**20,
        metavar="MIB",
        help=f"the most memory the class's process may take, in MiB; 0 for no limit (default {MEMORY_LIMIT // 2**20})",
    )
    grade.set_defaults(run=_grade)

    write_suite = commands.add_parser(
        "suite", help="print a suite of graphs as JSON (by name), to read or to grade with --graphs"
    )
    write_suite.add_argument(
        "count", type=_positive, nargs="?", default=len(KINDS), help=f"graphs (default {len(KINDS)})"
    )
    write_suite.add_argument("--variant", type=int, default=0, help="which draw of the suite's random data (default 0)")
    write_suite.set_defaults(run=_suite)
    return parser


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return number


def _seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number > 0 or math.isinf(number):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds > 0")
    return number


def _whole(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return int(text)


def _tolerance(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number >= 0 or math.isinf(number):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number >= 0")
    return number


def _evaluate(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    answer = client.evaluate(_read_graph(args.graph))
    if args.json:
        print(json.dumps(answer), file=out)
        return
    _print_evaluation(answer, out)


def _print_evaluation(answer: dict, out: TextIO) -> None:
    rows = [[_show(node["id"]), repr(node["data"]), repr(node["grad"])] for node in answer["nodes"]]
    marks = ["output" if node["id"] == answer["output"] else "" for node in answer["nodes"]]
    _table(["id", "data", "grad", ""], [[*row, mark] for row, mark in zip(rows, marks)], out)


def _batch(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    graphs = _read_graphs(args.graphs)
    if not graphs:
        raise UsageError(f"{args.graphs} holds no graph")
    answer = client.evaluate_batch(graph for _, graph in graphs)
    if args.json:
        print(json.dumps(answer), file=out)
    else:
        for k, ((name, _), result) in enumerate(zip(graphs, answer["results"])):
            if k:
                print(file=out)
            if result["status"] == 200:
                print(f"{name}: output {_show(result['evaluation']['output'])}", file=out)
                _print_evaluation(result["evaluation"], out)
            else:
                problem = ProblemError(result["status"], **_problem_fields(result.get("problem")))
                print(f"{name}: refused\n{problem.describe()}", file=out)
    return 0 if all(result["status"] == 200 for result in answer["results"]) else 1


def _problem_fields(problem: Any) -> dict:
    problem = problem if isinstance(problem, dict) else {}
    return {
        "title": problem.get("title", ""),
        "detail": problem.get("detail", ""),
        "errors": problem.get("errors"),
        "body": problem,
    }


def _expr(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    answer = client.expression(args.expression, _read_inputs(args.inputs))
    if args.json:
        print(json.dumps(answer), file=out)
        return
    print(f"{_show(answer['output'])} = {answer['data']!r}    # {args.expression}", file=out)
    for name, grad in answer["grads"].items():
        print(f"{name}.grad = {grad!r}", file=out)
    if args.nodes:
        print(file=out)
        rows = [
            [_show(node["id"]), node["expression"], repr(node["data"]), repr(node["grad"])] for node in answer["nodes"]
        ]
        _table(["id", "expression", "data", "grad"], rows, out)


def _render(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    out.write(client.render(_read_graph(args.graph), args.format))


def _suite(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    print(json.dumps(suite(args.count, args.variant), indent=1), file=out)


def _grade(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.graphs is not None:
        graphs = dict(_read_graphs(args.graphs))
        if not graphs:
            raise UsageError(f"{args.graphs} holds no graph")
    else:
        graphs = suite(args.suite or len(KINDS), args.variant)
    tolerance = {key: value for key, value in (("rtol", args.rtol), ("atol", args.atol)) if value is not None}
    started = time.monotonic()
    try:
        report = client.grade_isolated(
            args.value_class,
            graphs,
            mode=args.mode,
            tolerance=tolerance or None,
            timeout_per_graph=args.timeout_per_graph,
            timeout_total=args.timeout_total,
            memory_limit=None if args.memory_limit == 0 else args.memory_limit * 2**20,
        )
    except ClassNotFound as error:
        report = GradeReport(
            [GraphResult(name, False, error=str(error), error_kind="not-loaded") for name in graphs], args.mode
        )
        _write_reports(report, args, time.monotonic() - started)
        raise UsageError(str(error)) from None
    except ChildNotStarted as error:
        raise UsageError(str(error)) from None
    _write_reports(report, args, time.monotonic() - started)
    if args.json:
        print(json.dumps(report.to_dict()), file=out)
    else:
        out.write(reports.text(report, f"valuegraph grade {args.value_class}"))
    return 0 if report.passed else 1


def _write_reports(report: GradeReport, args: argparse.Namespace, elapsed: float) -> None:
    if args.gradescope:
        _write(args.gradescope, json.dumps(reports.gradescope(report, args.max_score, elapsed), indent=1) + "\n")
    if args.junit:
        name = f"valuegraph grade {args.value_class}"
        _write(args.junit, reports.junit_xml(report, name, _classname(args.value_class), elapsed))


def _classname(spec: str) -> str:
    module_name, _, class_name = spec.rpartition(":") if ":" in spec else (spec, "", "Value")
    stem = Path(module_name).stem if module_name.endswith(".py") else module_name
    return f"{stem}.{class_name or 'Value'}"


def _write(path: str, content: str) -> None:
    try:
        Path(path).write_text(content, encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None


def _read_text(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"{path} is not UTF-8 text: {error}") from None


def _read_graph(path: str) -> Any:
    try:
        return json.loads(_read_text(path))
    except ValueError as error:
        raise UsageError(f"{'standard input' if path == '-' else path} is not JSON: {error}") from None


def _read_graphs(path: str) -> list[tuple[str, Any]]:
    """Named graphs from a JSON array, a JSON object of them by name, one graph, or NDJSON (one a line)."""
    text = _read_text(path)
    where = "standard input" if path == "-" else path
    try:
        document = json.loads(text)
    except ValueError:
        document = _ndjson(text, where)
    if isinstance(document, dict) and "nodes" not in document:
        return [(str(name), graph) for name, graph in document.items()]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise UsageError(f"{where} holds neither graphs nor a list of them")
    return [(f"graph {i + 1}", graph) for i, graph in enumerate(document)]


def _ndjson(text: str, where: str) -> list:
    graphs = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                graphs.append(json.loads(line))
            except ValueError as error:
                raise UsageError(f"{where} is neither JSON nor NDJSON: line {number}: {error}") from None
    return graphs


def _read_inputs(pairs: Sequence[str]) -> dict[str, float]:
    inputs = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"{pair!r} is not NAME=VALUE (like a=2)")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise UsageError(f"{pair!r}: {text!r} is not a finite number")
        inputs[name.strip()] = value
    return inputs


def _show(node_id: Any) -> str:
    return node_id if isinstance(node_id, str) else repr(node_id)


def _table(header: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)


if __name__ == "__main__":
    sys.exit(main())
