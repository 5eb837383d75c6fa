"""`python -m bench.batch`: graphs per second of a 10-node graph sent 1, 100 and 1,000 per batch
(POST /v1/evaluate/batch, /v1/grade/batch) against one request per graph (POST /v1/evaluate, /v1/grade).

The real gunicorn (gunicorn.conf.py unchanged, a worker per core); 1 and 4 keep-alive HTTP connections
(threads of this process), each sending request after request, bodies serialized beforehand: the same
client for every peer, so the ratio is what batching saves per graph (HTTP, routing, the framing). Writes the table to
bench/batch_results.md (--out) and bench/results/batch.json.

Goals: 1,000 graphs per batch give >= 10x the graphs per second of one request per graph; and, in one
call to the fast path, >= 3x the graphs per worker CPU-second of the same batch answered item by item
(bench/per_item_app.py, the way batches were answered before), served beside it.
"""

import argparse
import http.client
import math
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from bench.report import machine, table
from bench.workloads import small_graph
from tools.server import Gunicorn

BATCH_SIZES = (1, 100, 1000)
GOAL_RATIO = 10.0
GOAL_RATIO_ONE_CALL = 3.0
ITEM_BY_ITEM = "1,000 per batch, item by item"
WORKERS = os.cpu_count() or 1  # gunicorn.conf.py's default: a worker per core
HEADERS = {"Content-Type": "application/json"}


def arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="how long each run sends requests")
    parser.add_argument("--runs", type=int, default=3, help="runs per peer; the table shows the median")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[1, 4], help="keep-alive connections (threads) per peer"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where the results go")
    return parser.parse_args(argv)


def bodies():
    """(kind, single path, batch path, one request's document) for evaluation and for grading; the
    grade submission is the reference with one grad wrong, so every request finds a root cause."""
    graph = {"nodes": small_graph()}
    submitted = [{"id": "a", "data": 2.0, "grad": 0.0}, {"id": "j", "grad": 1.0}]
    return [
        ("evaluate", "/v1/evaluate", "/v1/evaluate/batch", graph),
        ("grade", "/v1/grade", "/v1/grade/batch", {**graph, "submitted": submitted}),
    ]


def check(connection, path, body, batch_size):
    """Send once and make sure every graph of the answer is a 200."""
    connection.request("POST", path, body, HEADERS)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {answer[:300]!r}")
    if batch_size:
        statuses = [result["status"] for result in orjson.loads(answer)["results"]]
        if statuses != [200] * batch_size:
            raise RuntimeError(f"{path}: a graph of the batch was refused: {statuses[:10]}")


def graphs_sent(connection, path, body, graphs_per_request, seconds):
    """Requests sent back to back on one keep-alive connection for `seconds`: (graphs answered, seconds taken)."""
    requests = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        connection.request("POST", path, body, HEADERS)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}")
        requests += 1
        if time.perf_counter() >= deadline:
            return requests * graphs_per_request, time.perf_counter() - start


def workers_cpu_seconds(server):
    """User + system CPU time of gunicorn's workers so far (/proc/PID/stat)."""
    ticks = 0
    for pid in server.worker_pids():
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_peer(server, path, body, graphs_per_request, seconds, connections):
    """`connections` keep-alive connections, each in its own thread, sending back to back:
    (graphs per second, summed over the connections; graphs per second of the workers' CPU time)."""

    def one(_):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        try:
            return graphs_sent(connection, path, body, graphs_per_request, seconds)
        finally:
            connection.close()

    cpu_before = workers_cpu_seconds(server)
    with ThreadPoolExecutor(connections) as pool:
        sent = list(pool.map(one, range(connections)))
    cpu = workers_cpu_seconds(server) - cpu_before
    graphs = sum(count for count, _ in sent)
    return sum(count / elapsed for count, elapsed in sent), graphs / cpu if cpu > 0 else math.inf


def measure(servers, seconds, runs, connection_counts):
    """Every peer once per run, round robin, so that a busy moment of a shared machine falls on all of them.
    `servers`: the service ("service") and the service answering batches item by item ("item by item")."""
    peers = []
    for kind, single_path, batch_path, document in bodies():
        bodies_by_size = [(single_path, orjson.dumps(document), 1, 0, "one request per graph", "service")]
        bodies_by_size += [
            (batch_path, orjson.dumps({"graphs": [document] * n}), n, n, f"{n:,} per batch", "service")
            for n in BATCH_SIZES
        ]
        if kind == "evaluate":
            n = BATCH_SIZES[-1]
            bodies_by_size.append(
                (batch_path, orjson.dumps({"graphs": [document] * n}), n, n, ITEM_BY_ITEM, "item by item")
            )
        for connections in connection_counts:
            for path, body, per_request, batch_size, name, server in bodies_by_size:
                peers.append(
                    {
                        "kind": kind,
                        "connections": connections,
                        "peer": name,
                        "path": path,
                        "server": server,
                        "graphs_per_request": per_request,
                        "body": body,
                        "batch_size": batch_size,
                        "rates": [],
                        "cpu_rates": [],
                    }
                )
    for peer in peers:
        connection = http.client.HTTPConnection("127.0.0.1", servers[peer["server"]].port, timeout=120)
        check(connection, peer["path"], peer["body"], peer["batch_size"])
        connection.close()
    for run in range(runs):
        for peer in peers:
            rate, cpu_rate = run_peer(
                servers[peer["server"]],
                peer["path"],
                peer["body"],
                peer["graphs_per_request"],
                seconds,
                peer["connections"],
            )
            peer["rates"].append(rate)
            peer["cpu_rates"].append(cpu_rate)
        print(f"run {run + 1} of {runs} done", file=sys.stderr, flush=True)
    return [
        {key: value for key, value in peer.items() if key not in ("body", "batch_size", "server")} for peer in peers
    ]


def render(results, seconds, runs, workers):
    rows, goals = [], []
    for kind, connections in dict.fromkeys((r["kind"], r["connections"]) for r in results):
        peers = [r for r in results if (r["kind"], r["connections"]) == (kind, connections)]
        single = statistics.median(peers[0]["rates"])
        single_cpu = statistics.median(peers[0]["cpu_rates"])
        in_one_call = next((r for r in peers if r["peer"] == f"{BATCH_SIZES[-1]:,} per batch"), None)
        item_by_item = next((r for r in peers if r["peer"] == ITEM_BY_ITEM), None)
        for r in peers:
            rate, cpu_rate = statistics.median(r["rates"]), statistics.median(r["cpu_rates"])
            rows.append(
                (
                    kind,
                    connections,
                    r["peer"],
                    f"`POST {r['path']}`",
                    f"{rate:,.0f}",
                    f"{min(r['rates']):,.0f} – {max(r['rates']):,.0f}",
                    f"{rate / single:.1f}×",
                    f"{cpu_rate:,.0f}",
                    f"{cpu_rate / single_cpu:.1f}×",
                )
            )
        if kind == "evaluate":
            for measure_name, key, reference in (
                ("graphs/s", "rates", single),
                ("graphs per worker CPU-second", "cpu_rates", single_cpu),
            ):
                ratio = statistics.median(in_one_call[key]) / reference
                goals.append(
                    (
                        f"{measure_name}, 1,000 per batch / one request per graph, {connections} connection(s)",
                        f"{ratio:.1f}×",
                        f"≥ {GOAL_RATIO:g}×",
                        "met" if ratio >= GOAL_RATIO else "MISSED",
                    )
                )
            ratio = statistics.median(in_one_call["cpu_rates"]) / statistics.median(item_by_item["cpu_rates"])
            goals.append(
                (
                    f"graphs per worker CPU-second, 1,000 per batch in one call / item by item, {connections} "
                    "connection(s)",
                    f"{ratio:.1f}×",
                    f"≥ {GOAL_RATIO_ONE_CALL:g}×",
                    "met" if ratio >= GOAL_RATIO_ONE_CALL else "MISSED",
                )
            )
    return "\n\n".join(
        [
            f"A 10-node graph (bench.workloads.small_graph), gunicorn with {workers} workers, each connection "
            f"sending back to back, medians of {runs} runs of {seconds:g} s each, the peers taking turns. "
            "graphs/s is wall-clock throughput; graphs per worker CPU-second divides the graphs by the CPU time "
            "gunicorn's workers used, which other load on a shared machine does not change. grade: the same "
            "graph with a submission of two nodes, one of them wrong (every answer has a root cause).",
            table(
                (
                    "requests",
                    "connections",
                    "sent as",
                    "route",
                    "graphs/s",
                    "runs' range",
                    "vs one per request",
                    "graphs per worker CPU-s",
                    "vs one per request",
                ),
                rows,
            ),
            table(("goal (evaluate)", "measured", "target", "result"), goals),
        ]
    )


def main(argv=None):
    args = arguments(argv)
    with (
        tempfile.TemporaryDirectory(prefix="valuegraph-bench-batch-") as log_dir,
        Gunicorn(log_dir, workers=WORKERS) as server,
        Gunicorn(log_dir, workers=WORKERS, args=("bench.per_item_app:app",)) as item_by_item,
    ):
        load_before = os.getloadavg()[0]
        results = measure({"service": server, "item by item": item_by_item}, args.seconds, args.runs, args.connections)
    text = render(results, args.seconds, args.runs, WORKERS)
    text += (
        f"\n\nThe machine's load average (1 min) was {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
        f"the run, on {os.cpu_count()} cores: wall-clock figures vary with what else runs."
    )
    print(text)
    command = " ".join(["python -m bench.batch", *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch_results.md").write_text(
        f"# valuegraph benchmark: batches\n\nMachine: {machine()}.\n\nCommand: `{command}`\n\n{text}\n",
        encoding="utf-8",
    )
    (args.out / "results").mkdir(exist_ok=True)
    (args.out / "results" / "batch.json").write_bytes(
        orjson.dumps({"results": results, "machine": machine()}, option=orjson.OPT_INDENT_2)
    )


if __name__ == "__main__":
    main()
