"""What a batch of invalid graphs costs beside the same invalid nodes in one graph: `python -m bench.refusals`.

A refusal must cost no more than the answer would: a batch explains its items' problems only until its
answer lists MAX_BATCH_ENTRIES entries, across items, and past that refuses each invalid item without
explaining it. Sent to one gunicorn worker per path (its deadline and memory budget lifted), each body
three times; the service's own time (its request log's `duration_ms`) and the answer's size are reported,
the batch's as a ratio to the one graph's measured in the same run.
"""

import argparse
import statistics
import sys
import tempfile
import uuid

import orjson
import requests

from bench.memory import PATHS, UNBOUNDED, load_average
from bench.server import TAG_HEADER, BenchGunicorn

GRAPHS = 10_000


def invalid_node(k: int) -> dict:
    return {"id": k, "data": "x"}


def bodies(megabytes: float) -> tuple[bytes, bytes, int]:
    """(a batch of GRAPHS graphs of invalid nodes of about `megabytes` MB, the same nodes in one graph, how
    many nodes)."""
    per_graph = max(1, int(megabytes * 1e6 / GRAPHS / len(orjson.dumps(invalid_node(GRAPHS))) - 1))
    batch = orjson.dumps({"graphs": [{"nodes": [invalid_node(k) for k in range(per_graph)]} for _ in range(GRAPHS)]})
    one_graph = orjson.dumps({"nodes": [invalid_node(k) for k in range(per_graph * GRAPHS)]})
    return batch, one_graph, per_graph * GRAPHS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.refusals", description=__doc__)
    parser.add_argument("--megabytes", type=float, default=10.0, help="size of the batch")
    parser.add_argument("--repeat", type=int, default=3, help="times each body is sent")
    args = parser.parse_args(argv)
    batch, one_graph, nodes = bodies(args.megabytes)
    cases = {
        "/v1/evaluate/batch": (f"{GRAPHS:,} graphs of {nodes // GRAPHS} invalid nodes", batch),
        "/v1/evaluate": (f"one graph of the same {nodes:,} invalid nodes", one_graph),
    }
    rows = []
    with tempfile.TemporaryDirectory(prefix="valuegraph-refusals-") as log_dir:
        for path, path_env in PATHS.items():
            with BenchGunicorn(log_dir, workers=1, env={**UNBOUNDED, **path_env}) as server:
                for endpoint, (shape, body) in cases.items():
                    times, answer = [], b""
                    for _ in range(args.repeat):
                        tag = uuid.uuid4().hex
                        response = requests.post(
                            server.base + endpoint,
                            data=body,
                            headers={"Content-Type": "application/json", TAG_HEADER: tag},
                            timeout=600,
                        )
                        times.append(server.request_seconds(tag))
                        answer = response.content
                    row = {
                        "endpoint": endpoint,
                        "shape": shape,
                        "path": path,
                        "body_bytes": len(body),
                        "status": response.status_code,
                        "answer_bytes": len(answer),
                        "seconds": statistics.median(times),
                    }
                    rows.append(row)
                    print(
                        f"  {endpoint} {shape} [{path}]: {row['status']}, {row['seconds']:.2f} s, "
                        f"{row['answer_bytes'] / 1e3:,.1f} kB (load {load_average()})",
                        file=sys.stderr,
                    )
    print("| endpoint | body | path | size | status | answer | time (median) | batch ÷ one graph |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        peer = next(p for p in rows if p["path"] == r["path"] and p["endpoint"] == "/v1/evaluate")
        print(
            f"| `{r['endpoint']}` | {r['shape']} | {r['path']} | {r['body_bytes'] / 1e6:.1f} MB | {r['status']} "
            f"| {r['answer_bytes'] / 1e3:,.1f} kB | {r['seconds']:.2f} s | {r['seconds'] / peer['seconds']:.2f}× |"
        )
    print(f"\nLoad average {load_average()}.")


if __name__ == "__main__":
    main()
