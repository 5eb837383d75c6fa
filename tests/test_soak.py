"""The soak's own logic, without Docker (`python -m bench.soak` itself runs in tests/test_deploy.py):
the mix gets the statuses it promises from this tree's app, answers are compared as documented, a
failure is excused only when nginx's log puts it on a killed replica, and memory is judged flat or not."""

import random

import orjson
import pytest

from bench.soak import SOAK_BODY_LIMIT, Kill, Record, Sample, excused, flatness, retries
from bench.soak_traffic import PROBLEM, Answer, InProcess, mismatch, mix, same


@pytest.fixture(scope="module")
def kinds():
    app = InProcess(SOAK_BODY_LIMIT)
    return app, mix(app, SOAK_BODY_LIMIT)


def test_every_request_of_the_mix_gets_the_status_it_promises_from_this_tree(kinds):
    app, mixed = kinds
    assert {kind.exchanges[0].category for kind in mixed.values()} == {"valid", "invalid", "hostile"}
    paths = {exchange.path.split("?")[0] for kind in mixed.values() for exchange in kind.exchanges}
    endpoints = {"/v1/evaluate", "/v1/evaluate/batch", "/v1/grade", "/v1/grade/batch", "/v1/expression", "/v1/render"}
    assert endpoints | {"/", "/docs", "/playground", "/healthz"} <= paths
    wrong = []
    for name, kind in mixed.items():
        assert kind.weight > 0 and kind.exchanges, name
        for number, exchange in enumerate(kind.exchanges):
            if exchange.from_app:
                answer = app.answer(exchange)
                if (error := mismatch(exchange, answer, answer)) is not None:
                    wrong.append(f"{name} #{number}: {error}")
    assert not wrong, wrong
    svg = mixed["/v1/render?format=svg"].exchanges
    assert svg and not any(exchange.from_app for exchange in svg), "Graphviz's text widths are the machine's fonts'"


def problem(detail: str, request_id: str) -> Answer:
    body = {"type": "/problems/invalid-graph", "status": 422, "detail": detail, "request_id": request_id}
    return Answer(422, PROBLEM, orjson.dumps(body))


def test_answers_are_compared_exactly_but_for_a_problems_request_id():
    assert same(problem("A child names no node.", "soak-1"), problem("A child names no node.", "soak-2"))
    assert not same(problem("A child names no node.", "soak-1"), problem("Node ids must be unique.", "soak-1"))
    assert not same(Answer(200, "application/json", b'{"a":1.0}'), Answer(200, "application/json", b'{"a":1}'))
    assert not same(Answer(200, "application/json", b"{}"), Answer(200, "text/plain", b"{}"))
    assert not same(Answer(422, PROBLEM, b"not json"), problem("x", "y"))


def test_a_failure_is_excused_only_in_flight_on_the_killed_replica():
    kill = Kill("vg_valuegraph_2", "172.18.0.2", killed_at=10.0, back_at=16.0)
    failed = Record("k", "valid", "soak-a", started=9.5, ended=10.5, failure="ChunkedEncodingError")
    on_victim = {"soak-a": {"upstream": "172.18.0.2:8000", "status": 200}}
    on_survivor = {"soak-a": {"upstream": "172.18.0.3:8000", "status": 502}}
    look_alike = {"soak-a": {"upstream": "172.18.0.21:8000", "status": 502}}
    assert excused(failed, [kill], on_victim) is kill
    assert excused(failed, [kill], {}) is kill  # nginx logged nothing
    assert excused(failed, [kill], on_survivor) is None
    assert excused(failed, [kill], look_alike) is None
    later = Record("k", "valid", "soak-a", started=11.0, ended=12.0, failure="502")
    assert excused(later, [kill], on_victim) is None


def test_retries_away_from_a_killed_replica_are_told_from_others():
    kill = Kill("vg_valuegraph_2", "172.18.0.2", killed_at=10.0, back_at=16.0)
    records = {
        "soak-a": Record("k", "valid", "soak-a", 10.2, 11.4, None),
        "soak-b": Record("k", "valid", "soak-b", 100.0, 100.2, None),
        "soak-c": Record("k", "valid", "soak-c", 100.0, 100.2, "wrong"),
    }
    lines = {
        "soak-a": {"upstream": "172.18.0.2:8000, 172.18.0.3:8000", "upstream_status": "502, 200"},
        "soak-b": {"upstream": "172.18.0.3:8000, 172.18.0.2:8000", "upstream_status": "502, 200"},
        "soak-c": {"upstream": "172.18.0.3:8000", "upstream_status": "200"},
    }
    counted = retries(lines, records, [kill])
    assert counted["away_from_a_killed_replica"] == {"answered right": 1, "failed": 0}
    assert counted["otherwise"] == {"answered right": 1, "failed": 0}
    assert counted["otherwise_upstream_statuses"] == {"502, 200": 1}


def series(megabytes_at, seconds=600, every=5):
    rng = random.Random(1)
    return [
        Sample(t, "vg_valuegraph_1", 0, int((megabytes_at(t) + rng.uniform(-2, 2)) * 2**20), None)
        for t in range(0, seconds + 1, every)
    ]


def test_memory_is_flat_when_its_last_two_thirds_do_not_grow():
    warming_then_flat = series(lambda t: 100 + min(t, 120) * 0.8)  # +96 MiB in the first 2 minutes, then level
    assert flatness(warming_then_flat)["verdict"] == "flat"
    leaking = series(lambda t: 200 + t * 0.05)  # 3 MiB a minute: +20 MiB over the last 400 s of 600
    judged = flatness(leaking)
    assert judged["verdict"] == "growing" and judged["slope_mib_per_hour"] == pytest.approx(180, rel=0.1)
    assert flatness(series(lambda t: 100, seconds=120))["verdict"].startswith("not judged")
