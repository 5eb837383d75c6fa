"""`make bench` at a tiny size, so that it cannot rot: every workload and peer is in the table, the
numbers are there and sane, the gpt-step answers equal the in-process Value backward. No timing
assertions. The load uses the bench's own Python client, so that neither wrk nor apt is needed."""

import math
import subprocess
import sys

import orjson
import pytest

from bench import refusals
from service.core import fastpath
from tests.support import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    if not fastpath.ACTIVE:
        pytest.skip(f"make bench measures the fast path, which is not active here: {fastpath.WHY_INACTIVE}")
    out = tmp_path_factory.mktemp("bench")
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "tiny", "--client", "python", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout, orjson.loads((out / "results" / "tiny.json").read_bytes()), out


def test_the_table_has_every_workload_peer_and_goal(bench):
    table, _, _ = bench
    for workload in ("gpt-step ops", "gpt-step recorded", "random DAG 2,000", "chain 2,000 deep", "10-node graph"):
        assert workload in table
    for peer in (
        "service end to end",
        "server-side",
        "reference path end to end",
        "reference path server-side",
        "reference path worker per node",
        "service on the reference path",
        "micrograd (gc on)",
        "micrograd (gc paused)",
        "orjson.loads",
        "worker peak",
        "micrograd per node",
        "bare Flask",
        "requests/s",
    ):
        assert peer in table
    for goal in (
        "service end to end / micrograd (gc on)",
        "server-side / orjson.loads",
        "worker peak memory per node",
        "evaluates",
        "small graphs: service / bare Flask req/s",
        "fast path answer = reference path answer",
    ):
        assert goal in table


def test_the_numbers_are_sane(bench):
    _, results, _ = bench
    assert len(results["large"]) == 4
    for r in results["large"]:
        assert r["check"].startswith("ok"), r
        assert r["same_bytes"] and r["reference"]["check"] == r["check"], r
        # gunicorn's clock stops once it is done with the request, a moment after the client has the answer:
        # on a graph that takes milliseconds the server-side median can pass the end-to-end one.
        for path in (r, r["reference"]):
            assert 0 < path["server_seconds"] < 1.5 * path["service_seconds"]
        assert r["orjson_seconds"] > 0
        assert 0 < r["worker_baseline_bytes"] <= r["worker_peak_bytes"]
        for mode in ("on", "paused"):
            micrograd = r[f"micrograd_gc_{mode}"]
            assert micrograd["seconds"] > 0 and micrograd["peak_bytes"] > 0, micrograd
    assert all(r["check"] == "ok: identical to the in-process Value backward" for r in results["large"][:2])
    small = results["small"]
    assert small["client"] == "python" and small["connections"] == 16 and small["workers"] >= 1
    assert math.isfinite(small["service_rps"]) and small["service_rps"] > 0 and small["bare_rps"] > 0
    assert small["reference_rps"] > 0


def test_results_md_and_the_plot_are_written(bench):
    table, _, out = bench
    markdown = (out / "results.md").read_text()
    assert table in markdown and "Machine:" in markdown and "Python 3" in markdown
    assert (out / "time_vs_size.png").read_bytes().startswith(b"\x89PNG")


def test_the_grading_bench_reports_every_class_and_mode(tmp_path):
    from bench import grading

    out = tmp_path / "grading.md"
    assert grading.main(["--graphs", "2", "--out", str(out)]) == 0
    text = out.read_text()
    for mode in grading.MODES:
        assert f"| {mode} |" in text
    assert "Correct classes written differently" in text and "| Kahn's algorithm | grads only |" in text


def run_bench(*args):
    run = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_memory_bench_measures_each_shape_and_says_whether_the_reserve_covers_it():
    table = run_bench("bench.memory", "--megabytes", "0.05", "--only", "/v1/expression", "--paths", "reference")
    for shape in ("large inputs map (valid)", "inputs map of invalid values (refused)", "the longest expression"):
        assert f"| `/v1/expression` | {shape}" in table
    assert "- `/v1/expression`: worst " in table and "admission reserves 24 B per body byte" in table


def test_the_deadline_bench_times_each_slowest_shape_on_both_paths():
    table = run_bench("bench.deadline", "--megabytes", "0.05", "--only", "/v1/evaluate/batch chains")
    assert table.count("| `/v1/evaluate/batch` | chains of adds (valid) |") == 2
    assert "| fast |" in table and "| reference |" in table and "Longest: " in table


def test_the_refusals_bench_compares_a_batch_with_one_graph_and_a_flaw_with_the_valid_graph():
    table = run_bench("bench.refusals", "--megabytes", "0.2", "--nodes", "2000", "--repeat", "1")
    assert table.count("| `/v1/evaluate/batch` | 10,000 graphs of ") == 2
    assert table.count("| `/v1/evaluate` | one graph of the same ") == 2
    assert table.count("| `/v1/evaluate` | 2,000 nodes: valid | ") == 2
    for path in ("fast", "reference"):
        assert f"| 2,000 nodes: valid | {path} | " in table
        assert table.count(f"| {path} | ") == 2 + 1 + len(refusals.FLAWS)
    flawed = [line for line in table.splitlines() if "2,000 nodes: " in line and "nodes: valid" not in line]
    assert len(flawed) == 2 * len(refusals.FLAWS) and all("| 422 |" in line for line in flawed)
