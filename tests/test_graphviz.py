"""format=svg runs Graphviz's dot (service/http/graphviz.py): here against stand-in programs put first
on PATH, each playing one way dot can go (missing, slow, failing, flooding, echoing), and against the
real dot where it is installed."""

import os
import shutil
import time

import orjson
import pytest
import requests

from service.core.deadline import Deadline, DeadlineExceeded
from service.http import graphviz
from tests.support import SEED_GRAPH
from tools.server import gunicorn_server

PATH = "/v1/render"
REAL_DOT = shutil.which("dot")


def stand_in(directory, script: str) -> None:
    """A program named dot in `directory` that runs `script` with /bin/sh."""
    program = directory / "dot"
    program.write_text(f"#!/bin/sh\nPATH=/usr/bin:/bin\n{script}\n")
    program.chmod(0o755)


@pytest.fixture
def dot_path(tmp_path, monkeypatch):
    """PATH holding only `tmp_path`: a stand-in dot is found there, or no dot at all."""
    monkeypatch.setenv("PATH", str(tmp_path))
    return tmp_path


def svg_of(client, query="?format=svg"):
    return client.post(PATH + query, data=orjson.dumps(SEED_GRAPH), content_type="application/json")


def test_without_graphviz_svg_is_406_and_the_text_formats_still_answer(client, dot_path, conforms):
    response = svg_of(client)
    conforms(PATH, "post", response.status_code, response.content_type, response.data)
    problem = response.get_json()
    assert (problem["status"], problem["type"]) == (406, "/problems/format-unavailable")
    assert "Graphviz's dot, which is not installed" in problem["detail"]
    assert "format=mermaid and format=dot" in problem["detail"]
    assert problem["errors"][0]["field"] == "format"
    for picture_format in ("mermaid", "dot", "json"):
        assert svg_of(client, f"?format={picture_format}").status_code == 200


def test_the_deadline_stops_a_slow_dot_and_kills_it(make_app, dot_path):
    stand_in(dot_path, f"echo $$ > {dot_path}/pid\nexec sleep 30")
    client = make_app({"DEADLINE_SECONDS": 0.5}).test_client()
    started = time.monotonic()
    problem = svg_of(client).get_json()
    assert time.monotonic() - started < 5
    assert (problem["status"], problem["type"]) == (504, "/problems/deadline-exceeded")
    pid = int((dot_path / "pid").read_text())
    assert not os.path.exists(f"/proc/{pid}"), "dot was left running (or unreaped)"


def test_dot_has_a_time_limit_of_its_own_within_the_deadline(make_app, dot_path):
    stand_in(dot_path, "exec sleep 30")
    client = make_app({"GRAPHVIZ_SECONDS": 0.3}).test_client()
    started = time.monotonic()
    problem = svg_of(client).get_json()
    assert time.monotonic() - started < 5
    assert (problem["status"], problem["type"]) == (422, "/problems/graph-too-large-to-draw")
    assert "within 0.3 seconds (VALUEGRAPH_GRAPHVIZ_SECONDS)" in problem["detail"]
    assert "format=dot" in problem["detail"]


def test_dot_runs_with_its_memory_limited_before_it_reads_its_input(make_app, dot_path):
    stand_in(dot_path, 'cat > /dev/null\necho "$(grep "Max data size" /proc/$$/limits)" >&2\nexit 1')
    client = make_app({"GRAPHVIZ_MEMORY_BYTES": 50_000_000}).test_client()
    detail = svg_of(client).get_json()["detail"]
    assert "Max data size 50000000 50000000 bytes" in " ".join(detail.split())


def test_dots_memory_is_held_in_the_workers_budget_while_it_runs(make_app, dot_path):
    stand_in(dot_path, "exec cat")
    client = make_app({"MEMORY_BUDGET_BYTES": 50_000_000, "GRAPHVIZ_MEMORY_BYTES": 60_000_000}).test_client()
    problem = svg_of(client).get_json()
    assert problem["type"] == "/problems/over-memory-budget" and "60,000,000" in problem["detail"]
    assert svg_of(client, "?format=dot").status_code == 200


def test_a_dot_that_dies_of_a_signal_is_taken_to_have_run_out_of_memory(client, dot_path):
    stand_in(dot_path, "cat > /dev/null\nkill -SEGV $$")
    problem = svg_of(client).get_json()
    assert (problem["status"], problem["type"]) == (422, "/problems/graph-too-large-to-draw")
    assert "(VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES)" in problem["detail"]


def test_a_failing_dot_is_a_503_quoting_its_first_error_line(client, dot_path):
    stand_in(dot_path, "cat > /dev/null\necho 'Error: <stdin>: syntax error in line 1' >&2\necho more >&2\nexit 1")
    problem = svg_of(client).get_json()
    assert (problem["status"], problem["type"]) == (503, "/problems/drawing-failed")
    assert "dot exited with status 1: Error: <stdin>: syntax error in line 1" in problem["detail"]
    assert "more" not in problem["detail"]


def test_a_flood_of_output_is_cut_off_at_the_bound(client, dot_path):
    stand_in(dot_path, "head -c 500000000 /dev/zero")
    started = time.monotonic()
    problem = svg_of(client).get_json()
    assert time.monotonic() - started < 10
    assert (problem["status"], problem["type"]) == (422, "/problems/graph-too-large-to-draw")
    assert problem["errors"][0]["field"] == "format"


def test_a_large_input_and_output_pass_whole_both_ways(dot_path):
    """dot reads while it writes: the exchange must not wait on one pipe while the other fills."""
    stand_in(dot_path, "exec cat")
    data = os.urandom(3_000_000)
    assert graphviz.draw_svg(data, Deadline(30).check, len(data), 30, 1 << 30) == data
    with pytest.raises(graphviz.OutputTooLarge):
        graphviz.draw_svg(data, Deadline(30).check, len(data) - 1, 30, 1 << 30)


def test_the_deadline_is_checked_while_writing_to_a_dot_that_does_not_read(dot_path):
    stand_in(dot_path, "exec sleep 30")
    deadline = Deadline(0.3)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        graphviz.draw_svg(b"x" * 10_000_000, deadline.check, 1 << 20, 30, 1 << 30)
    assert time.monotonic() - started < 3


needs_graphviz = pytest.mark.skipif(REAL_DOT is None, reason="Graphviz's dot is not installed (make system-tools)")


@needs_graphviz
def test_a_graph_that_would_take_dot_gigabytes_is_stopped_at_its_memory_limit(client):
    """A chain that one leaf feeds all along: dot's layout of it grew past 800 MB in 20 s, unbounded."""
    nodes = [{"id": 0, "data": 1.0}] + [{"id": k, "op": "add", "children": [k - 1, 0]} for k in range(1, 500)]
    started = time.monotonic()
    response = client.post(PATH + "?format=svg", data=orjson.dumps({"nodes": nodes}), content_type="application/json")
    assert time.monotonic() - started < 10
    problem = response.get_json()
    assert (problem["status"], problem["type"]) == (422, "/problems/graph-too-large-to-draw")
    assert "(VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES)" in problem["detail"]


@needs_graphviz
def test_the_real_dot_draws_a_picture_larger_than_a_pipe(client):
    nodes = [{"id": 0, "data": 0.5, "label": "x" * 256}]
    nodes += [{"id": k, "op": "mul", "children": [k - 1, k - 1], "label": f"{k:03}" * 80} for k in range(1, 400)]
    response = client.post(PATH + "?format=svg", data=orjson.dumps({"nodes": nodes}), content_type="application/json")
    assert response.status_code == 200 and response.data.rstrip().endswith(b"</svg>")
    assert len(response.data) > 1 << 20


# --- the real server ---------------------------------------------------------------------------------


@pytest.mark.slow
@needs_graphviz
def test_the_real_server_draws_svg_and_times_its_phases(live_server):
    response = requests.post(f"{live_server}{PATH}?format=svg", json=SEED_GRAPH, timeout=60)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("image/svg+xml")
    assert response.text.rstrip().endswith("</svg>")
    assert "draw;dur=" in response.headers["Server-Timing"] and "graphviz;dur=" in response.headers["Server-Timing"]


@pytest.mark.slow
def test_a_real_server_without_graphviz_says_so(tmp_path):
    with gunicorn_server(tmp_path, PATH=str(tmp_path)) as server:
        response = requests.post(f"{server.base}{PATH}?format=svg", json=SEED_GRAPH, timeout=60)
        assert response.status_code == 406 and response.json()["type"] == "/problems/format-unavailable"
        assert requests.post(f"{server.base}{PATH}?format=dot", json=SEED_GRAPH, timeout=60).status_code == 200
