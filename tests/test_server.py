"""The real server: gunicorn started with gunicorn.conf.py on a free port, driven over HTTP with requests.

Every response is checked against openapi.yaml with the `conforms` fixture. The session's `live_server`
(from conftest.py) serves most tests; `gunicorn_server` starts another with a small body limit, whose stdout
and stderr are kept apart, so the access log's destination can be seen.
"""

import math
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
import yaml
from openapi_schema_validator import OAS30Validator

from service.core import fastpath
from tests.support import ROOT, SEED_GRAPH
from tools.reference_value import evaluate_with_seed
from tools.server import gunicorn_server

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
EVALUATE = "/v1/evaluate"


@pytest.fixture(scope="module")
def small_body_server(tmp_path_factory):
    """A second gunicorn whose body limit is 1000 bytes."""
    with gunicorn_server(tmp_path_factory.mktemp("gunicorn-small-body"), VALUEGRAPH_MAX_BODY_BYTES="1000") as server:
        yield server


# --- helpers -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def checked(conforms):
    """checked(response, path, method): assert the response conforms to the contract; return its JSON body
    (None for a non-JSON body)."""

    def check(response, path, method):
        content_type = response.headers.get("Content-Type", "")
        conforms(path, method, response.status_code, content_type, response.content)
        return orjson.loads(response.content) if content_type.split(";")[0].strip().endswith("json") else None

    return check


@pytest.fixture(scope="session")
def is_problem(spec):
    """is_problem(response, status): the response is `status` as problem+json valid against the Problem schema.
    For responses the contract lists under no operation (an unknown path, GET on /v1/evaluate)."""

    def check(response, status):
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"].split(";")[0] == "application/problem+json"
        body = orjson.loads(response.content)
        OAS30Validator({**spec["components"]["schemas"]["Problem"], "components": spec["components"]}).validate(body)
        assert body["status"] == status
        return body

    return check


def in_process(graph):
    """The seed's class on the same graph, in this process: {id: (data, grad)}, output the last node."""
    return evaluate_with_seed(graph["nodes"], graph["nodes"][-1]["id"])


def post_graph(base, graph, session=requests):
    return session.post(base + EVALUATE, data=orjson.dumps(graph), headers=JSON, timeout=60)


def as_results(body):
    return {node["id"]: (node["data"], node["grad"]) for node in body["nodes"]}


# --- 200 -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_seed_example(live_server, checked, content_type):
    response = requests.post(
        live_server + EVALUATE, data=orjson.dumps(SEED_GRAPH), headers={"Content-Type": content_type}, timeout=10
    )
    assert response.status_code == 200
    body = checked(response, EVALUATE, "post")
    assert body["output"] == "e"
    assert [node["id"] for node in body["nodes"]] == ["a", "b", "c", "d", "e"]
    results = as_results(body)
    assert results == in_process(SEED_GRAPH)  # bit-identical to the seed's class
    assert results["e"][0] == math.log(10)
    expected_grads = {"a": 0.7, "b": 0.2, "c": 0.2, "d": 0.1, "e": 1}
    assert {key: grad for key, (_, grad) in results.items()} == pytest.approx(expected_grads, rel=1e-15)


def test_million_node_chain(live_server, conforms):
    """x0 = 0, k = 1, x_i = x_{i-1} + k: 1,000,000 nodes, 999,998 deep. Every x_i has data i and grad 1,
    and k has grad 999,998, all exact in doubles; no recursion limit in the real server.

    The whole body through the OAS 3.0 validator would take longer than the test, so it sees the envelope with the
    first and last 1,000 nodes, and the exact comparison of every node below pins each one's keys and types."""
    adds = 999_998
    nodes = [{"id": 0, "op": "value", "data": 0.0}, {"id": "k", "op": "value", "data": 1.0}]
    nodes += [{"id": i, "op": "add", "children": [i - 1, "k"]} for i in range(1, adds + 1)]
    response = requests.post(live_server + EVALUATE, data=orjson.dumps({"nodes": nodes}), headers=JSON, timeout=120)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"] == "application/json"
    body = orjson.loads(response.content)
    assert set(body) == {"output", "nodes"}
    sample = {"output": body["output"], "nodes": body["nodes"][:1000] + body["nodes"][-1000:]}
    conforms(EVALUATE, "post", response.status_code, response.headers["Content-Type"], orjson.dumps(sample))
    assert body["output"] == adds
    results = body["nodes"]
    assert len(results) == adds + 2
    assert results[0] == {"id": 0, "data": 0.0, "grad": 1.0}
    assert results[1] == {"id": "k", "data": 1.0, "grad": float(adds)}
    assert all(node == {"id": i, "data": float(i), "grad": 1.0} for i, node in enumerate(results[2:], start=1))


def test_keep_alive(live_server, checked):
    """Several requests over one requests.Session: all answered, all over one TCP connection."""
    local_ports = set()
    with requests.Session() as session:
        for scale in range(1, 7):
            graph = {
                "nodes": [
                    {**node, "data": node["data"] * scale} if "data" in node else node for node in SEED_GRAPH["nodes"]
                ]
            }
            response = session.post(
                live_server + EVALUATE, data=orjson.dumps(graph), headers=JSON, timeout=10, stream=True
            )
            local_ports.add(response.raw.connection.sock.getsockname()[1])
            assert response.status_code == 200
            assert as_results(checked(response, EVALUATE, "post")) == in_process(graph)
        response = session.get(live_server + "/healthz", timeout=10, stream=True)
        local_ports.add(response.raw.connection.sock.getsockname()[1])
        assert response.status_code == 200
        checked(response, "/healthz", "get")
    assert len(local_ports) == 1, local_ports


def test_concurrent_requests(live_server, checked):
    """8 threads x 20 requests, each a different graph; every answer is the right one."""

    def graph_for(k):
        return {
            "nodes": [
                {"id": "x", "op": "value", "data": 1.0 + k / 7},
                {"id": "y", "op": "value", "data": -0.5 * k},
                {"id": "p", "op": "mul", "children": ["x", "y"]},
                {"id": "q", "op": "exp", "children": ["x"]},
                {"id": "r", "op": "sub", "children": ["q", "p"]},
                {"id": "s", "op": "pow", "children": ["r"], "exponent": 2},
                {"id": "t", "op": "div", "children": ["s", "x"]},
            ]
        }

    def worker(thread):
        outcomes = []
        with requests.Session() as session:
            for n in range(20):
                graph = graph_for(thread * 20 + n)
                response = post_graph(live_server, graph, session)
                outcomes.append(
                    (graph, response.status_code, response.headers.get("Content-Type", ""), response.content)
                )
        return outcomes

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = [outcome for batch in pool.map(worker, range(8)) for outcome in batch]
    assert len(outcomes) == 160
    for graph, status, content_type, content in outcomes:
        assert status == 200, content
        checked_response = requests.Response()
        checked_response.status_code, checked_response._content = status, content
        checked_response.headers["Content-Type"] = content_type
        assert as_results(checked(checked_response, EVALUATE, "post")) == in_process(graph)


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"nodes": [', id="truncated"),
        pytest.param(b"", id="empty"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'{"nodes": [{"id": "a", "data": 1.0}],}', id="trailing-comma"),
        pytest.param(b'{"nodes": [{"id": "\xff\xfe", "op": "value", "data": 1.0}]}', id="invalid-utf8"),
        pytest.param(b'{"nodes": [{"id": "a", "op": "value", "data": NaN}]}', id="nan"),
        pytest.param(b'{"nodes": [{"id": "a", "op": "value", "data": Infinity}]}', id="infinity"),
        pytest.param(b'{"nodes": [{"id": "a", "op": "value", "data": 1e400}]}', id="number-too-large"),
        pytest.param(b"[" * 2000 + b"]" * 2000, id="nested-2000-lists"),
        pytest.param(b'{"a":' * 2000 + b"1" + b"}" * 2000, id="nested-2000-objects"),
    ],
)
def test_not_json_is_400(live_server, checked, body):
    response = requests.post(live_server + EVALUATE, data=body, headers=JSON, timeout=10)
    assert response.status_code == 400, response.text
    problem = checked(response, EVALUATE, "post")
    assert problem["type"] == "/problems/invalid-json"
    assert problem["status"] == 400
    assert problem["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Content-Type": "text/plain"}, id="text-plain"),
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, id="form"),
        pytest.param({"Content-Type": "application/problem+json"}, id="problem-json"),
        pytest.param({}, id="no-content-type"),
    ],
)
def test_wrong_content_type_is_415(live_server, checked, headers):
    response = requests.post(live_server + EVALUATE, data=orjson.dumps(SEED_GRAPH), headers=headers, timeout=10)
    assert response.status_code == 415, response.text
    problem = checked(response, EVALUATE, "post")
    assert problem["status"] == 415


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_evaluate_are_405_with_allow(live_server, checked, is_problem, method):
    response = requests.request(method, live_server + EVALUATE, timeout=10)
    is_problem(response, 405)
    # The contract describes 405 (with its Allow header) under POST /v1/evaluate: check against that.
    checked(response, EVALUATE, "post")
    allowed = {name.strip() for name in response.headers["Allow"].split(",")}
    assert "POST" in allowed
    assert method not in allowed


def test_unknown_path_is_404_problem(live_server, is_problem):
    for response in (
        requests.get(live_server + "/no/such/path", timeout=10),
        requests.post(live_server + "/v1/evaluat", data=b"{}", headers=JSON, timeout=10),
    ):
        assert is_problem(response, 404)["title"]


def test_body_over_the_limit_is_413(small_body_server, checked):
    """Content-Length over VALUEGRAPH_MAX_BODY_BYTES (1000 here): 413; the connection still serves the next request."""
    base = small_body_server.base
    big_graph = {"nodes": [{"id": f"n{i}", "op": "value", "data": float(i)} for i in range(100)]}
    assert len(orjson.dumps(big_graph)) > 1000
    with requests.Session() as session:
        small = post_graph(base, SEED_GRAPH, session)  # under 1000 bytes: served
        assert small.status_code == 200
        checked(small, EVALUATE, "post")
        response = post_graph(base, big_graph, session)
        assert response.status_code == 413, response.text
        assert checked(response, EVALUATE, "post")["status"] == 413
        again = post_graph(base, SEED_GRAPH, session)
        assert again.status_code == 200
        assert as_results(checked(again, EVALUATE, "post")) == in_process(SEED_GRAPH)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            orjson.dumps({"nodes": [{"id": f"n{i}", "op": "value", "data": float(i)} for i in range(100)]}),
            id="cut-json-answers-400",
        ),
        pytest.param(orjson.dumps(SEED_GRAPH) + b" " * 3000, id="valid-json-prefix-answers-200"),
    ],
)
def test_chunked_body_over_the_limit_is_413(small_body_server, checked, body):
    """No Content-Length (Transfer-Encoding: chunked): the limit must hold while the body is read."""
    assert len(body) > 1000
    response = requests.post(
        small_body_server.base + EVALUATE, data=iter([body[:500], body[500:]]), headers=JSON, timeout=10
    )
    checked(response, EVALUATE, "post")
    assert response.status_code == 413, response.text


def test_access_log_goes_to_stdout(small_body_server):
    response = requests.get(
        small_body_server.base + "/healthz", headers={"X-Request-ID": "access-log-probe"}, timeout=10
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 5
    while '"request_id":"access-log-probe"' not in small_body_server.stdout.read_text():
        assert time.monotonic() < deadline, (
            f"no access log line on stdout:\n{small_body_server.stdout.read_text()}\n"
            f"stderr:\n{small_body_server.stderr.read_text()}"
        )
        time.sleep(0.05)
    assert "access-log-probe" not in small_body_server.stderr.read_text()


def test_cycle_is_422_naming_the_nodes(live_server, checked):
    graph = {
        "nodes": [
            {"id": "k", "op": "value", "data": 1.0},
            {"id": "a", "op": "add", "children": ["b", "k"]},
            {"id": "b", "op": "mul", "children": ["k", "a"]},
            {"id": "out", "op": "neg", "children": ["a"]},
        ]
    }
    response = post_graph(live_server, graph)
    assert response.status_code == 422, response.text
    problem = checked(response, EVALUATE, "post")
    assert problem["type"] == "/problems/invalid-graph"
    [error] = problem["errors"]
    assert set(error["cycle"]) == {"a", "b"}
    assert error["cycle"][0] == error["cycle"][-1]
    assert error["node"] in {"a", "b"}
    assert "'a'" in error["message"] and "'b'" in error["message"]


@pytest.mark.parametrize(
    "graph, node, field",
    [
        pytest.param({"nodes": [{"id": "a", "op": "value", "data": "2.0"}]}, "a", "data", id="string-number"),
        pytest.param(
            {"nodes": [{"id": "a", "op": "value", "data": 1.0}, {"id": "b", "op": "add", "children": ["a", "z"]}]},
            "b",
            "children[1]",
            id="unknown-child",
        ),
        pytest.param(
            {"nodes": [{"id": "a", "op": "value", "data": 0.0}, {"id": "b", "op": "log", "children": ["a"]}]},
            "b",
            None,
            id="log-of-zero",
        ),
    ],
)
def test_other_422s(live_server, checked, graph, node, field):
    response = post_graph(live_server, graph)
    assert response.status_code == 422, response.text
    problem = checked(response, EVALUATE, "post")
    assert any(error.get("node") == node and error.get("field") == field for error in problem["errors"]), problem


# --- the service about itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("path, status", [("/healthz", "ok"), ("/readyz", "ready")])
def test_health(live_server, checked, path, status):
    response = requests.get(live_server + path, timeout=10)
    assert response.status_code == 200
    assert checked(response, path, "get") == {
        "status": status,
        **({"path": fastpath.path()} if path == "/readyz" else {}),
    }


def test_openapi_documents(live_server, checked):
    as_yaml = requests.get(live_server + "/openapi.yaml", timeout=10)
    as_json = requests.get(live_server + "/openapi.json", timeout=10)
    assert as_yaml.status_code == as_json.status_code == 200
    checked(as_yaml, "/openapi.yaml", "get")
    document = checked(as_json, "/openapi.json", "get")
    assert document == yaml.safe_load(as_yaml.text)
    assert document == yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
