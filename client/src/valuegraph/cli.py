"""The `valuegraph` command: evaluate a graph file, differentiate a formula, draw a graph.

Exit status: 0 on success; 1 when the service refuses the request (its problem is printed);
2 on a usage error or when the service cannot be reached.
"""

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import requests

from valuegraph.client import DEFAULT_URL, Client, ProblemError

EXAMPLES = """examples:
  valuegraph evaluate graph.json
  cat graph.json | valuegraph evaluate - --json
  valuegraph expr "log((a + b) * a)" a=2 b=3
  valuegraph render graph.json --format svg > graph.svg

The service is at --url, else $VALUEGRAPH_URL, else http://127.0.0.1:8000; a service that
requires a token gets --token, else $VALUEGRAPH_TOKEN."""


class UsageError(Exception):
    """A mistake in the command line or its files: exit status 2."""


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    url = getattr(args, "url", None) or os.environ.get("VALUEGRAPH_URL") or DEFAULT_URL
    token = getattr(args, "token", None) or os.environ.get("VALUEGRAPH_TOKEN") or None
    try:
        with Client(url, timeout=args.timeout, retries=args.retries, token=token) as client:
            args.run(client, args, stdout)
    except UsageError as error:
        print(f"valuegraph: {error}", file=stderr)
        return 2
    except ProblemError as problem:
        print(f"valuegraph: the service refused the request\n{problem.describe()}", file=stderr)
        return 1
    except requests.RequestException as error:
        print(f"valuegraph: cannot reach the service at {url}: {error}", file=stderr)
        return 2
    except ValueError as error:  # a graph with NaN or Infinity, which JSON cannot carry
        print(f"valuegraph: cannot send the request: {error}", file=stderr)
        return 2
    return 0


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
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds per request (default 60)")
    common.add_argument(
        "--retries", type=int, default=argparse.SUPPRESS, help="retries on connection errors (default 3)"
    )
    parser = argparse.ArgumentParser(
        prog="valuegraph",
        description="Scalar automatic differentiation on the valuegraph service.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.set_defaults(timeout=60.0, retries=3)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    evaluate = commands.add_parser("evaluate", parents=[common], help="evaluate a graph: every node's data and grad")
    evaluate.add_argument("graph", help="a graph request as JSON (a file, or - for standard input)")
    evaluate.add_argument("--json", action="store_true", help="print the service's JSON answer")
    evaluate.set_defaults(run=_evaluate)

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
    return parser


def _evaluate(client: Client, args: argparse.Namespace, out: TextIO) -> None:
    answer = client.evaluate(_read_graph(args.graph))
    if args.json:
        print(json.dumps(answer), file=out)
        return
    rows = [[_show(node["id"]), repr(node["data"]), repr(node["grad"])] for node in answer["nodes"]]
    marks = ["output" if node["id"] == answer["output"] else "" for node in answer["nodes"]]
    _table(["id", "data", "grad", ""], [[*row, mark] for row, mark in zip(rows, marks)], out)


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


def _read_graph(path: str) -> Any:
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"{'standard input' if path == '-' else path} is not JSON: {error}") from None


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
