"""POST /v1/evaluate/batch and /v1/grade/batch: each item answered exactly as its own request would be,
in request order, one bad item spoiling no other; only the envelope refuses the whole request. Through
Flask's test client and through the real gunicorn; every response is checked against openapi.yaml."""

import random

import orjson
import pytest
import requests

from bench.workloads import random_dag
from service.contract.examples import EXAMPLE_GRAPH, GRADE_EXAMPLE
from tests.support import leaf, op
from tools.reference_value import evaluate_with_seed

EVALUATE_BATCH, GRADE_BATCH = "/v1/evaluate/batch", "/v1/grade/batch"
JSON = {"Content-Type": "application/json"}

INVALID_GRAPHS = [
    3,
    [EXAMPLE_GRAPH],
    {"nodes": []},
    {"nodes": [{"id": "x", "op": "log", "children": ["y"]}]},
    {"nodes": [{"id": "x", "op": "neg", "children": ["y"]}, {"id": "y", "op": "neg", "children": ["x"]}]},
    {"nodes": [{"id": "x", "data": -1.0}, {"id": "y", "op": "log", "children": ["x"]}]},
    {**EXAMPLE_GRAPH, "output": "nope"},
    {**EXAMPLE_GRAPH, "submitted": []},
    {"nodes": [{"id": "x", "data": "2.0"}, {"id": "y", "op": "pow", "children": ["x"]}]},
]


@pytest.fixture
def post(client, conforms):
    def send(path, body, test_client=client):
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        response = test_client.post(path, data=data, content_type="application/json")
        conforms(path, "post", response.status_code, response.content_type, response.data)
        return response

    return send


def mixed_batch(count, every=7, seed=8):
    """`count` random 10-node graphs, every `every`-th replaced by one of INVALID_GRAPHS."""
    rng = random.Random(seed)
    graphs = []
    for k in range(count):
        if k % every == every - 1:
            graphs.append(INVALID_GRAPHS[(k // every) % len(INVALID_GRAPHS)])
        else:
            graphs.append({"nodes": random_dag(10, rng)})
    return graphs


def as_item(path, status, body):
    """A single request's answer as a batch item: {"status", member: body}. A problem's request_id is
    the request's, so an item's problem, inside the batch's one request, has none of its own."""
    if status != 200:
        return {"status": status, "problem": {k: v for k, v in orjson.loads(body).items() if k != "request_id"}}
    return {"status": status, "evaluation" if path == "/v1/evaluate" else "grade": orjson.loads(body)}


def single(post, path, item):
    """The item's own answer, as a batch item."""
    response = post(path, item)
    return as_item(path, response.status_code, response.data)


@pytest.mark.slow
def test_a_batch_of_1000_graphs_answers_each_as_its_own_request(post):
    graphs = mixed_batch(1000)
    response = post(EVALUATE_BATCH, {"graphs": graphs})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert len(results) == 1000
    for item, result in zip(graphs, results):
        assert result == single(post, "/v1/evaluate", item)
        if result["status"] == 200:
            nodes = item["nodes"]
            output = result["evaluation"]["output"]
            expected = evaluate_with_seed(nodes, output)
            assert {n["id"]: (n["data"], n["grad"]) for n in result["evaluation"]["nodes"]} == expected
    statuses = [result["status"] for result in results]
    assert statuses.count(200) == 1000 - 1000 // 7 and set(statuses) == {200, 422}


def test_the_batch_answer_embeds_each_evaluation_byte_for_byte(post, client):
    response = post(EVALUATE_BATCH, {"graphs": [EXAMPLE_GRAPH, EXAMPLE_GRAPH]})
    single_body = client.post("/v1/evaluate", json=EXAMPLE_GRAPH).data
    assert response.data == b'{"results":[{"status":200,"evaluation":%b},{"status":200,"evaluation":%b}]}' % (
        single_body,
        single_body,
    )


def test_a_grade_batch_answers_each_as_its_own_request(post):
    items = [
        GRADE_EXAMPLE,
        {**EXAMPLE_GRAPH, "submitted": [{"id": "nope"}]},
        EXAMPLE_GRAPH,
        {**EXAMPLE_GRAPH, "submitted": [], "tolerance": {"rtol": -1}},
        {**EXAMPLE_GRAPH, "submitted": [{"id": "d", "data": 7.0}], "tolerance": {"rtol": 0, "atol": 0}},
        *INVALID_GRAPHS[:3],
    ]
    response = post(GRADE_BATCH, {"graphs": items})
    assert response.status_code == 200
    results = response.get_json()["results"]
    assert results == [single(post, "/v1/grade", item) for item in items]
    assert [r["status"] for r in results] == [200, 422, 422, 422, 200, 422, 422, 422]
    assert results[0]["grade"]["root_causes"][0]["node"] == "a"


@pytest.mark.parametrize(
    "body, field, words",
    [
        ([EXAMPLE_GRAPH], None, "Invalid input type"),
        ({}, "graphs", "Missing data"),
        ({"graphs": EXAMPLE_GRAPH}, "graphs", "Not a valid list"),
        ({"graphs": []}, "graphs", "Shorter than minimum length 1"),
        ({"graphs": [EXAMPLE_GRAPH], "output": "e"}, "output", "Unknown field"),
    ],
)
@pytest.mark.parametrize("path", [EVALUATE_BATCH, GRADE_BATCH])
def test_only_an_invalid_envelope_refuses_the_whole_batch(post, path, body, field, words):
    response = post(path, body)
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"] == "/problems/invalid-batch"
    (error,) = problem["errors"]
    assert error["field"] == field and words in error["message"]


@pytest.mark.parametrize("path", [EVALUATE_BATCH, GRADE_BATCH])
def test_the_batch_limits_are_settings(post, path, make_app):
    client = make_app({"MAX_BATCH_GRAPHS": 3, "MAX_BATCH_NODES": 12}).test_client()
    response = post(path, {"graphs": [EXAMPLE_GRAPH] * 4}, test_client=client)
    assert response.status_code == 422
    assert [e["message"] for e in response.get_json()["errors"]] == [
        "A batch may have at most 3 graphs; this one has 4.",
        "A batch may have at most 12 nodes in all; this one has 20.",
    ]
    item = {**EXAMPLE_GRAPH, "submitted": []} if path == GRADE_BATCH else EXAMPLE_GRAPH
    assert post(path, {"graphs": [item] * 2}, test_client=client).status_code == 200


def test_the_default_limits_take_10000_graphs_of_10_nodes(app):
    assert app.config["MAX_BATCH_GRAPHS"] >= 10_000
    assert app.config["MAX_BATCH_NODES"] >= 10_000 * 10


@pytest.mark.parametrize("path", [EVALUATE_BATCH, GRADE_BATCH, "/v1/grade"])
def test_not_json_and_not_typed_json_are_refused_as_evaluate_refuses_them(client, conforms, path):
    response = client.post(path, data=b'{"graphs": [', content_type="application/json")
    assert response.status_code == 400
    conforms(path, "post", 400, response.content_type, response.data)
    response = client.post(path, data=b"{}", content_type="text/plain")
    assert response.status_code == 415
    conforms(path, "post", 415, response.content_type, response.data)


@pytest.mark.slow
def test_a_batch_of_1000_graphs_through_gunicorn(live_server, conforms):
    graphs = mixed_batch(1000, every=5, seed=9)
    with requests.Session() as session:
        response = session.post(
            live_server + EVALUATE_BATCH, data=orjson.dumps({"graphs": graphs}), headers=JSON, timeout=60
        )
        conforms(EVALUATE_BATCH, "post", response.status_code, response.headers["Content-Type"], response.content)
        results = orjson.loads(response.content)["results"]
        assert len(results) == 1000
        for k in (0, 1, 4, 9, 500, 999):
            single_response = session.post(live_server + "/v1/evaluate", json=graphs[k], timeout=60)
            assert results[k] == as_item("/v1/evaluate", single_response.status_code, single_response.content)
        assert [r["status"] != 200 for r in results] == [k % 5 == 4 for k in range(1000)]
        grades = [{**g, "submitted": []} if isinstance(g, dict) and "nodes" in g else g for g in graphs]
        response = session.post(
            live_server + GRADE_BATCH, data=orjson.dumps({"graphs": grades}), headers=JSON, timeout=60
        )
        conforms(GRADE_BATCH, "post", response.status_code, response.headers["Content-Type"], response.content)
        statuses = [r["status"] for r in orjson.loads(response.content)["results"]]
        already_graded = [isinstance(g, dict) and "submitted" in g for g in graphs]  # valid only as grade requests
        assert statuses == [200 if graded else r["status"] for graded, r in zip(already_graded, results)]
        response = session.post(live_server + "/v1/grade", data=orjson.dumps(GRADE_EXAMPLE), headers=JSON, timeout=60)
        conforms("/v1/grade", "post", response.status_code, response.headers["Content-Type"], response.content)
        assert orjson.loads(response.content)["root_causes"][0]["kind"] == "accumulation"


@pytest.mark.parametrize("path", [EVALUATE_BATCH, GRADE_BATCH])
def test_the_deadline_is_the_whole_batchs(post, path, make_app):
    """Past VALUEGRAPH_DEADLINE_SECONDS the batch is answered 504, as one request would be; the app goes on."""
    client = make_app({"DEADLINE_SECONDS": 0.05}).test_client()
    chain = [leaf(0, 0.5)] + [op(k, "neg", k - 1) for k in range(1, 100)]  # 1M nodes: long for the fast path too
    item = {**EXAMPLE_GRAPH, "submitted": []} if path == GRADE_BATCH else {"nodes": chain}
    response = post(path, {"graphs": [item] * 10_000}, test_client=client)
    assert response.status_code == 504 and response.get_json()["type"] == "/problems/deadline-exceeded"
    assert post(path, {"graphs": [item]}, test_client=client).status_code == 200


def test_a_batch_of_invalid_graphs_answers_less_than_it_was_sent(post):
    """Each item's problem lists at most its first entries, and the batch at most MAX_BATCH_ENTRIES in
    all: a batch of noisy invalid graphs cannot answer many times its own size."""
    node = {"id": "I" * 256, **{f"k{j}": 0 for j in range(100)}}
    body = {"graphs": [{"nodes": [node] * 20}] * 40}
    response = post(EVALUATE_BATCH, body)
    results = response.get_json()["results"]
    assert [result["status"] for result in results] == [422] * 40
    assert sum(len(result["problem"].get("errors", ())) for result in results) <= 1000
    assert (
        results[-1]["problem"]["detail"] == "Not explained: the batch's answer already lists its 1000 problem entries."
    )
    assert len(response.data) < len(orjson.dumps(body))


@pytest.mark.parametrize("path", [EVALUATE_BATCH, GRADE_BATCH])
def test_past_the_batchs_entries_an_invalid_item_costs_no_explanation(post, app, path, monkeypatch):
    """A refusal costs no more than the answer would: once the answer has listed its 1,000 entries, an
    invalid item is refused without the schemas' explanation, so a batch of invalid graphs costs about
    what the same invalid nodes in one graph do."""
    name = "valuegraph.request_schema" if path == EVALUATE_BATCH else "valuegraph.grade_schema"
    schema, loads = app.extensions[name], []
    load = schema.load
    monkeypatch.setattr(schema, "load", lambda document: loads.append(1) or load(document))
    item = {"nodes": [{"id": f"x{k}", "data": "two"} for k in range(85)]}
    if path == GRADE_BATCH:
        item["submitted"] = []
    results = post(path, {"graphs": [item] * 2000}).get_json()["results"]
    assert [result["status"] for result in results] == [422] * 2000
    listed = [len(result["problem"].get("errors", ())) for result in results]
    assert sum(listed) <= 1000 and listed[-1] == 0
    assert len(loads) == 12  # 11 items of 85 entries, then the one whose entries are cut
    assert results[-1]["problem"]["detail"].startswith("Not explained:")
