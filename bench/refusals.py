"""What refusals cost beside answers: `python -m bench.refusals`.

A refusal must cost no more than the answer would. Two comparisons, each on both paths:
- a batch of invalid graphs beside the same invalid nodes in one graph: a batch explains its items'
  problems only until its answer lists MAX_BATCH_ENTRIES entries, across items, and past that refuses each
  invalid item without explaining it;
- a large valid graph (a chain of adds) beside the same graph with one flaw: a refusal of the one graph
  beside its answer.
Sent to one gunicorn worker per path (its deadline and memory budget lifted), each body `--repeat` times;
the service's own time (its request log's `duration_ms`) and the answer's size are reported, each as a
ratio to its peer measured in the same run.
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


def chain(nodes: int) -> list[dict]:
    """A chain of adds, each node adding the leaf to the one before: the graph every flaw is made in."""
    return [{"id": 0, "data": 1.5}] + [{"id": k, "op": "add", "children": [k - 1, 0]} for k in range(1, nodes)]


#: One flaw each, in a graph otherwise valid; what each costs to find is what the reference path pays.
FLAWS = {
    "the last node names a child no node has": lambda g: g[-1].update(children=[len(g) + 5, 0]),
    "the last node has an unknown op": lambda g: g[-1].update(op="nope"),
    "the last node repeats the fourth's id": lambda g: g[-1].update(id=3),
    "the first add's child is the last node (a cycle through every node)": lambda g: g[1].update(
        children=[len(g) - 1, 0]
    ),
    "a leaf no node uses beside the output (no one output)": lambda g: g.append({"id": len(g), "data": 2.0}),
}


#: Each table's title and the name of its last column, the ratio to its peer.
BATCH_TABLE = ("A batch of invalid graphs beside the same invalid nodes in one graph:", "batch ÷ one graph")
FLAW_TABLE = (
    "A large graph with one flaw beside the same graph valid (a chain of adds):",
    "÷ the valid graph's answer",
)


def flawed_bodies(nodes: int) -> dict[str, bytes]:
    """The valid chain's body ("valid"), and one body per flaw."""
    bodies = {"valid": orjson.dumps({"nodes": chain(nodes)})}
    for flaw, make in FLAWS.items():
        graph = chain(nodes)
        make(graph)
        bodies[flaw] = orjson.dumps({"nodes": graph})
    return bodies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.refusals", description=__doc__)
    parser.add_argument("--megabytes", type=float, default=10.0, help="size of the batch")
    parser.add_argument("--nodes", type=int, default=1_000_000, help="size of the graph a flaw is made in")
    parser.add_argument("--repeat", type=int, default=3, help="times each body is sent")
    args = parser.parse_args(argv)
    batch, one_graph, nodes = bodies(args.megabytes)
    one = f"one graph of the same {nodes:,} invalid nodes"
    valid = f"{args.nodes:,} nodes: valid"
    # (table, endpoint, shape, body, the shape of the peer its time is divided by)
    cases = [
        (BATCH_TABLE, "/v1/evaluate/batch", f"{GRAPHS:,} graphs of {nodes // GRAPHS} invalid nodes", batch, one),
        (BATCH_TABLE, "/v1/evaluate", one, one_graph, one),
    ]
    cases += [
        (FLAW_TABLE, "/v1/evaluate", f"{args.nodes:,} nodes: {flaw}", body, valid)
        for flaw, body in flawed_bodies(args.nodes).items()
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="valuegraph-refusals-") as log_dir:
        for path, path_env in PATHS.items():
            with BenchGunicorn(log_dir, workers=1, env={**UNBOUNDED, **path_env}) as server:
                for table, endpoint, shape, body, peer in cases:
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
                        "table": table,
                        "peer": peer,
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
    for k, (title, ratio) in enumerate((BATCH_TABLE, FLAW_TABLE)):
        print(("\n" if k else "") + title + "\n")
        print(f"| endpoint | body | path | size | status | answer | time (median) | {ratio} |")
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["table"] == (title, ratio):
                print(_row(r, next(p for p in rows if p["path"] == r["path"] and p["shape"] == r["peer"])))
    print(f"\nLoad average {load_average()}.")


def _row(r: dict, peer: dict) -> str:
    return (
        f"| `{r['endpoint']}` | {r['shape']} | {r['path']} | {r['body_bytes'] / 1e6:.1f} MB | {r['status']} "
        f"| {r['answer_bytes'] / 1e3:,.1f} kB | {r['seconds']:.2f} s | {r['seconds'] / peer['seconds']:.2f}× |"
    )


if __name__ == "__main__":
    main()
