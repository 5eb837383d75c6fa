"""The Python client (client/src/valuegraph) against the real server: Value graphs of both styles
differentiated remotely equal their local backward bit for bit; retries; problems as exceptions."""

import http.server
import io
import json
import random
import re
import threading
from contextlib import contextmanager

import pytest
import requests
from micrograd.engine import Value as MicrogradValue
from micrograd.nn import MLP

import valuegraph
from service.core import engine
from tests.support import SEED_GRAPH, leaf, op
from tools import reference_value as seed_value
from tools.server import free_port, gunicorn_server
from valuegraph import cli
from valuegraph.client import BATCH_SECONDS_PER_GRAPH
from valuegraph.graph import serialize


@pytest.fixture(scope="module")
def remote(live_server):
    with valuegraph.Client(live_server) as client:
        yield client


def bits(number):
    return float(number).hex()


def assert_remote_equals_local(remote, root):
    """client.backward(root), then the local backward on zeroed grads: every grad, bit for bit."""
    _, values = serialize(root)
    data = remote.backward(root)
    assert bits(data) == bits(root.data)
    remote_grads = [bits(value.grad) for value in values]
    for value in values:
        value.grad = 0
    root.backward()
    assert remote_grads == [bits(value.grad) for value in values]
    return values


def micrograd_mlp_loss(seed):
    """micrograd's own demo at small scale: MLP(3, [4, 4, 1]) and a squared-error loss on four samples."""
    random.seed(seed)
    model = MLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    predictions = [model(x) for x in xs]
    return sum((prediction - target) ** 2 for target, prediction in zip(ys, predictions)), model


@pytest.mark.slow
def test_a_micrograd_mlp_loss_is_differentiated_bit_for_bit(remote):
    """Every node's grad, on 50 networks: the service adds each grad's contributions in the order
    micrograd's backward does on these Values."""
    learning = 0
    for seed in range(50):
        loss, model = micrograd_mlp_loss(seed)
        assert len(assert_remote_equals_local(remote, loss)) > 100
        learning += any(parameter.grad != 0 for parameter in model.parameters())
    assert learning > 40  # not every ReLU dead


def test_micrograd_itself_differs_in_the_last_bits_from_one_build_of_a_network_to_the_next():
    """Why the client's README says "on the same Values": micrograd's backward visits a node's children
    in the order of the set `_prev`, which follows the objects' addresses, so two builds of one network
    from one seed add some grads in other orders, and some parameters' grads differ in the last bits."""
    builds = [(micrograd_mlp_loss(seed), micrograd_mlp_loss(seed)) for seed in range(30)]  # all alive at once
    differing = 0
    for (loss, model), (same_loss, same_model) in builds:
        loss.backward()
        same_loss.backward()
        grads = [(p.grad, q.grad) for p, q in zip(model.parameters(), same_model.parameters())]
        assert all(abs(a - b) <= 1e-12 * max(1.0, abs(a)) for a, b in grads)
        differing += any(bits(a) != bits(b) for a, b in grads)
    assert differing > 0


@pytest.mark.slow
def test_micrograd_a_times_a_and_a_plus_a_get_two_children(remote):
    a = MicrogradValue(-1.5)
    square = a * a
    double = square + square
    root = (double.relu() + a**3 - a / 0.7) * double
    assert len(square._prev) == 1 and len(double._prev) == 1
    nodes = valuegraph.to_graph(root)["nodes"]
    ids = {id(value): i for i, value in enumerate(serialize(root)[1])}
    assert nodes[ids[id(square)]]["children"] == [ids[id(a)]] * 2
    assert nodes[ids[id(double)]]["children"] == [ids[id(square)]] * 2
    assert_remote_equals_local(remote, root)
    assert a.grad != 0


def test_micrograd_children_go_in_the_sets_iteration_order():
    x, y = MicrogradValue(2.0), MicrogradValue(3.0)
    product = x * y
    body = valuegraph.to_graph(product)
    leaves = [value for value in serialize(product)[1] if not value._prev]
    assert leaves == list(product._prev)
    assert body["nodes"][-1] == {"id": 2, "op": "mul", "children": [0, 1]}


@pytest.mark.slow
def test_the_seeds_values_are_sent_as_recorded_and_differentiated_bit_for_bit(remote):
    V = seed_value.Value
    a, b = V(2.0), V(3.0)
    c = a + b
    d = c * a
    e = d.log()
    body = valuegraph.to_graph(e)
    assert body == {
        "nodes": [
            {"id": 0, "data": 2.0},
            {"id": 1, "data": 3.0},
            {"id": 2, "data": 5.0, "children": [0, 1], "local_grads": [1, 1]},
            {"id": 3, "data": 10.0, "children": [2, 0], "local_grads": [2.0, 5.0]},
            {"id": 4, "data": e.data, "children": [3], "local_grads": [0.1]},
        ],
        "output": 4,
    }
    assert_remote_equals_local(remote, e)
    assert (a.grad, b.grad) == pytest.approx((0.7, 0.2), rel=1e-15)


@pytest.mark.slow
def test_a_seed_style_network_with_every_op(remote):
    rng = random.Random(7)
    V = seed_value.Value
    inputs = [V(rng.uniform(-1, 1)) for _ in range(4)]
    weights = [[V(rng.uniform(-1, 1)) for _ in inputs] for _ in range(5)]
    hidden = [sum((w * x for w, x in zip(row, inputs)), V(0.1)).relu() for row in weights]
    mixed = [(h - 0.5) / (h.exp() + 1) + (-h) ** 2 for h in hidden]
    loss = sum(mixed, V(0.0)) * mixed[0]
    values = assert_remote_equals_local(remote, loss)
    assert len(values) > 80
    assert any(w.grad != 0 for row in weights for w in row)


def test_ids_are_small_stable_and_children_first():
    loss, _ = micrograd_mlp_loss(3)
    first, second = valuegraph.to_graph(loss), valuegraph.to_graph(loss)
    assert first == second
    assert [node["id"] for node in first["nodes"]] == list(range(len(first["nodes"])))
    assert first["output"] == len(first["nodes"]) - 1
    for node in first["nodes"]:
        assert all(child < node["id"] for child in node.get("children", ()))


def test_labels_are_taken_from_values_that_have_them():
    """micrograd's lecture names its Values (`Value(2.0, label='a')`); a label that is not a string of
    1 to 256 characters is not sent."""
    a, b = MicrogradValue(2.0), MicrogradValue(3.0)
    a.label, b.label = "a", ""
    c = a * b
    c.label = "c" * 257
    e = c + a
    e.label = "e"
    nodes = valuegraph.to_graph(e)["nodes"]
    labels = {(node.get("op"), node.get("data")): node.get("label") for node in nodes}
    assert labels == {(None, 2.0): "a", (None, 3.0): None, ("mul", None): None, ("add", None): "e"}
    a.label = 7
    assert "label" not in valuegraph.to_graph(a)["nodes"][0]
    assert all("label" not in node for node in valuegraph.to_graph(seed_value.Value(2.0) * 3)["nodes"])


def test_an_op_micrograd_does_not_record_here_is_a_clear_error():
    a = MicrogradValue(1.0)
    tanh = MicrogradValue(0.76, (a,), "tanh")
    with pytest.raises(valuegraph.UnsupportedValue, match=r"micrograd op 'tanh'.*'\+', '\*', '\*\*k' and 'ReLU'"):
        valuegraph.to_graph(tanh * 2)
    with pytest.raises(valuegraph.UnsupportedValue, match="not a Value"):
        valuegraph.to_graph(3.0)
    with pytest.raises(valuegraph.UnsupportedValue, match="finite numbers only"):
        valuegraph.to_graph(seed_value.Value(float("nan")) * 2)


@pytest.mark.slow
def test_a_million_deep_chain_goes_there_and_back(remote):
    """The engine's Value is the seed's class with a backward that does not recurse (the seed's
    recursive one cannot run a million deep); the service must agree with it on every node."""
    root = leaf = engine.Value(1.0)
    for _ in range(999_999):
        root = engine.Value(root.data * 0.9999999, (root,), (0.9999999,))
    nodes, values = serialize(root)
    assert len(nodes) == 1_000_000 and nodes[1] == {
        "id": 1,
        "data": values[1].data,
        "children": [0],
        "local_grads": [0.9999999],
    }
    del nodes
    assert bits(remote.backward(root)) == bits(root.data)
    remote_grads = [bits(value.grad) for value in values]
    for value in values:
        value.grad = 0
    root.backward()
    assert remote_grads == [bits(value.grad) for value in values]
    assert 0 < leaf.grad < 1


@pytest.mark.slow
def test_expression_and_render(remote):
    answer = remote.expression("log((a + b) * a)", a=2, b=3)
    assert (answer["output"], answer["data"], answer["grads"]) == ("e", 2.302585092994046, {"a": 0.7, "b": 0.2})
    picture = remote.render(SEED_GRAPH)
    assert picture.startswith("flowchart BT\n") and "    class n4 output\n" in picture
    assert remote.render(SEED_GRAPH, "dot").startswith("digraph")
    a, b = MicrogradValue(2.0), MicrogradValue(3.0)
    a.label, b.label = "weight", "input"
    product = a * b
    drawn = remote.render(valuegraph.to_graph(product))
    assert re.search(r'"2 = (weight \* input|input \* weight)<br/>data 6, grad 1"', drawn)
    assert remote.evaluate(SEED_GRAPH)["output"] == "e"


@pytest.mark.slow
def test_a_refusal_raises_problem_error_with_the_details_and_is_not_retried(live_server):
    sleeps = []
    client = valuegraph.Client(live_server, retries=5, sleep=sleeps.append)
    with pytest.raises(valuegraph.ProblemError) as caught:
        client.evaluate({"nodes": [{"id": "x", "op": "value", "data": "2.0"}]})
    problem = caught.value
    assert (problem.status, problem.title, problem.type) == (422, "The graph is not valid", "/problems/invalid-graph")
    assert problem.detail == "1 problem found; see errors."
    (error,) = problem.errors
    assert (error["node"], error["index"], error["field"]) == ("x", 0, "data")
    assert error["message"].startswith("Not a valid number")
    assert f"node 'x' (index 0) field data: {error['message']}" in str(problem)
    assert sleeps == []


def route_exists(base, path):
    return requests.post(base + path, json={}, timeout=10).status_code != 404


@pytest.mark.slow
def test_evaluate_batch(live_server, remote):
    if not route_exists(live_server, "/v1/evaluate/batch"):
        pytest.skip("POST /v1/evaluate/batch is not in this service yet (issue 8)")
    answer = remote.evaluate_batch([SEED_GRAPH, {"nodes": []}])
    assert [result["status"] for result in answer["results"]] == [200, 422]


@pytest.mark.slow
def test_grade(live_server, remote):
    if not route_exists(live_server, "/v1/grade"):
        pytest.skip("POST /v1/grade is not in this service yet (issue 8)")
    answer = remote.grade(SEED_GRAPH, [{"id": "a", "grad": 0.2}])
    assert answer["passed"] is False and answer["root_causes"][0]["node"] == "a"


@pytest.mark.slow
def test_a_graph_with_a_constant_sent_directly_is_sent_without_the_mark(remote):
    """Grading's `"constant": true` (a plain number of a student's program, in the suites' graphs) is not the
    service's: every method that sends a graph strips it, and the service answers the leaf it is."""
    nodes = [leaf("k", 2.0), leaf("x", 3.0), op("n", "sub", "k", "x"), op("m", "mul", "n", "x")]
    graph = {"nodes": [{**nodes[0], "constant": True}, *nodes[1:]]}
    plain = {"nodes": nodes}
    with pytest.raises(valuegraph.ProblemError) as refused:
        remote.post("/v1/evaluate", graph)
    assert refused.value.status == 422 and "constant" in json.dumps(refused.value.errors)
    assert remote.evaluate(graph) == remote.evaluate(plain)
    assert remote.evaluate_batch([graph, plain]) == remote.evaluate_batch([plain, plain])
    assert remote.render(graph) == remote.render(plain)
    submitted = [{"id": "x", "data": 3.0, "grad": -4.0}, {"id": "n", "data": -1.0, "grad": 3.0}]  # m = (2 - x) * x
    assert remote.grade(graph, submitted)["passed"]
    assert remote.grade(graph, submitted) == remote.grade(plain, submitted)
    assert remote.grade_batch([{**graph, "submitted": submitted}]) == remote.grade_batch(
        [{**plain, "submitted": submitted}]
    )
    assert graph["nodes"][0]["constant"] is True  # the caller's graph is left as it was


def chain(length):
    """x, then x * x1, ... : a graph whose grade takes long enough to pass a short deadline alone."""
    return {"nodes": [leaf(0, 0.5)] + [op(i, "mul", i - 1, 0) for i in range(1, length)]}


@pytest.mark.slow
def test_a_batch_past_the_services_deadline_is_sent_again_in_halves_keeping_each_graphs_result(live_server, tmp_path):
    """With a 0.3 s deadline a batch of 200 graphs gets 504; its halves, and theirs, are answered; the one
    graph that is too slow alone has its own 504 as its result, and the others the answers they get alone."""
    graphs = list(valuegraph.suite(200, variant=1).values())
    submitted = [{"id": node["id"], "data": 1.0} for node in graphs[0]["nodes"]]
    bodies = [{**graph, "submitted": submitted if k == 0 else []} for k, graph in enumerate(graphs)]
    bodies.insert(100, {**chain(60_000), "submitted": [{"id": 0, "grad": 1.0}]})
    with valuegraph.Client(live_server) as normal:
        expected = normal.grade_batch(bodies[:100] + bodies[101:])["results"]
    statuses = []
    with (
        gunicorn_server(tmp_path, VALUEGRAPH_DEADLINE_SECONDS="0.3") as server,
        valuegraph.Client(server.base) as short,
    ):
        short.session.hooks["response"].append(lambda response, **_: statuses.append(response.status_code))
        results = short.grade_batch(bodies)["results"]
    assert statuses[0] == 504 and statuses.count(504) >= 2 and statuses.count(200) >= 2
    too_slow = results.pop(100)
    assert too_slow["status"] == 504 and too_slow["problem"]["type"] == "/problems/deadline-exceeded"
    assert results == expected and results[0]["grade"]["passed"] is False


class RecordingSession(requests.Session):
    """A session that records each request's timeout."""

    def __init__(self):
        super().__init__()
        self.timeouts = []

    def request(self, method, url, **kwargs):
        self.timeouts.append(kwargs.get("timeout"))
        return super().request(method, url, **kwargs)


@pytest.mark.slow
def test_a_batch_request_waits_longer_the_more_graphs_it_carries(live_server):
    session = RecordingSession()
    with valuegraph.Client(live_server, timeout=20, batch_graphs=300, session=session) as client:
        client.evaluate(SEED_GRAPH)
        client.evaluate_batch([SEED_GRAPH] * 500)
    assert session.timeouts == [20, 20 + 300 * BATCH_SECONDS_PER_GRAPH, 20 + 200 * BATCH_SECONDS_PER_GRAPH]


# Retries, against a stand-in server that answers what each test scripts.


@contextmanager
def scripted_server(answers):
    """A server on loopback answering each POST with the next (status, headers, body) of `answers`."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append({"path": self.path, "headers": dict(self.headers)})
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers, body = answers.pop(0)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


UNAVAILABLE = json.dumps(
    {"type": "about:blank", "title": "Service Unavailable", "status": 503, "detail": "Busy."}
).encode()
OK = json.dumps({"output": "x", "nodes": [{"id": "x", "data": 1.0, "grad": 1}]}).encode()


def test_503_with_retry_after_is_retried_after_the_time_asked():
    answers = [(503, {"Retry-After": "2"}, UNAVAILABLE), (503, {"Retry-After": "0"}, UNAVAILABLE), (200, {}, OK)]
    sleeps = []
    with scripted_server(answers) as (base, seen):
        answer = valuegraph.Client(base, retries=3, token="s3cret", sleep=sleeps.append).evaluate({"nodes": []})
    assert answer["output"] == "x" and sleeps == [2.0, 0.0] and len(seen) == 3
    assert all(request["headers"]["Authorization"] == "Bearer s3cret" for request in seen)


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "3600"}, {"Retry-After": "soon"}])
def test_503_without_a_usable_retry_after_is_not_retried(headers):
    sleeps = []
    answers = [(503, {"Content-Type": "application/problem+json", **headers}, UNAVAILABLE)]
    with scripted_server(answers) as (base, seen), pytest.raises(valuegraph.ProblemError) as caught:
        valuegraph.Client(base, retries=3, sleep=sleeps.append).evaluate({"nodes": []})
    assert caught.value.status == 503 and caught.value.detail == "Busy." and sleeps == [] and len(seen) == 1


def test_retries_run_out_on_503():
    answers = [(503, {"Retry-After": "1"}, UNAVAILABLE)] * 3
    sleeps = []
    with scripted_server(answers) as (base, seen), pytest.raises(valuegraph.ProblemError):
        valuegraph.Client(base, retries=2, sleep=sleeps.append).evaluate({"nodes": []})
    assert sleeps == [1.0, 1.0] and len(seen) == 3


def test_a_non_problem_error_body_still_raises_problem_error():
    answers = [(502, {"Content-Type": "text/html"}, b"<h1>Bad Gateway</h1>")]
    with scripted_server(answers) as (base, _), pytest.raises(valuegraph.ProblemError) as caught:
        valuegraph.Client(base, sleep=lambda seconds: None).evaluate({"nodes": []})
    assert caught.value.status == 502 and caught.value.detail == "<h1>Bad Gateway</h1>"


def test_connection_errors_are_retried_with_backoff_then_raised():
    sleeps = []
    client = valuegraph.Client(f"http://127.0.0.1:{free_port()}", retries=3, backoff=0.5, sleep=sleeps.append)
    with pytest.raises(requests.ConnectionError):
        client.evaluate(SEED_GRAPH)
    assert sleeps == [0.5, 1.0, 2.0]


def test_retry_after_reads_seconds_and_http_dates():
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from valuegraph.client import retry_after

    assert (retry_after("3"), retry_after(None), retry_after("soon")) == (3.0, None, None)
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 50 < retry_after(in_a_minute) <= 60
    assert retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0


@pytest.mark.slow
def test_the_token_opens_a_server_that_requires_one(tmp_path):
    with gunicorn_server(tmp_path, VALUEGRAPH_TOKENS="s3cret") as server:
        assert valuegraph.Client(server.base, token="s3cret").expression("a * 2", a=1.5)["grads"] == {"a": 2}
        with pytest.raises(valuegraph.ProblemError) as caught:
            valuegraph.Client(server.base, sleep=lambda seconds: None).evaluate(SEED_GRAPH)
        assert caught.value.status == 401
        out, err = io.StringIO(), io.StringIO()
        assert cli.main(["--url", server.base, "--token", "s3cret", "expr", "a * 2", "a=1.5"], out, err) == 0
        assert out.getvalue().splitlines()[1] == "a.grad = 2"
        assert cli.main(["--url", server.base, "expr", "a * 2", "a=1.5"], out, err) == 1
        assert "401" in err.getvalue()
