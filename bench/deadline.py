"""How long past VALUEGRAPH_DEADLINE_SECONDS each endpoint answers: `python -m bench.deadline`.

One gunicorn worker per path (the compiled fast path and the reference path), its deadline 1 s and its
memory budget lifted, is sent each endpoint's slowest shapes (bench/memory.py's, as large as --megabytes
makes them), one at a time. The time is the service's own (its request log's `duration_ms`, reading the
body included); the overshoot is that time less the deadline. The goal is an answer within about 1.5 s.
"""

import argparse
import sys
import tempfile
import uuid

import requests

from bench.memory import FAST_ENDPOINTS, PATHS, Shape, all_shapes, load_average
from bench.server import TAG_HEADER, BenchGunicorn

DEADLINE_SECONDS = 1.0
#: The shapes whose work is longest per byte, by endpoint: what a deadline must stop.
SLOWEST = (
    ("/v1/evaluate", "chain of adds"),
    ("/v1/evaluate", "random DAG"),
    ("/v1/evaluate", "invalid data in every node"),
    ("/v1/evaluate", "one long cycle"),
    ("/v1/evaluate/batch", "chains of adds"),
    ("/v1/evaluate/batch", "graphs of invalid data"),
    ("/v1/grade", "a recorded node's local gradients, all wrong"),
    ("/v1/grade", "chain of adds, data and grad all wrong"),
    ("/v1/grade", "random DAG, data and grad all wrong"),
    ("/v1/grade", "1,000 nodes"),
    ("/v1/grade/batch", "small graphs, all wrong"),
    ("/v1/grade/batch", "chains of adds, all wrong"),
    ("/v1/expression", "large inputs map"),
    ("/v1/expression", "the longest expression"),
    ("/v1/render?format=mermaid", "500 nodes"),
    ("/v1/render?format=dot", "500 nodes"),
    ("/v1/render?format=svg", "500 nodes"),
    ("/v1/render?format=json", "too many edges"),
)


def slowest_shapes() -> list[Shape]:
    return [
        shape
        for shape in all_shapes()
        if any(shape.endpoint == endpoint and shape.name.startswith(name) for endpoint, name in SLOWEST)
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.deadline", description=__doc__)
    parser.add_argument("--megabytes", type=float, default=10.0, help="size of each body whose size is not bounded")
    parser.add_argument("--only", default="", help="measure only the shapes whose endpoint or name contains this")
    args = parser.parse_args(argv)
    n = int(args.megabytes * 1e6)
    shapes = [shape for shape in slowest_shapes() if args.only in f"{shape.endpoint} {shape.name}"]
    bodies = {shape: shape.make(n) for shape in shapes}
    env = {"VALUEGRAPH_MEMORY_BUDGET_BYTES": str(10**15), "VALUEGRAPH_DEADLINE_SECONDS": str(DEADLINE_SECONDS)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="valuegraph-deadline-") as log_dir:
        for path, path_env in PATHS.items():
            with BenchGunicorn(log_dir, workers=1, env={**env, **path_env}) as server:
                for shape in shapes:
                    if path == "fast" and not shape.endpoint.startswith(FAST_ENDPOINTS):
                        continue
                    tag = uuid.uuid4().hex
                    response = requests.post(
                        server.base + shape.endpoint,
                        data=bodies[shape],
                        headers={"Content-Type": "application/json", TAG_HEADER: tag},
                        timeout=600,
                    )
                    seconds = server.request_seconds(tag)
                    row = {
                        "endpoint": shape.endpoint,
                        "shape": shape.name,
                        "path": path,
                        "body_bytes": len(bodies[shape]),
                        "status": response.status_code,
                        "seconds": seconds,
                    }
                    rows.append(row)
                    print(
                        f"  {shape.endpoint} {shape.name} [{path}]: {row['status']} after {seconds:.2f} s "
                        f"(load {load_average()})",
                        file=sys.stderr,
                    )
    print(f"Deadline {DEADLINE_SECONDS:g} s (VALUEGRAPH_DEADLINE_SECONDS); the service's own time per request.\n")
    print("| endpoint | shape | path | body | status | time | past the deadline |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['endpoint']}` | {r['shape']} | {r['path']} | {r['body_bytes'] / 1e6:.2f} MB | {r['status']} "
            f"| {r['seconds']:.2f} s | {max(0.0, r['seconds'] - DEADLINE_SECONDS):.2f} s |"
        )
    worst = max(rows, key=lambda r: r["seconds"])
    print(
        f"\nLongest: {worst['seconds']:.2f} s ({worst['endpoint']}, {worst['shape']}, {worst['path']}); "
        f"load average {load_average()}."
    )


if __name__ == "__main__":
    main()
