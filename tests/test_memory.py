"""What a request holds of a worker's memory: each endpoint's reserve in the budget, and nothing left behind.

The cyclic garbage collector is paused while requests are answered (service/runtime/gcpause.py), so memory
that only it could free stays taken for as long as requests keep coming: a refusal must leave no reference
cycle that holds its request (marshmallow keeps a refused load's exception in a cycle with its own frame,
and the frames' callers hold the body and the document).
"""

import gc
import platform
import subprocess
import sys
import types

import orjson
import pytest

from service.runtime.memory import LEAST_RESERVE, RESERVES, MemoryBudget, OverBudget, Reserve, reserve_for
from tests.support import ROOT, SEED_GRAPH

LEAF = {"id": "a", "data": 1.0}
INVALID_LOCAL_GRADS = {"nodes": [LEAF, {"id": "r", "data": 0.0, "children": ["a"] * 50, "local_grads": ["x"] * 50}]}
INVALID_DATA = {"nodes": [{"id": k, "data": "x"} for k in range(200)]}
SUBMITTED_INVALID = {
    "nodes": [LEAF, {"id": "r", "data": 0.0, "children": ["a"], "local_grads": [1.0]}],
    "submitted": [{"id": "r", "local_grads": ["x"] * 3}],
}

REFUSALS = {
    "invalid local gradients": ("/v1/evaluate", INVALID_LOCAL_GRADS),
    "invalid data": ("/v1/evaluate", INVALID_DATA),
    "unknown keys": ("/v1/evaluate", {"nodes": [{**LEAF, **{f"k{k}": 0 for k in range(300)}}]}),
    "a batch past its explained entries": (
        "/v1/evaluate/batch",
        {"graphs": [{"nodes": [{"id": 0, "data": "x"}]} for _ in range(1200)]},
    ),
    "a batch's invalid item": ("/v1/evaluate/batch", {"graphs": [INVALID_LOCAL_GRADS, SEED_GRAPH]}),
    "invalid submitted local gradients": ("/v1/grade", SUBMITTED_INVALID),
    "a grade batch's invalid items": ("/v1/grade/batch", {"graphs": [SUBMITTED_INVALID] * 1200}),
    "invalid inputs": ("/v1/expression", {"expression": "a * b", "inputs": {f"x{k}": "v" for k in range(300)}}),
    "an invalid picture request": ("/v1/render?format=json", INVALID_DATA),
    "an unknown picture format": ("/v1/render?format=bmp", SEED_GRAPH),
}


@pytest.mark.parametrize("endpoint, body", list(REFUSALS.values()), ids=list(REFUSALS))
def test_a_refusal_leaves_no_reference_cycle_holding_its_request(client, endpoint, body):
    client.post(endpoint, json=body)  # once first: what the first request imports or caches is not garbage
    gc.collect()
    gc.disable()
    try:
        response = client.post(endpoint, json=body)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        held = sorted(
            {
                f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"
                for frame in gc.garbage
                if isinstance(frame, types.FrameType) and "/service/" in frame.f_code.co_filename
            }
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert response.status_code in (200, 400, 422), response.data[:500]
    assert held == [], f"frames of the service left in reference cycles: {held}"


def test_each_endpoint_reserves_its_own_measured_cost():
    assert set(RESERVES) == {
        "/v1/evaluate",
        "/v1/evaluate/batch",
        "/v1/grade",
        "/v1/grade/batch",
        "/v1/expression",
        "/v1/render",
    }
    assert reserve_for("/v1/grade") is RESERVES["/v1/grade"] and reserve_for("/v1/grade/") is RESERVES["/v1/grade"]
    assert reserve_for("/v1/%65valuate") == LEAST_RESERVE
    for reserve in RESERVES.values():
        assert LEAST_RESERVE.bytes_for(1) <= reserve.bytes_for(1)
        assert LEAST_RESERVE.bytes_for(10**9) <= reserve.bytes_for(10**9)
    assert Reserve(40, 1000).bytes_for(10) == 1000 and Reserve(40, 1000).bytes_for(100) == 4000


def test_a_body_is_admitted_for_its_endpoints_reserve():
    budget = MemoryBudget(10**8, wait_seconds=0)
    with budget.admit_body(1000, "/v1/grade"):
        assert budget.admitted == RESERVES["/v1/grade"].bytes_for(1000) == RESERVES["/v1/grade"].at_least
    assert budget.admitted == 0
    body = 10**8 // RESERVES["/v1/evaluate"].per_body_byte + 1
    assert budget.never_fits(body, "/v1/evaluate")
    with pytest.raises(OverBudget) as refused:
        budget.refuse_if_never_fits(body, "/v1/evaluate")
    assert not refused.value.ever


def test_the_gc_pause_starts_only_once_the_request_is_admitted(make_app):
    """A request waiting for room in the budget does not keep the cyclic collector paused: the pause is
    entered after admission, with the request's reserve already held."""
    app = make_app()
    budget, held_when_paused = app.extensions["valuegraph.memory_budget"], []
    paused = app.extensions["valuegraph.gc_pause"]

    def recording_pause():
        held_when_paused.append(budget.admitted)
        return paused()

    app.extensions["valuegraph.gc_pause"] = recording_pause
    body = orjson.dumps(SEED_GRAPH)
    response = app.test_client().post("/v1/evaluate", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert held_when_paused == [RESERVES["/v1/evaluate"].bytes_for(len(body))]


RETAINED_AFTER_FREEING = """
import sys
from service.runtime.memory import give_freed_blocks_back

if sys.argv[1] == "fixed":
    assert give_freed_blocks_back()

def resident():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))

before = resident()
for _ in range(3):
    block = bytearray(24 * 2**20)
    del block
print(resident() - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator and its mmap threshold")
@pytest.mark.parametrize("mode, keeps_more_than", [("fixed", None), ("glibc's default", 16 * 2**20)])
def test_a_freed_large_block_goes_back_to_the_system(mode, keeps_more_than):
    """What the worker calls as it starts: a large block freed is given back, not kept in the heap. Left to
    glibc's default, the second block of 24 MiB comes from the heap, and stays there once freed."""
    kept = int(
        subprocess.run(
            [sys.executable, "-c", RETAINED_AFTER_FREEING, mode], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    )
    if keeps_more_than is None:
        assert kept < 4 * 2**20
    else:
        assert kept > keeps_more_than
