"""`python -m bench.soak --minutes N`: the compose stack (nginx in front of the replicas) under mixed
traffic for N minutes, a replica killed now and then, slow clients throughout; then a report.

- The stack: docker-compose.yml brought up under a project name of its own, nginx on a free port of
  127.0.0.1, the body limit 16 MiB (so that an oversize body is cheap to send); taken down at the end
  (bench/compose_stack.py). Or a running one: `--url http://127.0.0.1:8000 --project NAME` (the compose
  project, for the kills, the memory and the logs; without it, traffic only).
- Traffic: `--clients` keep-alive clients send bench/soak_traffic.py's mix, each request checked
  against the answer it must get: every endpoint (/v1/evaluate, its batch, /v1/grade, its batch,
  /v1/expression, /v1/render in every format, the pages, /healthz), valid, invalid and hostile.
- Kills: every `--kill-every` seconds or so (uniformly half to one and a half times that; at most a
  third of the run, so that a short run sees kills too), a replica other than the first is killed with
  SIGKILL and started again 3 to 10 s later. The first replica is never killed, so that its memory
  spans the whole run.
- Slow clients (bench/slow_clients.py's): uploads that stall after their head, clients that pipeline
  requests for large answers and never read them, and clients sending chunked bodies of 1-byte chunks.
- Memory: every container's, from its cgroup, every `--sample-seconds`; a restart starts a new life.

A request fails when it gets any other answer than its own (another status, a 5xx, other bytes) or no
answer (a connection error, a timeout, a cut answer). A failure is excused only when the request was in
flight at a kill and nginx's log shows it was on the killed replica (or nginx logged nothing for it):
what nginx could not send elsewhere. The run passes with no other failure. The report (Markdown, and
JSON with --json) says what was sent and got, each kill and what nginx retried, what the slow clients
met, and each container's memory over time, with the slope of its last two thirds.

    python -m bench.soak --minutes 30                   # writes bench/soak_results.md and its chart
    python -m bench.soak --seconds 60 --report /tmp/soak.md --json /tmp/soak.json
"""

import argparse
import datetime
import http.client
import itertools
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
import requests

from bench.compose_stack import ROOT, ComposeUp, Stack, StackError, memory, natural_key
from bench.slow_clients import STALLED_HEAD, TINY_CHUNKS_HEAD, Peers, chunk_flood, large_graph, request_bytes
from bench.soak_traffic import InProcess, expect, mix, no_answer, send, send_raw, shown, wrong_answer

REPORT = ROOT / "bench/soak_results.md"
SOAK_BODY_LIMIT = 16 * 2**20
#: How long a slow client holds its connection at most before it lets go itself: past nginx's timeouts
#: (client_body_timeout 10 s, send_timeout 30 s), so that nginx is the one that ends it when it can.
STALLED_HOLD_SECONDS = 60
NON_READER_HOLD_SECONDS = 45
#: nginx's log names a slow client's requests by these ids.
STALLED_ID, NON_READER_ID, FLOOD_ID = "soak-stalled-upload", "soak-non-reader", "soak-chunk-flood"
TCP_ESTABLISHED = 1
#: Memory is called flat when the line fitted to a life's last two thirds grows by less than this share
#: of the life's median over that time.
FLAT_SHARE = 0.05
#: A life shorter than this is too short to call its memory flat or not.
JUDGED_LIFE_SECONDS = 300


@dataclass
class Record:
    kind: str
    category: str
    request_id: str
    started: float
    ended: float
    failure: str | None
    failure_kind: str | None = None


@dataclass
class Kill:
    replica: str
    address: str
    killed_at: float
    back_at: float | None = None
    error: str | None = None


@dataclass
class Sample:
    at: float
    container: str
    life: int
    working_set: int
    anonymous: int | None


class Clock:
    """Seconds since the soak began, and the wall-clock time of such a second (nginx logs wall time)."""

    def __init__(self):
        self.start, self.wall = time.monotonic(), time.time()

    def now(self) -> float:
        return time.monotonic() - self.start


class Traffic:
    """`clients` threads, each a keep-alive session sending the mix at random (by the kinds' weights)
    until stopped, every answer checked."""

    def __init__(self, base: str, kinds: dict, clients: int, seed: int, clock: Clock, run_id: str):
        self.base, self.kinds, self.seed, self.clock, self.run_id = base, kinds, seed, clock, run_id
        self.records: list[Record] = []
        self.stop = threading.Event()
        self.numbers = itertools.count()
        self.threads = [threading.Thread(target=self._client, args=(k,), daemon=True) for k in range(clients)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=180)

    def _client(self, number: int) -> None:
        rng = random.Random(self.seed + number)
        names = list(self.kinds)
        weights = [self.kinds[name].weight for name in names]
        with requests.Session() as session:
            while not self.stop.is_set():
                kind = self.kinds[rng.choices(names, weights)[0]]
                variant = rng.randrange(len(kind.exchanges))
                exchange, expected = kind.exchanges[variant], kind.answers[variant]
                request_id = f"soak-{self.run_id}-{next(self.numbers)}"
                started = self.clock.now()
                failure = None
                try:
                    answer = send(session, self.base, exchange, request_id)
                    if (failure_kind := wrong_answer(answer, expected)) is not None:
                        failure = f"expected {shown(expected)}; got {shown(answer)}"
                except (requests.RequestException, OSError, http.client.HTTPException) as error:
                    failure, failure_kind = f"{type(error).__name__}: {error}", no_answer(error)
                self.records.append(
                    Record(
                        exchange.kind, exchange.category, request_id, started, self.clock.now(), failure, failure_kind
                    )
                )


class Killer:
    """Kills a replica (never the first) at random intervals and starts it again after a few seconds."""

    def __init__(self, stack: Stack, every: float, rng: random.Random, clock: Clock):
        self.stack, self.every, self.rng, self.clock = stack, every, rng, clock
        self.kills: list[Kill] = []
        self.lives: dict[str, int] = defaultdict(int)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=300)

    def _run(self) -> None:
        while not self.stop.wait(self.rng.uniform(0.5, 1.5) * self.every):
            running = [replica for replica in self.stack.replicas() if replica.running]
            if len(running) < 2:
                continue
            victim = self.rng.choice(running[1:])
            kill = Kill(victim.name, self.stack.address(victim), self.clock.now())
            self.kills.append(kill)
            try:
                self.stack.kill(victim)
            except StackError as error:
                kill.error = str(error)
                continue
            self.stop.wait(self.rng.uniform(3, 10))  # cut short at the end: the replica always comes back
            try:
                self.stack.start(victim)
                kill.back_at = self.clock.now()
                self.lives[victim.name] += 1
            except StackError as error:
                kill.error = str(error)


class MemorySampler:
    """Every container's memory every `seconds`, tagged with its life (the killer's count of restarts)."""

    def __init__(self, stack: Stack, seconds: float, lives: dict[str, int], clock: Clock):
        self.stack, self.seconds, self.lives, self.clock = stack, seconds, lives, clock
        self.samples: list[Sample] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=120)
        self.sample()

    def _run(self) -> None:
        while True:
            self.sample()
            if self.stop.wait(self.seconds):
                return

    def sample(self) -> None:
        try:
            containers = self.stack.containers()
        except StackError:
            return
        for container in containers:
            if container.running and (found := memory(container.id)) is not None and found.working_set > 0:
                self.samples.append(
                    Sample(
                        self.clock.now(),
                        container.name,
                        self.lives[container.name],
                        found.working_set,
                        found.anonymous,
                    )
                )


class SlowClients:
    """bench/slow_clients.py's hostile peers, at nginx's `host` and `port`: uploads that stall after their
    head, clients that pipeline requests for large answers and never read them, and senders of 1-byte
    chunks (a few writes a second). Each is named in nginx's log by its own request id."""

    def __init__(self, host: str, port: int, stalled: int, non_readers: int, floods: int):
        self.host, self.port = host, port
        self.closed_by_server: Counter = Counter()
        self.held: dict[str, list[float]] = defaultdict(list)
        self.stalled = Peers(
            self.port,
            stalled,
            with_request_id(STALLED_HEAD, STALLED_ID),
            host=self.host,
            released=self._release("stalled uploads", STALLED_HOLD_SECONDS),
        )
        # Three answers of ~3.7 MB each: more than the kernel's buffers take in for a client that does
        # not read, so that nginx holds the rest until its send_timeout.
        non_reader_request = with_request_id(request_bytes(large_graph(100_000)), NON_READER_ID)
        self.non_readers = Peers(
            self.port,
            non_readers,
            non_reader_request * 3,
            receive_buffer=4096,
            host=self.host,
            released=self._release("non-readers", NON_READER_HOLD_SECONDS),
        )
        self.stop = threading.Event()
        self.flood_connections: list[int] = []
        self.floods = [threading.Thread(target=self._flood, daemon=True) for _ in range(floods)]

    def _release(self, group: str, hold_seconds: float):
        def released(sock: socket.socket, seconds_held: float) -> bool:
            closed = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_ESTABLISHED
            if closed or seconds_held > hold_seconds:
                self.closed_by_server[group] += closed
                self.held[group].append(seconds_held)
                return True
            return False

        return released

    def _flood(self) -> None:
        head = with_request_id(TINY_CHUNKS_HEAD, FLOOD_ID)
        self.flood_connections.append(chunk_flood(self.port, self.stop, self.host, pause=0.1, head=head))

    def __enter__(self):
        self.stalled.__enter__()
        self.non_readers.__enter__()
        for thread in self.floods:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.stalled.__exit__(*exc)
        self.non_readers.__exit__(*exc)
        for thread in self.floods:
            thread.join(timeout=30)

    def summary(self) -> dict:
        groups = {"stalled uploads": self.stalled, "non-readers": self.non_readers}
        summary = {
            group: {
                "clients": len(peers.threads),
                "connections": peers.connections,
                "closed_by_the_server": self.closed_by_server[group],
                "median_seconds_held": round(statistics.median(self.held[group]), 1) if self.held[group] else None,
            }
            for group, peers in groups.items()
        }
        summary["1-byte chunk senders"] = {"clients": len(self.floods), "connections": sum(self.flood_connections)}
        return summary


def with_request_id(request: bytes, request_id: str) -> bytes:
    head, separator, body = request.partition(b"\r\n\r\n")
    return head + f"\r\nX-Request-ID: {request_id}".encode() + separator + body


def discover_max_body_bytes(base: str) -> int | None:
    """The stack's body limit, read from the 413 that a body announced far past any limit gets."""
    try:
        answer = send_raw(
            base,
            b"POST /v1/evaluate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000000\r\nConnection: close\r\n\r\n",
        )
    except (OSError, http.client.HTTPException):
        return None
    found = re.search(rb"limit of (\d+) bytes", answer.body)
    return int(found.group(1)) if answer.status == 413 and found else None


# The analysis


def excused(record: Record, kills: list[Kill], nginx_lines: dict[str, dict]) -> Kill | None:
    """The kill a failed request was in flight at, when nginx's log shows it on the killed replica (or
    has no line for it); else None."""
    for kill in kills:
        if record.started <= kill.killed_at <= record.ended:
            line = nginx_lines.get(record.request_id)
            if line is None or f"{kill.address}:" in line.get("upstream", ""):
                return kill
    return None


def retries(nginx_lines: dict[str, dict], records: dict[str, Record], kills: list[Kill]) -> dict:
    """The soak's requests nginx sent to more than one replica: away from a killed replica (first tried
    it while it was down or going down), or otherwise; and how they ended for the client."""
    counts: Counter = Counter()
    others: Counter = Counter()
    for request_id, line in nginx_lines.items():
        tried = [address.strip() for address in re.split(r"[,:] ", line.get("upstream", ""))]
        if len(tried) < 2 or request_id not in records:
            continue
        record = records[request_id]
        first = tried[0].rsplit(":", 1)[0]
        at_a_kill = any(
            first == kill.address
            and record.started <= (kill.back_at or record.ended) + 10
            and record.ended >= kill.killed_at
            for kill in kills
        )
        outcome = "answered right" if record.failure is None else "failed"
        counts["away from a killed replica" if at_a_kill else "otherwise", outcome] += 1
        if not at_a_kill:
            others[line.get("upstream_status", "")] += 1
    return {
        "away_from_a_killed_replica": {
            outcome: counts["away from a killed replica", outcome] for outcome in ("answered right", "failed")
        },
        "otherwise": {outcome: counts["otherwise", outcome] for outcome in ("answered right", "failed")},
        "otherwise_upstream_statuses": dict(others.most_common(10)),
    }


def slow_client_lines(access: list[dict]) -> dict:
    """What nginx logged for the slow clients' requests: statuses, and how long it held them."""
    found = {}
    for name, request_id in (
        ("stalled uploads", STALLED_ID),
        ("non-readers", NON_READER_ID),
        ("1-byte chunk senders", FLOOD_ID),
    ):
        lines = [line for line in access if line.get("request_id") == request_id]
        durations = [line["duration_ms"] / 1000 for line in lines if isinstance(line.get("duration_ms"), int)]
        found[name] = {
            "logged": len(lines),
            "statuses": dict(Counter(str(line.get("status")) for line in lines).most_common()),
            "median_seconds": round(statistics.median(durations), 1) if durations else None,
        }
    return found


def lives(samples: list[Sample]) -> dict[tuple[str, int], list[Sample]]:
    found = defaultdict(list)
    for sample in samples:
        found[sample.container, sample.life].append(sample)
    return found


def flatness(series: list[Sample]) -> dict:
    """The least-squares slope of the working set over a life's last two thirds, in MiB per hour, and
    the growth it means over that time; flat when that growth is under FLAT_SHARE of the median."""
    span = series[-1].at - series[0].at
    tail = [sample for sample in series if sample.at >= series[0].at + span / 3]
    result = {
        "seconds": round(span),
        "first_mib": mib(series[0].working_set),
        "last_mib": mib(series[-1].working_set),
        "peak_mib": mib(max(sample.working_set for sample in series)),
    }
    if span < JUDGED_LIFE_SECONDS or len(tail) < 3:
        return {**result, "verdict": f"not judged (under {JUDGED_LIFE_SECONDS} s)"}
    xs, ys = [sample.at for sample in tail], [sample.working_set for sample in tail]
    slope = statistics.linear_regression(xs, ys).slope
    growth = slope * (xs[-1] - xs[0])
    median = statistics.median(ys)
    return {
        **result,
        "last_two_thirds_median_mib": mib(median),
        "slope_mib_per_hour": round(slope * 3600 / 2**20, 1),
        "growth_over_last_two_thirds_mib": round(growth / 2**20, 1),
        "verdict": "flat" if abs(growth) < FLAT_SHARE * median else "growing" if growth > 0 else "shrinking",
    }


def start_middle_end(samples: list[Sample]) -> dict[str, dict]:
    """Each container's working set (MiB) at the samples nearest the soak's start, middle and end,
    whichever life they fall in, and how many lives it had."""
    if not samples:
        return {}
    end = max(sample.at for sample in samples)
    marks = {}
    for container in sorted({sample.container for sample in samples}, key=natural_key):
        own = [sample for sample in samples if sample.container == container]
        marks[container] = {
            mark: mib(min(own, key=lambda sample: abs(sample.at - at)).working_set)
            for mark, at in (("start", 0.0), ("middle", end / 2), ("end", end))
        }
        marks[container]["lives"] = len({sample.life for sample in own})
    return marks


def mib(size: float) -> float:
    return round(size / 2**20, 1)


def log_findings(stack: Stack) -> dict:
    """What the replicas and nginx wrote besides request lines: errors, tracebacks, workers lost."""
    found = {}
    for container in stack.containers():
        stdout, stderr = stack.logs(container)
        lines = [line for line in (stdout + stderr).splitlines() if not line.startswith("{")]
        statuses = Counter()
        for line in stdout.splitlines():
            if line.startswith('{"time"') and (match := re.search(r'"status":(\d+)', line)):
                statuses[match.group(1)] += 1
        notable = [
            line
            for line in lines
            if re.search(
                r"\[(ERROR|CRITICAL|error|crit|alert|emerg)\]|Traceback|WORKER TIMEOUT|SIGKILL|out of memory", line
            )
        ]
        found[container.name] = {
            "request_lines_by_status": dict(sorted(statuses.items())),
            "notable_lines": len(notable),
            "notable_examples": sorted(Counter(normalized(line) for line in notable).most_common(8)),
        }
    return found


def normalized(line: str) -> str:
    """A log line with its times, addresses, ids and numbers blanked, so that alike lines count together."""
    line = re.sub(r"^\S+ \S+ ", "", line)
    line = re.sub(r"\d+\.\d+\.\d+\.\d+(:\d+)?", "ADDR", line)
    line = re.sub(r"\b[0-9a-f]{16,}\b", "ID", line)
    return re.sub(r"\d+", "N", line)[:200]


def analyse(traffic: Traffic, killer: Killer | None, sampler: MemorySampler | None, stack: Stack | None) -> dict:
    records = {record.request_id: record for record in traffic.records}
    access = stack.access_log() if stack else []
    nginx_lines = {line["request_id"]: line for line in access if str(line.get("request_id", "")).startswith("soak-")}
    kills = killer.kills if killer else []
    by_kind: dict[str, dict] = {}
    failures, in_flight = [], []
    for kind in traffic.kinds:
        of_kind = [record for record in traffic.records if record.kind == kind]
        durations = sorted(record.ended - record.started for record in of_kind)
        by_kind[kind] = {
            "category": traffic.kinds[kind].exchanges[0].category,
            "requests": len(of_kind),
            "failed": sum(record.failure is not None for record in of_kind),
            "p50_ms": round(1000 * durations[len(durations) // 2], 1) if durations else None,
            "p99_ms": round(1000 * durations[int(len(durations) * 0.99)], 1) if durations else None,
        }
    for record in traffic.records:
        if record.failure is None:
            continue
        kill = excused(record, kills, nginx_lines)
        line = nginx_lines.get(record.request_id, {})
        entry = {
            **asdict(record),
            "nginx": {key: line.get(key) for key in ("status", "upstream", "upstream_status", "response_bytes")},
        }
        (in_flight if kill else failures).append({**entry, "killed_replica": kill.replica if kill else None})
    categories = Counter(record.category for record in traffic.records)
    return {
        "requests": len(traffic.records),
        "requests_by_category": dict(categories),
        "failed": len(failures),
        "failed_in_flight_on_a_killed_replica": len(in_flight),
        "failures_by_kind": dict(Counter(entry["failure_kind"] for entry in failures).most_common()),
        "in_flight_failures_by_kind": dict(Counter(entry["failure_kind"] for entry in in_flight).most_common()),
        "failures": failures[:200],
        "in_flight_failures": in_flight[:200],
        "by_kind": by_kind,
        "kills": [asdict(kill) for kill in kills],
        "retried_by_nginx": retries(nginx_lines, records, kills) if stack else None,
        "soak_requests_nginx_logged": len(nginx_lines),
        "slow_clients_in_nginx_log": slow_client_lines(access) if stack else None,
        "memory_start_middle_end": start_middle_end(sampler.samples) if sampler else {},
        "memory": {
            f"{container} life {life}": flatness(series)
            for (container, life), series in sorted(lives(sampler.samples).items())
            if len(series) >= 2
        }
        if sampler
        else {},
        "logs": log_findings(stack) if stack else {},
    }


# The report


def markdown(result: dict) -> str:
    setup, figures = result["setup"], result["figures"]
    verdict = "PASS" if result["passed"] else "FAIL"
    lines = [
        "# Soak: the compose stack under mixed traffic, killed replicas and slow clients",
        "",
        f"Command: `{setup['command']}`, {setup['date']}, commit {setup['commit']}; {setup['machine']}.",
        "",
        f"Stack: {setup['stack']}. {setup['duration_seconds']:.0f} s of traffic from {setup['clients']} "
        f"keep-alive clients; {setup['kills']}; slow clients throughout: {setup['slow_clients']}. "
        "What each request must get is this tree's app's answer, made in the soak's process "
        "(byte for byte; a problem's request id aside), or for nginx's own answers and SVG the stack's "
        "first answer (bench/soak_traffic.py).",
        "",
        f"**{verdict}**: {figures['requests']:,} requests ({category_counts(figures)}), "
        f"{figures['failed']} failed, {figures['failed_in_flight_on_a_killed_replica']} more failed in "
        "flight on a killed replica (nginx could not send them elsewhere). The run passes with no failure "
        "but those: a request fails when its answer is not its own (another status, a 5xx, other bytes) "
        "or it gets none.",
    ]
    for title, counted in (
        ("Failures by kind", figures["failures_by_kind"]),
        ("Failed in flight on a killed replica, by kind", figures["in_flight_failures_by_kind"]),
    ):
        if counted:
            lines += ["", f"{title}: " + ", ".join(f"{count:,} {kind}" for kind, count in counted.items()) + "."]
    if result["expectation_errors"]:
        lines += ["", "Before the soak, the stack did not answer as this tree's app does:", ""]
        lines += [f"- {error}" for error in result["expectation_errors"]]
    lines += [
        "",
        "## Requests by kind",
        "",
        "| kind | category | requests | failed | p50 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for kind, row in figures["by_kind"].items():
        lines.append(
            f"| {kind} | {row['category']} | {row['requests']:,} | {row['failed']} | "
            f"{milliseconds(row['p50_ms'])} | {milliseconds(row['p99_ms'])} |"
        )
    for title, entries in (
        ("Failures", figures["failures"]),
        ("Failed in flight on a killed replica", figures["in_flight_failures"]),
    ):
        if entries:
            lines += ["", f"## {title}", ""]
            for entry in entries[:30]:
                nginx = entry["nginx"]
                lines.append(
                    f"- {entry['started']:.1f}–{entry['ended']:.1f} s, {entry['kind']} (`{entry['request_id']}`): "
                    f"{entry['failure'][:300]}; nginx: status {nginx['status']}, upstream {nginx['upstream']!r} "
                    f"({nginx['upstream_status']}), {nginx['response_bytes']} bytes sent"
                )
    lines += kills_section(figures)
    lines += slow_clients_section(result)
    lines += memory_section(result)
    lines += logs_section(figures)
    return "\n".join(lines) + "\n"


def category_counts(figures: dict) -> str:
    return ", ".join(f"{count:,} {category}" for category, count in sorted(figures["requests_by_category"].items()))


def milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def kills_section(figures: dict) -> list[str]:
    kills = figures["kills"]
    if not kills:
        return ["", "## Kills", "", "None (no compose project to kill replicas of)."]
    lines = [
        "",
        "## Kills and nginx's retries",
        "",
        "| at | replica | down for | failed in flight |",
        "|---|---|---|---|",
    ]
    for kill in kills:
        failed = sum(
            entry["killed_replica"] == kill["replica"] and entry["started"] <= kill["killed_at"] <= entry["ended"]
            for entry in figures["in_flight_failures"]
        )
        down = (
            f"{kill['back_at'] - kill['killed_at']:.1f} s" if kill["back_at"] else f"not started again: {kill['error']}"
        )
        lines.append(f"| {kill['killed_at']:.1f} s | {kill['replica']} ({kill['address']}) | {down} | {failed} |")
    retried = figures["retried_by_nginx"]
    away, otherwise = retried["away_from_a_killed_replica"], retried["otherwise"]
    lines += [
        "",
        f"nginx sent {away['answered right'] + away['failed']} of the soak's requests on to another replica after "
        f"trying a killed one first ({away['answered right']} then answered right, {away['failed']} failed), and "
        f"{otherwise['answered right'] + otherwise['failed']} at other times ({otherwise['answered right']} answered "
        f"right; the replicas' statuses: {retried['otherwise_upstream_statuses'] or 'none'}). "
        f"nginx logged {figures['soak_requests_nginx_logged']:,} of the soak's requests.",
    ]
    return lines


def slow_clients_section(result: dict) -> list[str]:
    clients, logged = result["slow_clients"], result["figures"]["slow_clients_in_nginx_log"] or {}
    lines = [
        "",
        "## Slow clients",
        "",
        "| clients | connections | closed by the server | median held | nginx logged | statuses | nginx's median time |",
        "|---|---|---|---|---|---|---|",
    ]
    for group, row in clients.items():
        seen = logged.get(group, {})
        held = "–" if row.get("median_seconds_held") is None else f"{row['median_seconds_held']} s"
        nginx_time = "–" if seen.get("median_seconds") is None else f"{seen['median_seconds']} s"
        lines.append(
            f"| {row['clients']} {group} | {row['connections']:,} | {row.get('closed_by_the_server', '–')} | {held} | "
            f"{seen.get('logged', '–')} | {seen.get('statuses', '–')} | {nginx_time} |"
        )
    lines += [
        "",
        f"A stalled upload or a non-reader lets go itself after {STALLED_HOLD_SECONDS} s or {NON_READER_HOLD_SECONDS} s "
        "if it has not seen the server close its connection by then. A non-reader sees it only when nginx resets "
        "the connection (its close otherwise waits behind the answer not read); nginx's log says when nginx gave up "
        "(send_timeout, 30 s).",
    ]
    return lines


def memory_section(result: dict) -> list[str]:
    memory_figures = result["figures"]["memory"]
    if not memory_figures:
        return ["", "## Memory", "", "Not sampled (no compose project)."]
    lines = [
        "",
        "## Memory",
        "",
        "Each container's working set (the cgroup's usage less its inactive file cache, as `docker stats` "
        f"shows it), sampled every {result['setup']['sample_seconds']:g} s; a life ends when the replica is killed "
        f"(a restart begins the next from scratch). Flat: the line fitted to a life's last two thirds grows by less "
        f"than {FLAT_SHARE:.0%} of its median; a life under {JUDGED_LIFE_SECONDS} s is not judged. Start, middle "
        "and end: the samples nearest those times of the soak, whichever life they fall in.",
        "",
        "| container | lives | start | middle | end |",
        "|---|---|---|---|---|",
        *(
            f"| {short(name)} | {row['lives']} | {row['start']} MiB | {row['middle']} MiB | {row['end']} MiB |"
            for name, row in result["figures"]["memory_start_middle_end"].items()
        ),
        "",
        "Each life of each container:",
        "",
        "| container, life | seconds | first | peak | last | slope, last two thirds | growth, last two thirds | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in memory_figures.items():
        slope = "–" if "slope_mib_per_hour" not in row else f"{row['slope_mib_per_hour']} MiB/h"
        growth = (
            "–" if "growth_over_last_two_thirds_mib" not in row else f"{row['growth_over_last_two_thirds_mib']} MiB"
        )
        lines.append(
            f"| {name} | {row['seconds']} | {row['first_mib']} MiB | {row['peak_mib']} MiB | {row['last_mib']} MiB | "
            f"{slope} | {growth} | {row['verdict']} |"
        )
    lines += ["", "Over time (MiB; a mark after a number is a restart within that minute):", ""]
    lines += memory_over_time(result)
    if result.get("chart"):
        lines += ["", f"![memory over time]({result['chart']})"]
    return lines


def memory_over_time(result: dict) -> list[str]:
    samples = [Sample(**sample) for sample in result["samples"]]
    containers = sorted({sample.container for sample in samples}, key=lambda name: (name.find("nginx") >= 0, name))
    step = max(60.0, result["setup"]["duration_seconds"] / 30)
    rows = [f"| s | {' | '.join(short(name) for name in containers)} |", f"|---|{'---|' * len(containers)}"]
    end = max((sample.at for sample in samples), default=0)
    at = 0.0
    while at <= end + step / 2:
        cells = []
        for name in containers:
            near = [s for s in samples if s.container == name and at - step / 2 <= s.at < at + step / 2]
            if near:
                closest = min(near, key=lambda s: abs(s.at - at))
                restarted = len({s.life for s in near}) > 1
                cells.append(f"{mib(closest.working_set)}{' ↺' if restarted else ''}")
            else:
                cells.append("–")
        rows.append(f"| {at:.0f} | {' | '.join(cells)} |")
        at += step
    return rows


def short(name: str) -> str:
    """vgsoak1a2b3c4d_valuegraph_2 as valuegraph_2."""
    return name.split("_", 1)[1] if "_" in name else name


def logs_section(figures: dict) -> list[str]:
    if not figures["logs"]:
        return []
    lines = ["", "## Logs", "", "| container | request lines by status | notable lines |", "|---|---|---|"]
    for name, found in figures["logs"].items():
        lines.append(f"| {short(name)} | {found['request_lines_by_status'] or '–'} | {found['notable_lines']} |")
    examples = {example for found in figures["logs"].values() for example, _ in found["notable_examples"]}
    if examples:
        lines += ["", "Notable lines, alike ones counted once (numbers, addresses and ids blanked):", ""]
        for name, found in figures["logs"].items():
            lines += [f"- {short(name)}: `{example}` × {count}" for example, count in found["notable_examples"]]
    return lines


def chart(result: dict, path: Path) -> bool:
    """Each container's working set over time, a PNG beside the report; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        return False
    samples = [Sample(**sample) for sample in result["samples"]]
    figure, axes = pyplot.subplots(figsize=(9, 4.5))
    for (container, life), series in sorted(lives(samples).items()):
        axes.plot(
            [s.at / 60 for s in series],
            [s.working_set / 2**20 for s in series],
            color=f"C{sorted({s.container for s in samples}).index(container)}",
            label=short(container) if life == 0 else None,
            linewidth=1.2,
        )
    axes.set_xlabel("minutes")
    axes.set_ylabel("working set, MiB")
    axes.set_ylim(bottom=0)
    axes.set_title("Memory of each container (a gap and a drop: the replica was killed and started again)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True


# The run


def commit() -> str:
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def passed(expectation_errors: list[str], figures: dict) -> bool:
    """The stack answered as this tree does, every category was sent, and nothing failed but requests in
    flight on a killed replica."""
    return (
        not expectation_errors
        and figures["failed"] == 0
        and figures["requests"] > 0
        and set(figures["requests_by_category"]) == {"valid", "invalid", "hostile"}
    )


def stop_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the soak as Ctrl-C does, so that the stack is taken down."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="how long the traffic runs (default 5)")
    length.add_argument("--seconds", type=float, help="the same in seconds")
    parser.add_argument("--url", help="a running stack's nginx (default: bring one up, and take it down after)")
    parser.add_argument("--project", help="with --url: its compose project, for the kills, memory and logs")
    parser.add_argument("--replicas", type=int, default=2, help="replicas of the stack brought up (default 2)")
    parser.add_argument("--clients", type=int, default=4, help="keep-alive clients sending the mix (default 4)")
    parser.add_argument(
        "--kill-every",
        type=float,
        default=60,
        help="mean seconds between kills (default 60, at most a third of the run; 0: none)",
    )
    parser.add_argument("--stalled", type=int, default=4, help="stalled uploads held throughout (default 4)")
    parser.add_argument("--non-readers", type=int, default=4, help="clients that never read (default 4)")
    parser.add_argument("--floods", type=int, default=2, help="1-byte-chunk senders (default 2)")
    parser.add_argument("--sample-seconds", type=float, default=5, help="memory sampled this often (default 5)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--report", type=Path, default=REPORT, help=f"the Markdown report (default {REPORT.relative_to(ROOT)})"
    )
    parser.add_argument("--json", type=Path, help="also the figures as JSON")
    args = parser.parse_args(argv)
    duration = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 5)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    rng = random.Random(args.seed)
    run_id = uuid.uuid4().hex[:6]
    with ExitStack() as cleanup:
        if args.url:
            base, stack = args.url.rstrip("/"), Stack(args.project) if args.project else None
            max_body_bytes = discover_max_body_bytes(base)
            if max_body_bytes is None:
                parser.error(f"{base} did not say its body limit (a 413 naming it): is it the compose nginx?")
            stack_text = f"the running stack at {base}" + (f", compose project {args.project}" if args.project else "")
        else:
            print(
                f"bringing up the compose stack ({args.replicas} replicas behind nginx)...", file=sys.stderr, flush=True
            )
            compose = cleanup.enter_context(ComposeUp(args.replicas, SOAK_BODY_LIMIT))
            base, stack, max_body_bytes = compose.url, compose.stack, SOAK_BODY_LIMIT
            stack_text = (
                f"docker-compose.yml, project {compose.name}: nginx in front of {args.replicas} replicas, "
                f"WEB_CONCURRENCY={compose.env.get('WEB_CONCURRENCY', 'compose default (2)')}, "
                f"VALUEGRAPH_MAX_BODY_BYTES={max_body_bytes}, the other settings compose's defaults"
            )
        app = InProcess(max_body_bytes)
        kinds = mix(app, max_body_bytes, args.seed)
        expectation_errors = expect(kinds, app, base)
        clock = Clock()
        kill_every = min(args.kill_every, duration / 3)  # a short run sees a few kills too
        killer = Killer(stack, kill_every, rng, clock) if stack and kill_every > 0 else None
        sampler = (
            MemorySampler(stack, args.sample_seconds, killer.lives if killer else defaultdict(int), clock)
            if stack
            else None
        )
        traffic = Traffic(base, kinds, args.clients, args.seed, clock, run_id)
        host, port = base.removeprefix("http://").rsplit(":", 1)
        slow_at = (stack and stack.inside(stack.nginx())) or (host, int(port))
        slow = SlowClients(*slow_at, args.stalled, args.non_readers, args.floods)
        if not expectation_errors:
            print(f"soaking {base} for {duration:g} s...", file=sys.stderr, flush=True)
            with ExitStack() as running:
                for part in (sampler, slow, killer, traffic):
                    if part is not None:
                        running.enter_context(part)
                time.sleep(duration)
        figures = analyse(traffic, killer, sampler, stack)
    result = {
        "setup": {
            "command": "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.date.today().isoformat(),
            "commit": commit(),
            "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}",
            "stack": stack_text,
            "project": stack.project if stack else None,
            "duration_seconds": duration,
            "clients": args.clients,
            "kills": (
                f"a replica other than the first killed (SIGKILL) every {kill_every / 2:g}–{kill_every * 1.5:g} s "
                "and started again 3–10 s later"
                if killer
                else "no kills"
            ),
            "slow_clients": f"{args.stalled} stalled uploads, {args.non_readers} non-readers, {args.floods} 1-byte-chunk senders "
            + ("(at nginx's own address, as from another machine)" if slow_at != (host, int(port)) else f"(at {base})"),
            "sample_seconds": args.sample_seconds,
        },
        "expectation_errors": expectation_errors,
        "figures": figures,
        "slow_clients": slow.summary(),
        "samples": [asdict(sample) for sample in sampler.samples] if sampler else [],
    }
    result["passed"] = passed(expectation_errors, figures)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    chart_path = args.report.with_name(args.report.stem + "_memory.png")
    if result["samples"] and chart(result, chart_path):
        result["chart"] = chart_path.name
    args.report.write_text(markdown(result))
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    print(
        f"{'PASS' if result['passed'] else 'FAIL'}: {figures['requests']:,} requests, {figures['failed']} failed, "
        f"{figures['failed_in_flight_on_a_killed_replica']} in flight on a killed replica; report: {args.report}",
        file=sys.stderr,
    )
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
