"""Each workload measured against its peers; results are plain dicts, for the report and the JSON."""

import math
import os
import statistics
import sys

import orjson

from bench import load, peers
from bench.server import BenchGunicorn as Gunicorn
from bench.workloads import body, small_graph


def progress(message):
    print(message, file=sys.stderr, flush=True)


PATHS = {"fast": "1", "reference": "0"}  # VALUEGRAPH_FAST_PATH for each path


def service(log_dir, workers, path, **kwargs):
    """gunicorn serving `path` ("fast" or "reference"); fails loudly when /readyz says another path
    answers (for "fast": the C extension is not built; `make fastpath`)."""
    return Gunicorn(log_dir, workers, env={"VALUEGRAPH_FAST_PATH": PATHS[path]}, expect_path=path, **kwargs)


def large(workload, repeats, log_dir):
    """The service on each path (end to end and server-side), micrograd (gc on and paused),
    orjson.loads, and memory.

    The service runs in a fresh gunicorn with one worker, so the worker's high-water mark after the
    first request is this workload's peak; its baseline is taken after a small warm-up request.
    The fast path's numbers are the service's (the keys without a prefix); the reference path's are
    under "reference"; "same_bytes" says whether their answers are equal byte for byte."""
    progress(f"{workload.name}: {workload.nodes:,} nodes, {len(workload.body) / 1e6:.1f} MB")
    result = {"workload": workload.name, "nodes": workload.nodes, "body_bytes": len(workload.body)}
    digests, floors = {}, []
    for path in PATHS:
        measured, digests[path] = serve(workload, repeats, log_dir, path, floors if path == "fast" else None)
        if path == "fast":
            result.update(measured)
        else:
            result[path] = measured
        progress(
            f"  {path} path: {measured['service_seconds']:.3f} s end to end, {measured['server_seconds']:.3f} s "
            f"server-side; {measured['check']}"
        )
    result["same_bytes"] = digests["fast"] == digests["reference"]
    progress(f"  the two paths' answers are {'' if result['same_bytes'] else 'NOT '}the same bytes")
    result["orjson_seconds"] = statistics.median(floors)
    for mode in ("on", "paused"):
        result[f"micrograd_gc_{mode}"] = peers.micrograd(workload.body, repeats, mode)
        progress(f"  micrograd, gc {mode}: {result[f'micrograd_gc_{mode}']}")
    if workload.deep:
        result["micrograd_default_recursion_limit"] = peers.micrograd(workload.body, 1, "on", "default")
        progress(f"  micrograd, Python's default recursion limit: {result['micrograd_default_recursion_limit']}")
    return result


def serve(workload, repeats, log_dir, path, floors=None):
    """One path's medians, memory and check, and the set of its answers' digests. With `floors`, a
    list, orjson.loads of the body is timed right after each request and appended to it: on a shared
    machine the load changes from minute to minute, and the ratio of the two is what the goal is."""
    result, digests = {}, []
    with service(log_dir, 1, path) as server:
        peers.post(server, body(small_graph()))
        result["worker_baseline_bytes"] = server.worker_memory("VmRSS")
        end_to_end, server_side = [], []
        for i in range(repeats):
            seconds, server_seconds, status, answer = peers.post(server, workload.body, raw=digests)
            if i == 0:
                # The kernel syncs a thread's RSS counters lazily: a peak read soon after the baseline
                # can be a few pages below it.
                peak = server.worker_memory("VmHWM")
                result["worker_peak_bytes"] = max(peak, result["worker_baseline_bytes"])
                result["check"] = check(workload, status, answer)
            del answer
            end_to_end.append(seconds)
            server_side.append(server_seconds)
            if floors is not None:
                floors.append(peers.orjson_floor(workload.body, 1))
    result["service_seconds"] = statistics.median(end_to_end)
    result["server_seconds"] = statistics.median(server_side)
    return result, sorted(set(digests))


def check(workload, status, answer):
    """ "ok", or what is wrong with the service's answer."""
    if status != 200:
        return f"status {status}: {answer.get('detail')}"
    nodes = answer["nodes"]
    if len(nodes) != workload.nodes:
        return f"{len(nodes)} nodes answered for {workload.nodes}"
    if not all(math.isfinite(n["data"]) and math.isfinite(n["grad"]) for n in nodes):
        return "a number is not finite"
    if workload.expected is not None:
        differ = sum((n["data"], n["grad"]) != expected for n, expected in zip(nodes, workload.expected))
        if differ:
            return f"{differ} nodes differ from the in-process Value backward"
        return "ok: identical to the in-process Value backward"
    return "ok"


def small(load_seconds, runs, connections, client, log_dir):
    """Requests per second of the service and of the bare Flask endpoint, the same load on each,
    alternating runs so that drift in the machine touches both alike; medians.

    Each run opens its connections anew; the kernel spreads them over the workers' sockets
    (gunicorn.conf.py's reuse_port), not always evenly, hence several runs."""
    workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
    request_file, answer_file = log_dir / "small.json", log_dir / "small-answer.json"
    request_file.write_bytes(body(small_graph()))
    generate = load.wrk if client == "wrk" else load.python_client
    progress(f"small graphs: {workers} workers, {connections} connections, {client}")
    with service(log_dir, workers, "fast") as fast, service(log_dir, workers, "reference") as reference:
        _, _, status, answer = peers.post(fast, request_file.read_bytes())
        if status != 200:
            raise RuntimeError(f"the service refused the small graph: {answer}")
        answer_file.write_bytes(orjson.dumps(answer))
        with Gunicorn(log_dir, workers, app="bench.bare_app:app", env={"BENCH_BARE_BODY": str(answer_file)}) as bare:
            servers = (("service", fast), ("reference", reference), ("bare", bare))
            rates = {name: [] for name, _ in servers}
            for _, server in servers:  # warm-up
                generate(server.port, request_file, connections, 1)
            for _ in range(runs):
                for name, server in servers:
                    rates[name].append(generate(server.port, request_file, connections, load_seconds))
    result = {
        "workers": workers,
        "connections": connections,
        "client": client,
        "seconds": load_seconds,
        "runs": runs,
        "service_rps": statistics.median(rates["service"]),
        "reference_rps": statistics.median(rates["reference"]),
        "bare_rps": statistics.median(rates["bare"]),
        "service_rps_runs": rates["service"],
        "reference_rps_runs": rates["reference"],
        "bare_rps_runs": rates["bare"],
    }
    progress(
        f"  service {result['service_rps']:.0f} req/s (reference path {result['reference_rps']:.0f}), "
        f"bare Flask {result['bare_rps']:.0f} req/s"
    )
    return result
