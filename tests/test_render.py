"""POST /v1/render: the seed's example drawn in the seed's style; every edge carries the gradient the
backward pass sent along it; large graphs are refused."""

import re
import shutil
import subprocess

import orjson
import pytest

from service.core import graphs, render
from service.core.ops import OPS
from tests.support import SEED_GRAPH

PATH = "/v1/render"


@pytest.fixture
def post(client, conforms):
    def send(body, query="", test_client=client):
        response = test_client.post(PATH + query, data=orjson.dumps(body), content_type="application/json")
        conforms(PATH, "post", response.status_code, response.content_type, response.data)
        return response

    return send


def test_the_seeds_example_in_the_seeds_style(post):
    response = post(SEED_GRAPH)
    assert response.status_code == 200 and response.mimetype == "text/vnd.mermaid"
    lines = response.data.decode().splitlines()
    assert lines[0] == "flowchart BT"
    assert '    a["a (2.0)<br/>grad = 0.7"]' in lines
    assert '    c["c = a + b (5.0)<br/>grad = 0.2"]' in lines
    assert '    e(["e = log(d) (2.302585092994046)<br/>grad = 1"]):::output' in lines
    assert '    a -- "grad = 0.5" --> d' in lines
    assert sum(":::output" in line for line in lines) == 1


def test_dot(post):
    response = post(SEED_GRAPH, "?format=dot")
    assert response.status_code == 200 and response.mimetype == "text/vnd.graphviz"
    text = response.data.decode()
    assert text.startswith("digraph valuegraph {\n    rankdir=BT;")
    assert '"a" -> "d" [label="grad = 0.5"];' in text
    assert re.search(r'"e" \[label="e = log\(d\) \(2.302585092994046\)\\ngrad = 1", [^]]*peripheries=2', text)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_graphviz_reads_the_dot(post, tmp_path):
    nodes = [*SEED_GRAPH["nodes"], {"id": 'q"uote\\', "op": "neg", "children": ["e"]}]
    text = post({"nodes": nodes}, "?format=dot").data
    svg = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, check=True, timeout=30).stdout
    assert b"<svg" in svg and b"q&quot;uote" in svg


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_edge_carries_what_the_backward_pass_sent(name):
    """A single op of each kind on leaves: every child gets exactly its edges' gradients."""
    op = OPS[name]
    leaves = [{"id": f"x{k}", "data": 0.75 + k} for k in range(op.arity)]
    node = {"id": "y", "op": name, "children": [leaf["id"] for leaf in leaves]}
    if op.takes_exponent:
        node["exponent"] = 3.0
    nodes = [*leaves, node, {"id": "z", "op": "mul", "children": ["y", "y"]}]
    _, values = graphs.evaluate(nodes)
    for k, leaf_value in enumerate(values[: op.arity]):
        assert render.carried_gradient(values[op.arity], k, leaf_value) == leaf_value.grad


def test_a_child_listed_twice_gets_two_edges_that_add_up():
    nodes = [{"id": "a", "data": 3.0}, {"id": "s", "op": "sub", "children": ["a", "a"]}]
    _, values = graphs.evaluate(nodes)
    assert [render.carried_gradient(values[1], k, values[0]) for k in (0, 1)] == [1, -1]
    text = render.render(nodes, "s", values, "mermaid")
    assert text.count("    a -- ") == 2


def test_ids_that_are_not_plain_words_get_names_and_show_in_labels(post):
    nodes = [
        {"id": 1, "data": 2.0},
        {"id": "end", "data": 3.0},
        {"id": 'he said "<b>#1</b>"', "op": "mul", "children": [1, "end"]},
        {"id": "n0", "op": "neg", "children": ['he said "<b>#1</b>"']},
    ]
    text = post({"nodes": nodes}).data.decode()
    assert '    n0["1 (2.0)<br/>grad = -3.0"]' in text
    assert "    n1[" in text and "    n3([" in text
    assert "#quot;#lt;b#gt;#35;1#lt;/b#gt;#quot;" in text
    assert "<b>" not in text


def test_too_large_a_graph_is_refused_with_the_limit(post, make_app):
    small = make_app({"MAX_RENDER_NODES": 4}).test_client()
    problem = post(SEED_GRAPH, test_client=small).get_json()
    assert problem["status"] == 422 and problem["type"] == "/problems/graph-too-large-to-draw"
    assert "at most 4 nodes (VALUEGRAPH_MAX_RENDER_NODES); this graph has 5" in problem["detail"]


def test_a_bad_format_and_a_bad_graph(post):
    problem = post(SEED_GRAPH, "?format=png").get_json()
    assert problem["status"] == 400 and problem["errors"] == [
        {"field": "format", "message": "Must be one of: mermaid, dot."}
    ]
    problem = post({"nodes": [{"id": "x", "op": "log", "children": ["y"]}]}).get_json()
    assert problem["status"] == 422 and problem["errors"][0]["node"] == "x"
