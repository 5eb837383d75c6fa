"""`python -m bench`: generate the workloads, measure them against their peers, print the table,
write results.md, results/<scale>.json and time_vs_size.png to --out (default: bench/)."""

import argparse
import gc
import os
import random
import sys
import tempfile
from pathlib import Path

import orjson

from bench import load, measure, report
from bench.workloads import SCALES, SEED, Workload, body, large_workloads, random_dag
from service.core import fastpath

NAMES = ("gpt-step", "dag", "chain", "small")
CONNECTIONS = 16


def arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=SCALES, default="full", help="workload sizes (tiny: seconds, for the tests)")
    parser.add_argument("--only", choices=NAMES, help="measure only this workload")
    parser.add_argument("--no-plot", action="store_true", help="skip the time-against-size plot")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="small-graph load generator; auto: wrk where it is installed, else python",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="where the results go")
    return parser.parse_args(argv)


def main(argv=None):
    args = arguments(argv)
    if not fastpath.ACTIVE:
        sys.exit(f"python -m bench: the fast path is not active ({fastpath.WHY_INACTIVE}); `make fastpath` builds it")
    scale = SCALES[args.scale]
    names = [args.only] if args.only else NAMES
    args.out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="valuegraph-bench-") as log_dir:
        log_dir = Path(log_dir)
        workloads = large_workloads(scale, names)
        gc.collect()
        gc.freeze()  # the bench's own heap (bodies, expected answers) is not the peers' garbage to collect
        large = [
            measure.large(w, scale.gpt_repeats if w.name.startswith("gpt-step") else scale.large_repeats, log_dir)
            for w in workloads
        ]
        small = None
        if "small" in names:
            client = args.client if args.client != "auto" else choose_client()
            small = measure.small(scale.load_seconds, scale.load_runs, CONNECTIONS, client, log_dir)
        plot_name = None
        if "dag" in names and not args.no_plot:
            plot_name = "time_vs_size.png"
            plot_time_vs_size(args.out / plot_name, scale, large, log_dir)
    text = report.render(large, small, f"{scale.gpt_repeats} runs (gpt-step) and {scale.large_repeats} (the others)")
    text += (
        f"\n\nThe machine's load average (1 min) was {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
        f"the run, on {os.cpu_count()} cores."
    )
    print(text)
    command = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
    report.write_markdown(args.out / "results.md", text, command, plot_name)
    (args.out / "results").mkdir(exist_ok=True)
    (args.out / "results" / f"{args.scale}.json").write_bytes(
        orjson.dumps({"large": large, "small": small, "machine": report.machine()}, option=orjson.OPT_INDENT_2)
    )


def choose_client():
    if load.wrk_available():
        return "wrk"
    print(
        "wrk is not installed (`apt-get install wrk`): the small-graph load uses the Python client, "
        "which takes more of the CPU the server needs",
        file=sys.stderr,
    )
    return "python"


def plot_time_vs_size(path, scale, large, log_dir):
    """Random DAGs of scale.plot_sizes measured like the DAG workload, plotted with it."""
    points = [
        measure.large(
            Workload(f"random DAG {n:,}", body(random_dag(n, random.Random(SEED))), n), scale.large_repeats, log_dir
        )
        for n in scale.plot_sizes
    ]
    report.plot(path, points + [r for r in large if r["workload"].startswith("random DAG")])


if __name__ == "__main__":
    main()
