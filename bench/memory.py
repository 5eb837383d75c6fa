"""The worst memory and time a body byte costs, endpoint by endpoint and shape by shape:
`python -m bench.memory`.

Each shape of body, valid and refused, is sent once to a fresh one-worker gunicorn (the memory budget
and the deadline lifted, so that nothing stops it), on the compiled fast path and on the reference
path, and the worker's peak memory above its baseline (taken after one small request to the same
endpoint) is divided by the body's size. Per endpoint, the largest ratio is what admission must
reserve per body byte, and the largest peak of a small body what it must reserve at least
(service/runtime/memory.py, RESERVES); the table goes to bench/README.md. Graphviz's dot runs in a
process of its own, held in the budget for VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES: its memory is not the
worker's.
"""

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
import requests

from bench.server import BenchGunicorn
from bench.workloads import SEED, random_dag, small_graph
from service.runtime.memory import RESERVES

UNBOUNDED = {"VALUEGRAPH_MEMORY_BUDGET_BYTES": str(10**15), "VALUEGRAPH_DEADLINE_SECONDS": "100000"}
PATHS = {"fast": {"VALUEGRAPH_FAST_PATH": "1"}, "reference": {"VALUEGRAPH_FAST_PATH": "0"}}
#: The endpoints that have a fast path; the others answer on the reference path whatever the setting.
FAST_ENDPOINTS = ("/v1/evaluate", "/v1/evaluate/batch")
RENDER_FORMATS = ("json", "mermaid", "dot", "svg")
#: A body this large or larger is sized by its bytes; a smaller one (a shape bounded by a limit) by its peak.
LARGE_BODY_BYTES = 1_000_000


@dataclass(frozen=True)
class Shape:
    endpoint: str  # the path, with a query for render's format
    name: str
    make: Callable[[int], bytes]  # body of about `n` bytes (or its shape's own size when it is bounded)


def dumps(document: object) -> bytes:
    return orjson.dumps(document)


# --- /v1/evaluate ---------------------------------------------------------------------------------------


def recorded_node(n: int, local_grad: object = 1) -> list[dict]:
    """A leaf and one recorded node listing it n // 4 times (one-letter children)."""
    count = n // (4 if local_grad == 1 else 6)
    return [
        {"id": "a", "data": 1.0},
        {"id": "r", "data": 0.0, "children": ["a"] * count, "local_grads": [local_grad] * count},
    ]


def adds_chain(count: int) -> list[dict]:
    return [{"id": 0, "data": 1}, {"id": "k", "data": 1}] + [
        {"id": k, "op": "add", "children": [k - 1, "k"]} for k in range(1, count)
    ]


def graph_shapes(endpoint: str) -> list[Shape]:
    """Graphs that cost the most per byte, valid and refused: /v1/evaluate's, and render's refusals."""
    return [
        Shape(endpoint, "leaves, int ids (valid, several sinks)", lambda n: dumps({"nodes": leaves(n // 25)})),
        Shape(endpoint, "chain of adds, int ids (valid)", lambda n: dumps({"nodes": adds_chain(n // 40)})),
        Shape(endpoint, "random DAG (valid)", lambda n: dumps({"nodes": random_dag(n // 50, random.Random(SEED))})),
        Shape(endpoint, "one recorded node, one-letter children (valid)", lambda n: dumps({"nodes": recorded_node(n)})),
        Shape(
            endpoint,
            "one recorded node, invalid local gradients (refused)",
            lambda n: dumps({"nodes": recorded_node(n, "x")}),
        ),
        Shape(
            endpoint,
            "add with children true (refused)",
            lambda n: dumps(
                {"nodes": [{"id": "a", "data": 1.0}, {"id": "s", "op": "add", "children": [True] * (n // 5)}]}
            ),
        ),
        Shape(
            endpoint,
            "children that name no node (refused)",
            lambda n: dumps(
                {
                    "nodes": [{"id": "a", "data": 1.0}]
                    + [{"id": k, "op": "neg", "children": [-k]} for k in range(1, n // 40)]
                }
            ),
        ),
        Shape(
            endpoint,
            "invalid data in every node (refused)",
            lambda n: dumps({"nodes": [{"id": k, "data": "x"} for k in range(n // 20)]}),
        ),
        Shape(
            endpoint,
            "unknown keys in one node (refused)",
            lambda n: dumps({"nodes": [{"id": "a", "data": 1, **{f"k{k}": 0 for k in range(n // 12)}}]}),
        ),
        Shape(
            endpoint,
            "duplicate ids (refused)",
            lambda n: dumps({"nodes": [{"id": "a", "data": 1.0} for _ in range(n // 20)]}),
        ),
        Shape(
            endpoint,
            "one long cycle (refused)",
            lambda n: dumps(
                {"nodes": [{"id": k, "op": "neg", "children": [(k + 1) % (n // 35)]} for k in range(n // 35)]}
            ),
        ),
    ]


def leaves(count: int) -> list[dict]:
    return [{"id": k, "data": 0} for k in range(count)]


# --- batches --------------------------------------------------------------------------------------------

#: The most graphs and nodes a batch may hold by default (VALUEGRAPH_MAX_BATCH_GRAPHS, _NODES).
BATCH_GRAPHS, BATCH_NODES = 10_000, 1_000_000


def batch_of(graphs: list[dict]) -> bytes:
    return dumps({"graphs": graphs})


def many_chains(n: int, per_graph_bytes: int = 40) -> list[dict]:
    """As many chains of adds as fill n bytes within the batch limits."""
    nodes = min(BATCH_NODES, n // per_graph_bytes)
    graphs = min(BATCH_GRAPHS, nodes // 2)
    return [{"nodes": adds_chain(nodes // graphs)} for _ in range(graphs)]


def invalid_items(n: int) -> list[dict]:
    """Graphs of invalid nodes, as many as the batch takes: each refused on its own."""
    graphs = BATCH_GRAPHS
    per_graph = max(1, min(BATCH_NODES // graphs, n // graphs // 20))
    return [{"nodes": [{"id": k, "data": "x"} for k in range(per_graph)]} for _ in range(graphs)]


def evaluate_batch_shapes() -> list[Shape]:
    endpoint = "/v1/evaluate/batch"
    return [
        Shape(endpoint, "chains of adds (valid)", lambda n: batch_of(many_chains(n))),
        Shape(
            endpoint,
            "one random DAG (valid)",
            lambda n: batch_of([{"nodes": random_dag(n // 50, random.Random(SEED))}]),
        ),
        Shape(endpoint, "one recorded node (valid)", lambda n: batch_of([{"nodes": recorded_node(n)}])),
        Shape(endpoint, "graphs of invalid data (refused items)", lambda n: batch_of(invalid_items(n))),
        Shape(
            endpoint,
            "invalid local gradients (refused item)",
            lambda n: batch_of([{"nodes": recorded_node(n, "x")}]),
        ),
    ]


# --- /v1/grade and its batch --------------------------------------------------------------------------


def grade_request(nodes: list[dict], wrong: float = 0.5, fields=("data", "grad")) -> dict:
    """A submission for every node, each field off by `wrong`: every one a mismatch."""
    submitted = [{"id": node["id"], **{field: 1.25 + wrong for field in fields}} for node in nodes]
    return {"nodes": nodes, "submitted": submitted}


def recorded_grade(n: int, local_grads: object = 1.5) -> dict:
    """A recorded node's local gradients, submitted (all wrong, or invalid)."""
    nodes = recorded_node(n // 2)
    count = len(nodes[1]["children"])
    return {"nodes": nodes, "submitted": [{"id": "r", "local_grads": [local_grads] * count}]}


def simulated_graph(count: int) -> list[dict]:
    """A graph of every op, small enough for every known mistake to be simulated on it."""
    nodes = random_dag(count, random.Random(SEED))
    return nodes


def grade_shapes() -> list[Shape]:
    endpoint = "/v1/grade"
    return [
        Shape(endpoint, "a recorded node's local gradients, all wrong (valid)", lambda n: dumps(recorded_grade(n))),
        Shape(
            endpoint,
            "chain of adds, data and grad all wrong (valid)",
            lambda n: dumps(grade_request(adds_chain(n // 80))),
        ),
        Shape(
            endpoint,
            "random DAG, data and grad all wrong (valid)",
            lambda n: dumps(grade_request(random_dag(n // 90, random.Random(SEED)))),
        ),
        Shape(
            endpoint,
            "1,000 nodes, every field wrong: every mistake simulated (valid)",
            lambda n: dumps(grade_request(simulated_graph(1000), fields=("data", "grad"))),
        ),
        Shape(
            endpoint,
            "a recorded node's submitted local gradients invalid (refused)",
            lambda n: dumps(recorded_grade(n, "x")),
        ),
        Shape(
            endpoint,
            "submitted entries naming no node (refused)",
            lambda n: dumps(
                {"nodes": [{"id": "a", "data": 1.0}], "submitted": [{"id": k, "data": 1} for k in range(n // 20)]}
            ),
        ),
    ]


def grade_batch_shapes() -> list[Shape]:
    endpoint = "/v1/grade/batch"

    def small_submissions(n: int) -> bytes:
        item = grade_request(small_graph())
        count = min(BATCH_GRAPHS, max(1, n // len(dumps(item))))
        return batch_of([item] * count)

    def chains(n: int) -> bytes:
        return batch_of([grade_request(graph["nodes"]) for graph in many_chains(n, per_graph_bytes=80)])

    return [
        Shape(endpoint, "small graphs, all wrong (valid)", small_submissions),
        Shape(endpoint, "chains of adds, all wrong (valid)", chains),
        Shape(endpoint, "one recorded node's local gradients (valid)", lambda n: batch_of([recorded_grade(n)])),
        Shape(endpoint, "graphs of invalid data (refused items)", lambda n: batch_of(invalid_items(n))),
        Shape(endpoint, "invalid local gradients (refused item)", lambda n: batch_of([recorded_grade(n, "x")])),
    ]


# --- /v1/expression -------------------------------------------------------------------------------------


def longest_expression(length: int = 10_000) -> str:
    """A sum of products as long as the limit lets an expression be: the most nodes per character."""
    term = "a*b+"
    return (term * (length // len(term)))[:-1]


def expression_shapes() -> list[Shape]:
    endpoint = "/v1/expression"
    return [
        Shape(
            endpoint,
            "large inputs map (valid)",
            lambda n: dumps(
                {
                    "expression": "a*b+log(c)",
                    "inputs": {f"x{k}": 0.5 + k for k in range(n // 20)} | {"a": 2, "b": 3, "c": 4},
                }
            ),
        ),
        Shape(
            endpoint,
            "inputs map of invalid values (refused)",
            lambda n: dumps({"expression": "a*b", "inputs": {f"x{k}": "v" for k in range(n // 14)}}),
        ),
        Shape(
            endpoint,
            "the longest expression (valid, 10 kB)",
            lambda n: dumps({"expression": longest_expression(), "inputs": {"a": 2.0, "b": 3.0}}),
        ),
    ]


# --- /v1/render -----------------------------------------------------------------------------------------


def drawable_at_the_limits() -> list[dict]:
    """500 nodes and 998 edges (the default limits), each id and label 256 characters beyond ASCII:
    the largest picture the limits let a client ask for."""
    count = 500
    nodes = [{"id": f"{k:03d}" + "é" * 253, "label": "€" * 256, "data": 1.0} for k in range(2)]
    for k in range(2, count):
        nodes.append(
            {
                "id": f"{k:03d}" + "é" * 253,
                "label": "€" * 256,
                "op": "add",
                "children": [nodes[k - 1]["id"], nodes[k - 2]["id"]],
            }
        )
    return nodes


def render_shapes() -> list[Shape]:
    shapes = []
    for picture_format in RENDER_FORMATS:
        endpoint = f"/v1/render?format={picture_format}"
        shapes += [
            Shape(
                endpoint,
                "500 nodes, 998 edges, long ids and labels (valid)",
                lambda n: dumps({"nodes": drawable_at_the_limits()}),
            ),
            Shape(endpoint, "too many nodes (refused)", lambda n: dumps({"nodes": leaves(n // 25)})),
            Shape(endpoint, "too many edges (refused)", lambda n: dumps({"nodes": recorded_node(n)})),
            Shape(
                endpoint,
                "unknown keys in one node (refused)",
                lambda n: dumps({"nodes": [{"id": "a", "data": 1, **{f"k{k}": 0 for k in range(n // 12)}}]}),
            ),
            Shape(
                endpoint,
                "invalid data: long lists (refused)",
                lambda n: dumps({"nodes": [{"id": k, "data": [0.5] * (n // 4 // 400)} for k in range(400)]}),
            ),
        ]
    return shapes


def all_shapes() -> list[Shape]:
    return [
        *graph_shapes("/v1/evaluate"),
        *evaluate_batch_shapes(),
        *grade_shapes(),
        *grade_batch_shapes(),
        *expression_shapes(),
        *render_shapes(),
    ]


def warm_up_body(endpoint: str) -> bytes:
    """A small valid request to the endpoint: what it imports and caches is part of the baseline."""
    graph = {"nodes": small_graph()}
    if endpoint.startswith("/v1/evaluate/batch"):
        return batch_of([graph])
    if endpoint.startswith("/v1/grade/batch"):
        return batch_of([grade_request(small_graph())])
    if endpoint.startswith("/v1/grade"):
        return dumps(grade_request(small_graph()))
    if endpoint.startswith("/v1/expression"):
        return dumps({"expression": "a*b+log(c)", "inputs": {"a": 2, "b": 3, "c": 4}})
    return dumps(graph)


def measure(shape: Shape, request_body: bytes, path: str, log_dir: str, clients: int = 1, rounds: int = 1) -> dict:
    """One request alone, or `clients` at once, each sending the body `rounds` times (what a worker holds
    under sustained load, its allocator's arenas included): the peak is divided by what the requests
    in progress at once hold, `clients` bodies."""
    headers = {"Content-Type": "application/json"}
    with BenchGunicorn(log_dir, workers=1, env={**UNBOUNDED, **PATHS[path]}) as server:
        requests.post(server.base + shape.endpoint, data=warm_up_body(shape.endpoint), headers=headers, timeout=60)
        baseline = server.worker_memory("VmRSS")

        def send(_):
            return [
                requests.post(server.base + shape.endpoint, data=request_body, headers=headers, timeout=3600)
                for _ in range(rounds)
            ][-1]

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            response = list(pool.map(send, range(clients)))[-1]
        seconds = time.perf_counter() - start
        peak = server.worker_memory("VmHWM")
    return {
        "endpoint": shape.endpoint,
        "shape": shape.name,
        "path": path + ("" if clients == 1 else f", {clients} clients × {rounds}"),
        "body_bytes": len(request_body),
        "status": response.status_code,
        "answer_bytes": len(response.content),
        "seconds": seconds,
        "peak_above_baseline": peak - baseline,
        "per_body_byte": (peak - baseline) / len(request_body) / clients,
    }


def load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--megabytes", type=float, default=6.0, help="size of each body whose size is not bounded")
    parser.add_argument("--only", default="", help="measure only the shapes whose endpoint or name contains this")
    parser.add_argument("--paths", default="fast,reference", help="fast, reference or both, comma-separated")
    parser.add_argument("--clients", type=int, default=1, help="clients sending each body at once")
    parser.add_argument("--rounds", type=int, default=1, help="times each client sends it")
    args = parser.parse_args(argv)
    n = int(args.megabytes * 1e6)
    rows = []
    with tempfile.TemporaryDirectory(prefix="valuegraph-memory-") as log_dir:
        for shape in all_shapes():
            if args.only not in f"{shape.endpoint} {shape.name}":
                continue
            request_body = shape.make(n)
            for path in args.paths.split(","):
                if path == "fast" and not shape.endpoint.startswith(FAST_ENDPOINTS):
                    continue
                row = measure(shape, request_body, path, log_dir, args.clients, args.rounds)
                rows.append(row)
                print(
                    f"  {shape.endpoint} {shape.name} [{path}]: {row['status']}, {row['per_body_byte']:.1f} B per body "
                    f"byte, {row['peak_above_baseline'] / 2**20:.0f} MiB, {row['seconds']:.2f} s (load {load_average()})",
                    file=sys.stderr,
                )
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    print("| endpoint | shape | path | body | status | answer | time | worker peak above baseline | per body byte |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['endpoint']}` | {r['shape']} | {r['path']} | {r['body_bytes'] / 1e6:.2f} MB | {r['status']} "
            f"| {r['answer_bytes'] / 1e3:,.1f} kB | {r['seconds']:.2f} s | {r['peak_above_baseline'] / 2**20:,.0f} MiB "
            f"| {r['per_body_byte']:.1f} B |"
        )
    print()
    for endpoint in dict.fromkeys(r["endpoint"].split("?")[0] for r in rows):
        mine = [r for r in rows if r["endpoint"].split("?")[0] == endpoint]
        large = [r for r in mine if r["body_bytes"] >= LARGE_BODY_BYTES] or mine
        worst = max(large, key=lambda r: r["per_body_byte"])
        small_peak = max(r["peak_above_baseline"] for r in mine if r not in large) if len(large) < len(mine) else 0
        reserve = RESERVES[endpoint]
        covers = all(reserve.bytes_for(r["body_bytes"]) >= r["peak_above_baseline"] for r in mine)
        print(
            f"- `{endpoint}`: worst {worst['per_body_byte']:.1f} B per body byte ({worst['shape']}, {worst['path']})"
            + (f", {small_peak / 2**20:.0f} MiB for a body under 1 MB" if small_peak else "")
            + f"; admission reserves {reserve}, which {'covers' if covers else 'DOES NOT cover'} every shape."
        )


if __name__ == "__main__":
    main()
