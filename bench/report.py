"""The bench's table (Markdown, printed and written to results.md), its goals, and the plot."""

import datetime
import os
import platform

#: The service end to end against micrograd in-process: with its garbage collector on, and paused (by workload).
GOAL_RATIO_MICROGRAD = 0.5
GOAL_RATIO_MICROGRAD_PAUSED = {"gpt-step": 0.3, "random DAG": 0.25}
#: The service's own time against orjson.loads of the same body alone.
GOAL_RATIO_ORJSON = 1.0
GOAL_BYTES_PER_NODE = 350
GOAL_SMALL_SHARE = 0.80


def seconds(value):
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def micrograd_time(peer):
    return seconds(peer["seconds"]) if "seconds" in peer else f"failed: {peer['error']}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def goals(large, small):
    """(goal, workload, measured, target, pass) for every goal that the measured workloads reach."""
    rows = []
    for r in large:
        paused_goal = next((g for w, g in GOAL_RATIO_MICROGRAD_PAUSED.items() if r["workload"].startswith(w)), None)
        if paused_goal is not None:
            for mode, goal in (("on", GOAL_RATIO_MICROGRAD), ("paused", paused_goal)):
                peer = r[f"micrograd_gc_{mode}"]
                if "seconds" in peer:
                    ratio = r["service_seconds"] / peer["seconds"]
                    rows.append(
                        (
                            f"service end to end / micrograd (gc {mode})",
                            r["workload"],
                            f"{ratio:.2f}",
                            f"≤ {goal}",
                            ratio <= goal,
                        )
                    )
    for r in large:
        ratio = r["server_seconds"] / r["orjson_seconds"]
        rows.append(
            (
                "server-side / orjson.loads",
                r["workload"],
                f"{ratio:.2f}",
                f"≤ {GOAL_RATIO_ORJSON:g}",
                ratio <= GOAL_RATIO_ORJSON,
            )
        )
    for r in large:
        if r["workload"].startswith("random DAG"):
            per_node = worker_bytes_per_node(r)
            rows.append(
                (
                    "worker peak memory per node",
                    r["workload"],
                    f"{per_node:.0f} B",
                    f"≤ {GOAL_BYTES_PER_NODE} B",
                    per_node <= GOAL_BYTES_PER_NODE,
                )
            )
    for r in large:
        rows.append(
            (
                "fast path answer = reference path answer",
                r["workload"],
                "the same bytes" if r["same_bytes"] else "DIFFERENT bytes",
                "the same bytes",
                r["same_bytes"],
            )
        )
    for r in large:
        if r["workload"].startswith("chain"):
            rows.append(
                ("evaluates", r["workload"], r["check"], "200, every number finite", r["check"].startswith("ok"))
            )
        elif r["workload"].startswith("gpt-step"):
            rows.append(
                ("answer", r["workload"], r["check"], "identical to in-process Value", r["check"].startswith("ok"))
            )
    if small:
        share = small["service_rps"] / small["bare_rps"]
        rows.append(
            (
                "small graphs: service / bare Flask req/s",
                "10-node graph",
                f"{share:.0%}",
                f"≥ {GOAL_SMALL_SHARE:.0%}",
                share >= GOAL_SMALL_SHARE,
            )
        )
    return [(*row[:4], "pass" if row[4] else "FAIL") for row in rows]


def worker_bytes_per_node(r, nodes=None):
    """The worker's peak above its baseline, per node: what the request cost in memory."""
    return (r["worker_peak_bytes"] - r["worker_baseline_bytes"]) / (nodes or r["nodes"])


def render(large, small, repeats):
    parts = []
    if large:
        parts += [times_table(large, repeats), memory_table(large)]
    if small:
        parts.append(small_table(small))
    parts.append("Goals:\n\n" + table(("goal", "workload", "measured", "target", "result"), goals(large, small)))
    return "\n\n".join(parts)


def times_table(large, repeats):
    rows = [
        (
            r["workload"],
            f"{r['nodes']:,}",
            f"{r['body_bytes'] / 1e6:.1f} MB",
            seconds(r["service_seconds"]),
            seconds(r["server_seconds"]),
            seconds(r["reference"]["service_seconds"]),
            seconds(r["reference"]["server_seconds"]),
            micrograd_time(r["micrograd_gc_on"]),
            micrograd_time(r["micrograd_gc_paused"]),
            seconds(r["orjson_seconds"]),
        )
        for r in large
    ]
    text = (
        f"Large graphs, medians of {repeats}; the service answers on the fast path, the reference path is the "
        "same service with VALUEGRAPH_FAST_PATH=0:\n\n"
    ) + table(
        (
            "workload",
            "nodes",
            "body",
            "service end to end",
            "server-side",
            "reference path end to end",
            "reference path server-side",
            "micrograd (gc on)",
            "micrograd (gc paused)",
            "orjson.loads (gc paused)",
        ),
        rows,
    )
    for r in large:
        if "micrograd_default_recursion_limit" in r:
            text += f"\n\nmicrograd with Python's default recursion limit on the {r['workload']}: " + micrograd_time(
                r["micrograd_default_recursion_limit"]
            )
    return text


def memory_table(large):
    def micrograd_per_node(r):
        peer = r["micrograd_gc_on"]
        return f"{peer['peak_bytes'] / r['nodes']:.0f} B" if "peak_bytes" in peer else "-"

    rows = [
        (
            r["workload"],
            f"{r['worker_baseline_bytes'] / 2**20:.0f} MiB",
            f"{r['worker_peak_bytes'] / 2**20:.0f} MiB",
            f"{worker_bytes_per_node(r):.0f} B",
            f"{worker_bytes_per_node(r['reference'], r['nodes']):.0f} B",
            micrograd_per_node(r),
        )
        for r in large
    ]
    return (
        "Memory: the service's one worker (baseline VmRSS, peak VmHWM, peak above baseline per node) and micrograd "
        "in a fresh process (peak above baseline per node, parsed JSON included):\n\n"
        + table(
            (
                "workload",
                "worker baseline",
                "worker peak",
                "worker per node",
                "reference path worker per node",
                "micrograd per node (gc on)",
            ),
            rows,
        )
    )


def small_table(small):
    def spread(runs):
        return f"{min(runs):,.0f} – {max(runs):,.0f}"

    rows = [
        ("service, 10-node graph", f"{small['service_rps']:,.0f}", spread(small["service_rps_runs"])),
        (
            "service on the reference path, 10-node graph",
            f"{small['reference_rps']:,.0f}",
            spread(small["reference_rps_runs"]),
        ),
        ("bare Flask, constant answer", f"{small['bare_rps']:,.0f}", spread(small["bare_rps_runs"])),
    ]
    return (
        f"Small graphs: {small['connections']} keep-alive connections, {small['client']}, {small['workers']} gunicorn "
        f"workers (WEB_CONCURRENCY), median of {small['runs']} runs of {small['seconds']:g} s:\n\n"
        + table(("peer", "requests/s", "runs' range"), rows)
    )


def machine():
    """CPU, cores, memory, Python and date, for results.md."""
    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), platform.machine()
        )
    with open("/proc/meminfo") as meminfo:
        memory_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory_kib / 2**20:.0f} GiB; Python {platform.python_version()}; "
        f"{datetime.date.today().isoformat()}"
    )


def write_markdown(path, text, command, plot_name):
    plot = f"\n\n![time against graph size]({plot_name})" if plot_name else ""
    path.write_text(
        f"# valuegraph benchmark\n\nMachine: {machine()}.\n\nCommand: `{command}`\n\n{text}{plot}\n", encoding="utf-8"
    )


def plot(path, points):
    """Time against nodes, log-log: the service end to end on each path, micrograd (gc on and paused)
    and orjson.loads."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    sizes = [r["nodes"] for r in points]
    series = [
        ("service (fast path), end to end", [r["service_seconds"] for r in points]),
        ("service on the reference path, end to end", [r["reference"]["service_seconds"] for r in points]),
        ("micrograd, gc on", [r["micrograd_gc_on"].get("seconds") for r in points]),
        ("micrograd, gc paused", [r["micrograd_gc_paused"].get("seconds") for r in points]),
        ("orjson.loads (floor)", [r["orjson_seconds"] for r in points]),
    ]
    for label, times in series:
        axes.plot(sizes, times, marker="o", label=label)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="nodes (random DAG)",
        ylabel="seconds (median)",
        title="valuegraph: time against graph size",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)
