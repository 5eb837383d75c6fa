"""The worst memory and time a body byte costs, shape by shape: `python -m bench.memory`.

Each shape of graph, valid and refused, is sent once to a fresh one-worker gunicorn (the memory
budget and the deadline lifted, so that nothing stops it), and the worker's peak memory above its
baseline is divided by the body's size. The largest ratio is what admission reserves per body byte
(service/runtime/memory.py, PEAK_BYTES_PER_BODY_BYTE); the table goes to bench/README.md.
"""

import argparse
import random
import sys
import tempfile
import time

import orjson
import requests

from bench.server import BenchGunicorn
from bench.workloads import SEED, body, random_dag
from service.runtime.memory import PEAK_BYTES_PER_BODY_BYTE

UNBOUNDED = {"VALUEGRAPH_MEMORY_BUDGET_BYTES": str(10**15), "VALUEGRAPH_DEADLINE_SECONDS": "100000"}


def shapes(megabytes: float) -> dict[str, bytes]:
    """name -> a body of about `megabytes` MB in that shape."""
    n = int(megabytes * 1e6)
    one_char_children = orjson.dumps(
        {
            "nodes": [
                {"id": "a", "data": 1.0},
                {"id": "r", "data": 0.0, "children": ["a"] * (n // 4), "local_grads": [1] * (n // 4)},
            ]
        }
    )
    return {
        "leaves, int ids (valid)": orjson.dumps({"nodes": [{"id": k, "data": 0} for k in range(n // 25)], "output": 0}),
        "chain of adds, int ids (valid)": orjson.dumps(
            {
                "nodes": [{"id": 0, "data": 1}, {"id": "k", "data": 1}]
                + [{"id": k, "op": "add", "children": [k - 1, "k"]} for k in range(1, n // 40)]
            }
        ),
        "random DAG (valid)": body(random_dag(n // 50, random.Random(SEED))),
        "one recorded node, one-letter children (valid)": one_char_children,
        "add with children true (refused)": orjson.dumps(
            {"nodes": [{"id": "a", "data": 1.0}, {"id": "s", "op": "add", "children": [True] * (n // 5)}]}
        ),
        "children that name no node (refused)": orjson.dumps(
            {
                "nodes": [{"id": "a", "data": 1.0}]
                + [{"id": k, "op": "neg", "children": [-k]} for k in range(1, n // 40)]
            }
        ),
        "invalid data in every node (refused)": orjson.dumps(
            {"nodes": [{"id": k, "data": "x"} for k in range(n // 20)]}
        ),
        "unknown keys in one node (refused)": orjson.dumps(
            {"nodes": [{"id": "a", "data": 1, **{f"k{k}": 0 for k in range(n // 12)}}]}
        ),
        "duplicate ids (refused)": orjson.dumps({"nodes": [{"id": "a", "data": 1.0} for _ in range(n // 20)]}),
        "one long cycle (refused)": orjson.dumps(
            {"nodes": [{"id": k, "op": "neg", "children": [(k + 1) % (n // 35)]} for k in range(n // 35)]}
        ),
    }


def measure(name: str, request_body: bytes, log_dir: str) -> dict:
    with BenchGunicorn(log_dir, workers=1, env=UNBOUNDED) as server:
        requests.post(server.base + "/v1/evaluate", json={"nodes": [{"id": "a", "data": 1.0}]}, timeout=30)
        baseline = server.worker_memory("VmRSS")
        start = time.perf_counter()
        response = requests.post(
            server.base + "/v1/evaluate", data=request_body, headers={"Content-Type": "application/json"}, timeout=600
        )
        seconds = time.perf_counter() - start
        peak = server.worker_memory("VmHWM")
    return {
        "shape": name,
        "body_bytes": len(request_body),
        "status": response.status_code,
        "answer_bytes": len(response.content),
        "seconds": seconds,
        "peak_above_baseline": peak - baseline,
        "per_body_byte": (peak - baseline) / len(request_body),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--megabytes", type=float, default=20.0, help="size of each body")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="valuegraph-memory-") as log_dir:
        for name, request_body in shapes(args.megabytes).items():
            row = measure(name, request_body, log_dir)
            rows.append(row)
            print(f"  {name}: {row['per_body_byte']:.1f} B per body byte, {row['seconds']:.2f} s", file=sys.stderr)
    print("| shape | body | status | answer | time | worker peak above baseline | per body byte |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['body_bytes'] / 1e6:.1f} MB | {r['status']} | {r['answer_bytes'] / 1e3:,.1f} kB "
            f"| {r['seconds']:.2f} s | {r['peak_above_baseline'] / 2**20:,.0f} MiB | {r['per_body_byte']:.1f} B |"
        )
    worst = max(r["per_body_byte"] for r in rows)
    verdict = "covers" if worst <= PEAK_BYTES_PER_BODY_BYTE else "DOES NOT cover"
    print(f"\nWorst: {worst:.1f} B per body byte; admission reserves {PEAK_BYTES_PER_BODY_BYTE}, which {verdict} it.")


if __name__ == "__main__":
    main()
