"""Visible: /metrics over all gunicorn workers, one JSON log line per request, X-Request-ID, Server-Timing,
and the optional bearer token.

The app's tests use the Flask test client (metrics in memory); the server's run the real gunicorn with two
workers, where the metrics live in PROMETHEUS_MULTIPROC_DIR and each worker writes its own log lines.
"""

import itertools
import os
import re
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from service.core import fastpath, record
from service.runtime.config import ConfigError, from_environment
from tests.support import SEED_GRAPH
from tools.reference_value import evaluate_with_seed
from tools.server import gunicorn_server

EVALUATE = "/v1/evaluate"
PHASES = ["read", "parse", "validate", "build", "backward", "write"]
LOG_FIELDS = {"method", "path", "status", "duration_ms", "nodes", "body_bytes", "request_id"}
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SERVER_TIMING_ENTRY = re.compile(r"([a-z]+);dur=(\d+\.\d{3})")


def chain(length: int, marker: str = "n") -> dict:
    """x0 = 0.5, x(k+1) = exp(x(k)) ... a chain whose ids carry `marker`, to look for in the logs."""
    nodes = [{"id": f"{marker}0", "op": "value", "data": 0.5}]
    nodes += [{"id": f"{marker}{k}", "op": "relu", "children": [f"{marker}{k - 1}"]} for k in range(1, length)]
    return {"nodes": nodes}


def samples(exposition: str) -> dict[tuple, float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(found: dict[tuple, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def phases_of(header: str) -> list[str]:
    entries = [entry.strip() for entry in header.split(",")]
    assert all(SERVER_TIMING_ENTRY.fullmatch(entry) for entry in entries), header
    return [SERVER_TIMING_ENTRY.fullmatch(entry).group(1) for entry in entries]


def log_lines(text: str) -> list[dict]:
    """Every line of the log as JSON: a line that is not JSON fails here."""
    return [orjson.loads(line) for line in text.splitlines() if line]


# --- the app ---------------------------------------------------------------------------------------------


class ServerLikeClient(FlaskClient):
    """A test client that takes each answer whole, as a server does: the request is finished (logged,
    counted) when its answer has been read, whether or not the test reads it."""

    def open(self, *args, **kwargs):
        return super().open(*args, buffered=True, **kwargs)


def server_like_client(app) -> FlaskClient:
    app.test_client_class = ServerLikeClient
    return app.test_client()


@pytest.fixture
def client(app):
    return server_like_client(app)


@pytest.fixture
def logged(capsys):
    """logged(): the JSON log lines the app wrote since the last call."""

    def read():
        return log_lines(capsys.readouterr().out)

    read()
    return read


def test_server_timing_names_the_phases_in_order(app, client):
    response = client.post(EVALUATE, json=SEED_GRAPH)
    assert response.status_code == 200
    on_the_fast_path = app.config["FAST_PATH"] and fastpath.ACTIVE
    assert phases_of(response.headers["Server-Timing"]) == (["read", "fastpath"] if on_the_fast_path else PHASES)


def test_server_timing_of_a_refusal_names_the_phases_it_reached(app, client):
    response = client.post(
        EVALUATE, json={"nodes": [{"id": "x", "data": -1.0}, {"id": "y", "op": "log", "children": ["x"]}]}
    )
    assert response.status_code == 422
    tried = ["fastpath"] if app.config["FAST_PATH"] and fastpath.ACTIVE else []
    reached = ["read", *tried, "parse", "validate", "build"]
    assert phases_of(response.headers["Server-Timing"]) == reached
    response = client.post(EVALUATE, data=b"{", content_type="application/json")
    assert phases_of(response.headers["Server-Timing"]) == ["read", *tried, "parse"]


def test_phase_outside_a_request_records_nothing():
    with record.phase("build"):
        pass
    phases = record.start("a-request").phases
    with record.phase("build"):
        pass
    record.stop()
    with record.phase("backward"):
        pass
    assert [name for name, _ in phases] == ["build"]


@pytest.mark.parametrize("given", ["abc-123", "0f" * 16, "Root=1-5759e988-bd862e3fe1be46a994272793", "x" * 128])
def test_a_plain_request_id_is_echoed(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["", "x" * 129, "has space", 'quote"', "semi;colon", "ünicode", "a,b"])
def test_an_unfit_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


def test_a_request_id_is_made_for_each_request_without_one(client):
    made = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(made) == 5 and all(GENERATED_ID.fullmatch(request_id) for request_id in made)


@pytest.mark.parametrize(
    "request_, status",
    [
        ({"method": "POST", "path": EVALUATE, "data": b"{", "content_type": "application/json"}, 400),
        ({"method": "POST", "path": EVALUATE, "json": {"nodes": []}}, 422),
        ({"method": "GET", "path": "/no/such/path"}, 404),
        ({"method": "GET", "path": EVALUATE}, 405),
    ],
)
def test_problems_carry_the_request_id(client, request_, status):
    response = client.open(**request_, headers={"X-Request-ID": "problem-id-1"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "problem-id-1"
    assert response.get_json()["request_id"] == "problem-id-1"


def test_one_log_line_per_request_with_its_fields_and_no_body(client, logged):
    graph = chain(7, marker="secret-node-")
    body = orjson.dumps(graph)
    client.post(EVALUATE, data=body, content_type="application/json", headers={"X-Request-ID": "log-1"})
    client.post(EVALUATE, data=b'{"nodes": [{"id": "secret-x", "data": "2"}]}', content_type="application/json")
    client.get("/healthz?secret-query=1")
    lines = logged()
    assert len(lines) == 3
    assert all(line.keys() >= LOG_FIELDS for line in lines)
    evaluated, refused, health = lines
    assert evaluated["request_id"] == "log-1"
    assert (evaluated["method"], evaluated["path"], evaluated["status"]) == ("POST", EVALUATE, 200)
    assert (evaluated["nodes"], evaluated["body_bytes"], evaluated["problem"]) == (7, len(body), None)
    assert (refused["status"], refused["nodes"], refused["problem"]) == (422, None, "/problems/invalid-graph")
    assert (health["path"], health["body_bytes"]) == ("/healthz", 0)
    assert all(line["duration_ms"] >= 0 and line["pid"] == os.getpid() for line in lines)
    assert "secret" not in str(lines)


def test_metrics_count_requests_refusals_and_graph_sizes(client):
    before = samples(client.get("/metrics").get_data(as_text=True))
    body = orjson.dumps(chain(50))
    for _ in range(3):
        assert client.post(EVALUATE, data=body, content_type="application/json").status_code == 200
    assert client.post(EVALUATE, data=b'{"nodes":[]}', content_type="application/json").status_code == 422
    assert client.get("/nowhere").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = samples(response.get_data(as_text=True))

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("valuegraph_requests_total", route=EVALUATE, method="POST", status="200") == 3
    assert grew("valuegraph_requests_total", route=EVALUATE, method="POST", status="422") == 1
    assert grew("valuegraph_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("valuegraph_request_duration_seconds_count", route=EVALUATE) == 4
    assert grew("valuegraph_graph_nodes_count") == 3
    assert grew("valuegraph_graph_nodes_sum") == 150
    assert grew("valuegraph_graph_nodes_bucket", le="10.0") == 0
    assert grew("valuegraph_graph_nodes_bucket", le="100.0") == 3
    assert grew("valuegraph_refusals_total", type="/problems/invalid-graph", status="422") == 1
    assert grew("valuegraph_refusals_total", type="about:blank", status="404") == 1
    assert grew("valuegraph_admitted_body_bytes_total") == 3 * len(body) + len(b'{"nodes":[]}')


def test_metrics_conform(client, conforms):
    response = client.get("/metrics")
    conforms("/metrics", "get", response.status_code, response.headers["Content-Type"], response.data)


# --- bearer tokens, in the app -----------------------------------------------------------------------------


@pytest.fixture
def guarded(make_app):
    return server_like_client(make_app({"API_TOKENS": ("token-one",), "API_TOKENS_FROM_FILE": ("token-two",)}))


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.yaml", "/openapi.json"])
def test_probes_and_the_contract_need_no_token(guarded, path):
    assert guarded.get(path).status_code == 200


@pytest.mark.parametrize(
    "authorization, error",
    [
        (None, None),
        ("Bearer wrong", "invalid_token"),
        ("Bearer token-on", "invalid_token"),
        ("Bearer token-one2", "invalid_token"),
        ("Basic dG9rZW4tb25lOg==", None),
        ("token-one", None),
        ("Bearer ", None),
    ],
)
def test_without_a_valid_token_it_is_401(guarded, conforms, authorization, error):
    headers = {"Authorization": authorization} if authorization else {}
    for path, method in [(EVALUATE, "post"), ("/metrics", "get")]:
        response = guarded.open(path, method=method, json=SEED_GRAPH if method == "post" else None, headers=headers)
        assert response.status_code == 401
        conforms(path, method, 401, response.headers["Content-Type"], response.data)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="valuegraph"')
        assert ('error="invalid_token"' in challenge) == (error is not None)
    assert guarded.get("/no/such/path", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "authorization", ["Bearer token-one", "Bearer token-two", "bearer token-one", "BEARER  token-two "]
)
def test_a_valid_token_is_let_through(guarded, conforms, authorization):
    response = guarded.post(EVALUATE, json=SEED_GRAPH, headers={"Authorization": authorization})
    assert response.status_code == 200
    conforms(EVALUATE, "post", 200, response.headers["Content-Type"], response.data)
    assert guarded.get("/metrics", headers={"Authorization": authorization}).status_code == 200


def test_authentication_is_off_without_tokens(client):
    assert client.post(EVALUATE, json=SEED_GRAPH).status_code == 200
    assert client.get("/metrics").status_code == 200


def test_tokens_from_the_environment_and_a_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# the grading pipeline\nfile-token-1\n\n  file-token-2  \n")
    config = from_environment({"VALUEGRAPH_TOKENS": " env-a, env-b ,", "VALUEGRAPH_TOKENS_FILE": str(path)})
    assert config["API_TOKENS"] == ("env-a", "env-b")
    assert config["API_TOKENS_FROM_FILE"] == ("file-token-1", "file-token-2")
    assert from_environment({})["API_TOKENS"] == () == from_environment({})["API_TOKENS_FROM_FILE"]


@pytest.mark.parametrize(
    "environ, words",
    [
        ({"VALUEGRAPH_TOKENS": "secret with-space"}, "VALUEGRAPH_TOKENS: token 1 has characters"),
        ({"VALUEGRAPH_TOKENS": 'ok,"secret"'}, "VALUEGRAPH_TOKENS: token 2 has characters"),
        ({"VALUEGRAPH_TOKENS": ","}, "VALUEGRAPH_TOKENS is set but holds no token"),
        ({"VALUEGRAPH_TOKENS_FILE": "/no/such/file"}, "VALUEGRAPH_TOKENS_FILE: cannot read the tokens file"),
    ],
)
def test_unusable_tokens_stop_the_start_without_showing_them(environ, words):
    with pytest.raises(ConfigError, match=re.escape(words)) as raised:
        from_environment(environ)
    assert "secret" not in str(raised.value)


# --- the real gunicorn, two workers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with gunicorn_server(tmp_path_factory.mktemp("gunicorn-observed"), WEB_CONCURRENCY="2") as running:
        yield running


def scrape(server, request_id: str | None = None) -> dict[tuple, float]:
    response = requests.get(
        server.base + "/metrics", headers={"X-Request-ID": request_id} if request_id else {}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples(response.text)


def server_log(server, *request_ids: str) -> list[dict]:
    """The server's log lines, once those of `request_ids` are all in: a worker finishes a request (its
    metrics, then its log line) just after the client has the answer."""
    deadline = time.monotonic() + 20
    while True:
        text = server.stdout.read_text()
        lines = log_lines(text[: text.rfind("\n") + 1])
        missing = set(request_ids) - {line["request_id"] for line in lines}
        if not missing:
            return lines
        assert time.monotonic() < deadline, f"no log line for {sorted(missing)[:5]}:\n{text[-4000:]}"
        time.sleep(0.05)


@pytest.mark.slow
def test_metrics_and_log_lines_cover_both_workers(server, conforms):
    graph = chain(20)
    body = orjson.dumps(graph)
    expected = evaluate_with_seed(graph["nodes"], graph["nodes"][-1]["id"])
    before = scrape(server)
    run = uuid.uuid4().hex[:8]

    def post(k: int) -> requests.Response:
        # requests.post without a session: a connection of its own for each request
        return requests.post(
            server.base + EVALUATE,
            data=body,
            headers={"Content-Type": "application/json", "X-Request-ID": f"both-{run}-{k}"},
            timeout=30,
        )

    sent, pids = 0, set()
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):  # until both workers have answered some; each batch is 32 connections
            for response in pool.map(post, range(sent, sent + 32)):
                assert response.status_code == 200
                answer = {node["id"]: (node["data"], node["grad"]) for node in response.json()["nodes"]}
                assert answer == expected
                assert phases_of(response.headers["Server-Timing"]) == (
                    ["read", "fastpath"] if fastpath.ACTIVE else PHASES
                )
            sent += 32
            lines = server_log(server, *(f"both-{run}-{k}" for k in range(sent)))
            pids = {line["pid"] for line in lines if line["request_id"].startswith(f"both-{run}-")}
            if len(pids) == 2:
                break
    assert len(pids) == 2, "one worker answered every request"

    last = requests.get(server.base + "/metrics", headers={"X-Request-ID": f"scrape-{run}"}, timeout=10)
    conforms("/metrics", "get", last.status_code, last.headers["Content-Type"], last.content)
    after = samples(last.text)
    assert (
        value(after, "valuegraph_requests_total", route=EVALUATE, method="POST", status="200")
        - value(before, "valuegraph_requests_total", route=EVALUATE, method="POST", status="200")
        == sent
    )
    assert value(after, "valuegraph_graph_nodes_sum") - value(before, "valuegraph_graph_nodes_sum") == 20 * sent
    assert (
        value(after, "valuegraph_admitted_body_bytes_total") - value(before, "valuegraph_admitted_body_bytes_total")
        == len(body) * sent
    )
    assert value(after, "valuegraph_in_flight_requests") == 1  # the scrape itself

    # Each worker's own count, by pid, is the number of log lines that worker wrote before the scrape.
    lines = [line for line in server_log(server, f"scrape-{run}") if line["request_id"] != f"scrape-{run}"]
    by_pid = {pid: sum(line["pid"] == pid for line in lines) for pid in {line["pid"] for line in lines}}
    assert {
        int(dict(labels)["pid"]): count
        for (name, labels), count in after.items()
        if name == "valuegraph_worker_requests"
    } == by_pid

    ours = [line for line in lines if line["request_id"].startswith(f"both-{run}-")]
    assert sorted(line["request_id"] for line in ours) == sorted(f"both-{run}-{k}" for k in range(sent))
    for line in ours:
        assert line.keys() >= LOG_FIELDS
        assert (line["method"], line["path"], line["status"]) == ("POST", EVALUATE, 200)
        assert (line["nodes"], line["body_bytes"]) == (20, len(body))


@pytest.mark.slow
def test_every_line_on_stdout_is_a_json_log_line(server):
    requests.get(server.base + "/healthz", headers={"X-Request-ID": "stdout-only-json"}, timeout=10)
    lines = server_log(server, "stdout-only-json")
    assert all(line.keys() >= LOG_FIELDS for line in lines)
    assert "stdout-only-json" not in server.stderr.read_text()


@pytest.mark.slow
def test_request_ids_through_the_server(server):
    given = requests.get(server.base + "/healthz", headers={"X-Request-ID": "given-1"}, timeout=10)
    assert given.headers["X-Request-ID"] == "given-1"
    unfit = requests.get(server.base + "/healthz", headers={"X-Request-ID": "no spaces allowed"}, timeout=10)
    made = requests.get(server.base + "/healthz", timeout=10)
    assert GENERATED_ID.fullmatch(unfit.headers["X-Request-ID"]) and GENERATED_ID.fullmatch(
        made.headers["X-Request-ID"]
    )
    assert unfit.headers["X-Request-ID"] != made.headers["X-Request-ID"]
    refused = requests.post(
        server.base + EVALUATE,
        data=b"[",
        headers={"Content-Type": "application/json", "X-Request-ID": "refused-1"},
        timeout=10,
    )
    assert refused.status_code == 400 and refused.json()["request_id"] == "refused-1"
    [line] = [line for line in server_log(server, "refused-1") if line["request_id"] == "refused-1"]
    assert (line["status"], line["problem"]) == (400, "/problems/invalid-json")


@pytest.mark.slow
def test_a_killed_workers_live_gauges_go_with_it(server):
    """child_exit in gunicorn.conf.py marks a dead worker's files, so its in-flight count and its request
    count leave /metrics with it, while the counters keep what it answered."""
    found = scrape(server)
    served = value(found, "valuegraph_requests_total", route="/healthz", method="GET", status="200")
    worker_pids = {int(dict(labels)["pid"]) for (name, labels) in found if name == "valuegraph_worker_requests"}
    assert len(worker_pids) == 2, "each live worker is listed, with 0 if it answered nothing yet"
    victim = min(worker_pids)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    for attempt in itertools.count():
        found = scrape(server, f"after-kill-{attempt}")
        live = {int(dict(labels)["pid"]) for (name, labels) in found if name == "valuegraph_worker_requests"}
        if victim not in live:
            break
        assert time.monotonic() < deadline, f"worker {victim} is still in /metrics: {live}"
        time.sleep(0.1)
    assert value(found, "valuegraph_requests_total", route="/healthz", method="GET", status="200") >= served
    server_log(server, f"after-kill-{attempt}")
    assert value(scrape(server), "valuegraph_in_flight_requests") == 1  # only that scrape: the victim's is gone


@pytest.mark.slow
def test_bearer_tokens_through_the_server(tmp_path, conforms):
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("from-the-file-7b1c\n")
    metrics_directory = tmp_path / "metrics"
    metrics_directory.mkdir()
    stale = metrics_directory / "counter_999999.db"
    stale.write_bytes(b"left by an earlier run")
    with gunicorn_server(
        tmp_path,
        WEB_CONCURRENCY="2",
        VALUEGRAPH_TOKENS="from-the-env-93fa",
        VALUEGRAPH_TOKENS_FILE=str(tokens_file),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_directory),
    ) as guarded:
        assert not stale.exists(), "the metrics directory was not emptied at start"
        body = orjson.dumps(SEED_GRAPH)
        json = {"Content-Type": "application/json"}
        bad = "wrong-token-5d2e"
        for headers in [{}, {"Authorization": f"Bearer {bad}"}]:
            response = requests.post(guarded.base + EVALUATE, data=body, headers={**json, **headers}, timeout=10)
            assert response.status_code == 401
            conforms(EVALUATE, "post", 401, response.headers["Content-Type"], response.content)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert requests.get(guarded.base + "/metrics", headers=headers, timeout=10).status_code == 401
        for token in ["from-the-env-93fa", "from-the-file-7b1c"]:
            authorization = {"Authorization": f"Bearer {token}"}
            response = requests.post(guarded.base + EVALUATE, data=body, headers={**json, **authorization}, timeout=10)
            assert response.status_code == 200
            conforms(EVALUATE, "post", 200, response.headers["Content-Type"], response.content)
            assert requests.get(guarded.base + "/metrics", headers=authorization, timeout=10).status_code == 200
        assert requests.get(guarded.base + "/healthz", headers={"X-Request-ID": "guarded-last"}, timeout=10).ok
        assert list(metrics_directory.glob("*.db")), "the workers did not use PROMETHEUS_MULTIPROC_DIR"
        lines = server_log(guarded, "guarded-last")
        assert [line["status"] for line in lines if line["path"] == EVALUATE] == [401, 401, 200, 200]
    logs = guarded.stdout.read_text() + guarded.stderr.read_text()
    for secret in ["from-the-env-93fa", "from-the-file-7b1c", bad]:
        assert secret not in logs
