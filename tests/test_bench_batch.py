"""`python -m bench.batch` at a tiny duration, so that it cannot rot: every peer is measured, its
numbers are there, the goal is judged. No timing assertions."""

import subprocess
import sys

import orjson
import pytest

from tests.support import ROOT


@pytest.mark.slow
def test_the_batch_bench_measures_every_peer_and_judges_the_goal(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.batch",
            "--seconds",
            "0.2",
            "--runs",
            "1",
            "--connections",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    for peer in ("one request per graph", "1 per batch", "100 per batch", "1,000 per batch"):
        assert run.stdout.count(f"| {peer} |") == 2  # evaluate and grade
    assert run.stdout.count("| 1,000 per batch, item by item |") == 1  # evaluate only
    # wall-clock and CPU against one request per graph; CPU of a batch in one call against item by item
    assert run.stdout.count("| met |") + run.stdout.count("| MISSED |") == 3
    assert (tmp_path / "batch_results.md").read_text().count("POST /v1/evaluate/batch") == 4
    results = orjson.loads((tmp_path / "results" / "batch.json").read_bytes())["results"]
    assert len(results) == 9
    assert all(len(r["rates"]) == len(r["cpu_rates"]) == 1 and r["rates"][0] > 0 < r["cpu_rates"][0] for r in results)
