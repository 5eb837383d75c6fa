"""The deadline stops every endpoint's slowest work, in whichever phase it is: each endpoint's slowest shapes
(bench/deadline.py's, which measures how far past the deadline each answers) are answered 504 soon after
it, long before their work would be done. The bound here is loose on purpose (a loaded machine); the figures
are the bench's."""

import random
import time

import pytest

from bench.deadline import slowest_shapes
from bench.memory import grade_request
from bench.workloads import random_dag

DEADLINE_SECONDS = 0.25
#: Far more than the deadline's overshoot, far less than any of these bodies' work without a deadline.
STOPPED_WITHIN_SECONDS = DEADLINE_SECONDS + 8
BODY_BYTES = 4_000_000
#: Shapes whose work at BODY_BYTES takes less than the deadline (pictures are bounded by their own limits).
QUICK = ("/v1/render",)

SHAPES = [shape for shape in slowest_shapes() if not shape.endpoint.startswith(QUICK)]


@pytest.fixture(scope="module")
def bodies():
    return {shape: shape.make(BODY_BYTES) for shape in SHAPES}


@pytest.mark.parametrize("shape", SHAPES, ids=[f"{shape.endpoint} {shape.name}" for shape in SHAPES])
def test_the_slowest_shapes_are_stopped_at_the_deadline(make_app, bodies, shape):
    client = make_app({"DEADLINE_SECONDS": DEADLINE_SECONDS, "MEMORY_BUDGET_BYTES": 10**12}).test_client()
    started = time.monotonic()
    response = client.post(shape.endpoint, data=bodies[shape], headers={"Content-Type": "application/json"})
    took = time.monotonic() - started
    if response.status_code == 504:
        assert response.get_json()["type"] == "/problems/deadline-exceeded"
    else:  # answered before a check found the deadline passed: a refusal, or the fast path's quick work
        assert response.status_code in (200, 422), response.status_code
    assert took < STOPPED_WITHIN_SECONDS, f"answered {response.status_code} after {took:.1f} s"


def test_grading_stops_at_the_deadline_while_it_tries_every_known_mistake(make_app):
    """1,000 nodes, every field wrong: parsed, validated and evaluated at once, then every known mistake
    simulated on the graph, which takes far longer than the deadline; stopped in the grading phase."""
    nodes = random_dag(1000, random.Random(7))  # a graph no earlier test had its predictions kept for
    client = make_app({"DEADLINE_SECONDS": 0.1}).test_client()
    response = client.post("/v1/grade", json=grade_request(nodes))
    assert response.status_code == 504
    assert response.headers["Server-Timing"].rsplit(",", 1)[-1].strip().startswith("grade;")
