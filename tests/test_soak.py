"""The soak's own logic, without Docker (`python -m bench.soak` itself runs in tests/test_deploy.py):
the mix gets the statuses it promises from this tree's app, answers are compared as documented, a
failure is excused only when nginx's log puts it on a killed replica, and memory is judged flat or not."""

import random
import socket
import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict

import orjson
import pytest
import requests

import bench.soak_traffic
from bench.soak import (
    SOAK_BODY_LIMIT,
    Clock,
    Kill,
    Killer,
    MemorySampler,
    Record,
    Sample,
    Traffic,
    analyse,
    excused,
    flatness,
    markdown,
    passed,
    retries,
    start_middle_end,
)
from bench.soak_traffic import (
    PROBLEM,
    Answer,
    Exchange,
    InProcess,
    mismatch,
    mix,
    no_answer,
    same,
    send,
    wrong_answer,
)


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


def test_a_wrong_answer_is_classified_by_what_differs():
    expected = problem("A child names no node.", "soak-1")
    assert wrong_answer(problem("A child names no node.", "soak-2"), expected) is None
    assert wrong_answer(Answer(502, PROBLEM, b"{}"), expected) == "5xx"
    assert wrong_answer(Answer(200, "application/json", b"{}"), expected) == "another status"
    assert wrong_answer(Answer(422, "text/html", b"<p>"), expected) == "another media type"
    assert wrong_answer(problem("Node ids must be unique.", "soak-1"), expected) == "another body"


@contextmanager
def peer(answer_with: bytes | None):
    """A server on loopback that reads a request's head, writes `answer_with` (None: nothing, and holds
    the connection) and closes."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                if answer_with is None:
                    done.wait(10)
                else:
                    connection.sendall(answer_with)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        done.set()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("answer_with", "kind"),
    [
        (b"", "no answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", "cut answer"),
        (b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a"', "cut answer"),
        (None, "timeout"),
    ],
)
def test_a_request_that_gets_no_whole_answer_is_classified_by_how_it_ended(monkeypatch, answer_with, kind):
    monkeypatch.setattr(bench.soak_traffic, "TIMEOUTS", (2, 0.5))
    with (
        peer(answer_with) as base,
        requests.Session() as session,
        pytest.raises((requests.RequestException, OSError)) as raised,
    ):
        send(session, base, Exchange(body=b"{}"), "soak-x")
    assert no_answer(raised.value) == kind


class RecordedStack:
    """What analyse reads of a stack: nginx's access lines, and no containers' logs."""

    def __init__(self, access: list[dict]):
        self.access = access

    def access_log(self) -> list[dict]:
        return self.access

    def containers(self) -> list:
        return []


def test_the_report_counts_failures_by_kind_and_shows_each_replicas_memory(kinds):
    _, mixed = kinds
    clock = Clock()
    traffic = Traffic("http://127.0.0.1:1", mixed, 0, 1, clock, "t")
    small, invalid = "/v1/evaluate, small graphs", "/v1/evaluate, invalid graphs"
    traffic.records = [
        Record(small, "valid", "soak-t-0", 1.0, 1.1, None),
        Record(invalid, "invalid", "soak-t-1", 2.0, 2.1, None),
        Record("bad JSON", "hostile", "soak-t-2", 3.0, 3.1, None),
        Record(small, "valid", "soak-t-3", 9.9, 10.2, "RemoteDisconnected", "no answer"),
        Record(small, "valid", "soak-t-4", 40.0, 40.3, "expected 200; got 502", "5xx"),
    ]
    killer = Killer(None, 10, random.Random(1), clock)
    killer.kills = [Kill("vg_valuegraph_2", "172.18.0.3", killed_at=10.0, back_at=16.0)]
    sampler = MemorySampler(None, 5, defaultdict(int), clock)
    sampler.samples = [
        Sample(at, name, life, int(megabytes * 2**20), None)
        for at, name, life, megabytes in [
            (0, "vg_valuegraph_1", 0, 90),
            (30, "vg_valuegraph_1", 0, 120),
            (60, "vg_valuegraph_1", 0, 121),
            (0, "vg_valuegraph_2", 0, 91),
            (31, "vg_valuegraph_2", 1, 70),
            (59, "vg_valuegraph_2", 1, 110),
        ]
    ]
    access = [
        {"request_id": "soak-t-3", "upstream": "172.18.0.3:8000", "status": 502, "upstream_status": "502"},
        {"request_id": "soak-t-4", "upstream": "172.18.0.2:8000", "status": 502, "upstream_status": "502"},
    ]
    figures = analyse(traffic, killer, sampler, RecordedStack(access))
    assert (figures["requests"], figures["failed"], figures["failed_in_flight_on_a_killed_replica"]) == (5, 1, 1)
    assert figures["failures_by_kind"] == {"5xx": 1}
    assert figures["in_flight_failures_by_kind"] == {"no answer": 1}
    assert (figures["by_kind"][small]["requests"], figures["by_kind"][small]["failed"]) == (3, 2)
    assert start_middle_end(sampler.samples) == {
        "vg_valuegraph_1": {"start": 90.0, "middle": 120.0, "end": 121.0, "lives": 1},
        "vg_valuegraph_2": {"start": 91.0, "middle": 70.0, "end": 110.0, "lives": 2},
    }
    assert not passed([], figures)
    assert passed([], {**figures, "failed": 0})
    assert not passed(["the stack answers 500"], {**figures, "failed": 0})
    result = {
        "setup": {
            "command": "python -m bench.soak --seconds 60",
            "date": "2026-01-01",
            "commit": "abc1234",
            "machine": "2 cores",
            "stack": "a recorded stack",
            "duration_seconds": 60,
            "clients": 4,
            "kills": "one kill",
            "slow_clients": "none",
            "sample_seconds": 5,
        },
        "expectation_errors": [],
        "figures": figures,
        "slow_clients": {"stalled uploads": {"clients": 1, "connections": 3, "closed_by_the_server": 2}},
        "samples": [asdict(sample) for sample in sampler.samples],
        "passed": passed([], figures),
    }
    report = markdown(result)
    assert "**FAIL**: 5 requests (1 hostile, 1 invalid, 3 valid), 1 failed, 1 more failed in flight" in report
    assert "Failures by kind: 1 5xx." in report
    assert "Failed in flight on a killed replica, by kind: 1 no answer." in report
    assert "| valuegraph_2 | 2 | 91.0 MiB | 70.0 MiB | 110.0 MiB |" in report
    assert "| 10.0 s | vg_valuegraph_2 (172.18.0.3) | 6.0 s | 1 |" in report
