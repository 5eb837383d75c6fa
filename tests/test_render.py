"""POST /v1/render: the reference class's example in every format; what nodes and edges show (kinds,
labels, local gradients, the gradient sent back), to the precision asked; the limits (nodes, edges,
Mermaid's own), the deadline, and the request log."""

import math
import shutil
import xml.etree.ElementTree as ElementTree

import orjson
import pytest

from service.core import graphs, render
from service.core.mermaid import MAX_EDGES as MERMAID_MAX_EDGES
from service.core.ops import OPS
from tests.mermaid_syntax import parse_mermaid
from tests.support import SEED_GRAPH, leaf, op

PATH = "/v1/render"
HAS_DOT = shutil.which("dot") is not None
needs_graphviz = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed (make system-tools)")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def post(client, conforms):
    def send(body, query="", test_client=client):
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        response = test_client.post(PATH + query, data=data, content_type="application/json")
        conforms(PATH, "post", response.status_code, response.content_type, response.data)
        return response

    return send


def svg_nodes(svg: bytes) -> dict[str, str]:
    """Each drawn node's text, by its SVG id (n0, n1, ...): its text spans joined, as drawn."""
    root = ElementTree.fromstring(svg)
    return {
        group.get("id"): "".join(text.text or "" for text in group.iter(f"{SVG}text")).replace("\xa0", " ")
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "node"
    }


# --- the reference class's example, in each format ------------------------------------------------------


def test_mermaid_draws_the_example_bottom_to_top_with_a_legend(post):
    response = post(SEED_GRAPH)
    assert response.status_code == 200 and response.mimetype == "text/vnd.mermaid"
    text = response.data.decode()
    lines = text.splitlines()
    assert lines[0] == "flowchart BT"
    assert '    n0("a<br/>data 2, grad 0.7"):::leaf' in lines
    assert '    n2["c = a + b<br/>data 5, grad 0.2"]:::op' in lines
    assert '    n4["e = log(d)<br/>data 2.303, grad 1"]:::op' in lines
    assert '    n0 -- "local 5, back 0.5" --> n3' in lines
    assert "    class n4 output" in lines
    parsed = parse_mermaid(text)
    assert [parsed.nodes[f"n{i}"].text.split("\n")[0] for i in range(5)] == [
        "a",
        "b",
        "c = a + b",
        "d = c * a",
        "e = log(d)",
    ]
    assert len(parsed.edges) == 5
    legend = "\n".join(node.text for name, node in parsed.nodes.items() if name.startswith("legend_"))
    assert "Arrows point from a child to the node that uses it." in legend
    assert "Edge labels are backward quantities." in legend
    assert "input\na leaf, Value(data)" in legend and "parameter" not in legend


def test_dot_draws_the_example_left_to_right(post):
    response = post(SEED_GRAPH, "?format=dot")
    assert response.status_code == 200 and response.mimetype == "text/vnd.graphviz"
    text = response.data.decode()
    assert text.startswith("digraph valuegraph {\n") and "rankdir=LR" in text
    assert (
        "    n0 -> n3 [label=<" in text
        and ">local&#160;5&#160;&#160;</FONT>" in text
        and ">back&#160;0.5</FONT>" in text
    )
    assert 'n4 [id="n4", label=<<TABLE CELLSPACING="0" BORDER="3"' in text
    assert "<B>e</B>&#160;=&#160;log(d)" in text and "graph [labelloc=t, labeljust=l, label=<" in text


@needs_graphviz
def test_svg_is_graphvizs_picture_of_the_example(post):
    response = post(SEED_GRAPH, "?format=svg")
    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    drawn = svg_nodes(response.data)
    assert drawn["n0"] == "adata 2   grad 0.7"
    assert drawn["n4"] == "e = log(d)data 2.303   grad 1"
    assert set(drawn) == {f"n{i}" for i in range(5)}
    assert ">Arrows point from a child to the node that uses it.</text>" in response.data.decode().replace("\xa0", " ")
    edges = [group for group in ElementTree.fromstring(response.data).iter(f"{SVG}g") if group.get("class") == "edge"]
    assert len(edges) == 5


def test_json_is_the_pictures_content_with_exact_numbers(post):
    response = post(SEED_GRAPH, "?format=json&precision=2")
    assert response.status_code == 200 and response.mimetype == "application/json"
    content = response.get_json()
    assert content["output"] == "e"
    assert content["nodes"][0] == {
        "id": "a",
        "label": None,
        "kind": "leaf",
        "op": "value",
        "children": [],
        "data": 2.0,
        "grad": 0.7,
        "local_grads": [],
    }
    assert content["nodes"][4] == {
        "id": "e",
        "label": None,
        "kind": "op",
        "op": "log",
        "children": ["d"],
        "data": 2.302585092994046,
        "grad": 1,
        "local_grads": [0.1],
    }
    assert {"child": "a", "parent": "d", "position": 1, "local_grad": 5.0, "carried": 0.5} in content["edges"]
    grads = {node["id"]: node["grad"] for node in content["nodes"]}
    for node_id, grad in grads.items():
        carried = [edge["carried"] for edge in content["edges"] if edge["child"] == node_id]
        if carried:
            assert math.fsum(carried) == pytest.approx(grad, rel=1e-15)


# --- what nodes and edges show ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_edge_carries_what_the_backward_pass_sent(name):
    """A single op of each kind on leaves: every child gets exactly its edges' gradients."""
    op_ = OPS[name]
    leaves = [{"id": f"x{k}", "data": 0.75 + k} for k in range(op_.arity)]
    node = {"id": "y", "op": name, "children": [leaf["id"] for leaf in leaves]}
    if op_.takes_exponent:
        node["exponent"] = 3.0
    nodes = [*leaves, node, {"id": "z", "op": "mul", "children": ["y", "y"]}]
    _, values = graphs.evaluate(nodes)
    for k, leaf_value in enumerate(values[: op_.arity]):
        assert render.carried_gradient(values[op_.arity], k, leaf_value) == leaf_value.grad


#: d(op)/d(child) at x = 0.75, y = 1.75 (and exponent 3), by calculus, not by the engine.
DERIVATIVES = {
    "add": [1, 1],
    "sub": [1, -1],
    "mul": [1.75, 0.75],
    "div": [1 / 1.75, -0.75 / 1.75**2],
    "pow": [3 * 0.75**2],
    "log": [1 / 0.75],
    "exp": [math.exp(0.75)],
    "relu": [1],
    "neg": [-1],
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_each_edge_carries_the_local_gradient(post, name):
    assert set(DERIVATIVES) == set(OPS)
    children = ["x", "y"][: OPS[name].arity]
    node = op("f", name, *children, **({"exponent": 3} if OPS[name].takes_exponent else {}))
    nodes = [leaf("x", 0.75), leaf("y", 1.75), node, op("g", "mul", "f", "f")]
    if len(children) == 1:
        nodes.append(op("h", "mul", "g", "y"))
    content = post({"nodes": nodes, "output": nodes[-1]["id"]}, "?format=json").get_json()
    by_id = {node["id"]: node for node in content["nodes"]}
    assert by_id["f"]["local_grads"] == pytest.approx(DERIVATIVES[name], rel=1e-12)
    edges = [edge for edge in content["edges"] if edge["parent"] == "f"]
    assert [edge["local_grad"] for edge in edges] == by_id["f"]["local_grads"]
    for edge in edges:
        assert edge["carried"] == pytest.approx(edge["local_grad"] * by_id["f"]["grad"], rel=1e-12)


def test_a_child_listed_twice_gets_two_edges_that_add_up(post):
    nodes = [{"id": "a", "data": 3.0}, {"id": "s", "op": "sub", "children": ["a", "a"]}]
    _, values = graphs.evaluate(nodes)
    assert [render.carried_gradient(values[1], k, values[0]) for k in (0, 1)] == [1, -1]
    parsed = parse_mermaid(post({"nodes": nodes}).data.decode())
    assert [edge.label for edge in parsed.edges] == ["local 1, back 1", "local -1, back -1"]


def test_labels_are_shown_instead_of_ids_and_labelled_leaves_are_parameters(post):
    nodes = [
        {"id": 0, "data": 2.0, "label": "w"},
        {"id": 1, "data": 3.0},
        {"id": 2, "op": "mul", "children": [0, 1], "label": "w·x"},
        {"id": 3, "data": 5.0, "children": [2], "local_grads": [4.0], "label": "recorded y"},
    ]
    parsed = parse_mermaid(post({"nodes": nodes}).data.decode())
    assert [
        (node.shape, node.kinds, node.text.split("\n")[0]) for node in map(parsed.nodes.get, ["n0", "n1", "n2", "n3"])
    ] == [
        ("([", ["parameter"], "w"),
        ("(", ["leaf"], "1"),
        ("[", ["op"], "w·x = w * 1"),
        ("[[", ["recorded", "output"], "recorded y"),
    ]
    content = post({"nodes": nodes}, "?format=json").get_json()
    assert [node["label"] for node in content["nodes"]] == ["w", None, "w·x", "recorded y"]
    assert [node["kind"] for node in content["nodes"]] == ["parameter", "leaf", "op", "recorded"]
    assert content["nodes"][3]["local_grads"] == [4.0]
    dot_text = post({"nodes": nodes}, "?format=dot").data.decode()
    assert "<B>w&#183;x</B>&#160;=&#160;w&#160;*&#160;1" in dot_text and 'STYLE="dashed"' in dot_text


def test_labels_change_nothing_in_an_evaluation(client):
    labelled = {"nodes": [{**node, "label": f"the {node['id']}"} for node in SEED_GRAPH["nodes"]]}
    answers = [client.post("/v1/evaluate", json=body).data for body in (SEED_GRAPH, labelled)]
    assert answers[0] == answers[1] and b"label" not in answers[1]


@pytest.mark.parametrize("label", ["", "x" * 257, 7, ["a"]])
def test_a_bad_label_is_refused_naming_the_node(client, label):
    nodes = [*SEED_GRAPH["nodes"][:-1], {**SEED_GRAPH["nodes"][-1], "label": label}]
    problem = client.post("/v1/evaluate", json={"nodes": nodes}).get_json()
    assert problem["status"] == 422
    assert problem["errors"][0]["node"] == "e" and problem["errors"][0]["field"] == "label"
    assert "1 to 256 characters" in problem["errors"][0]["message"]


@pytest.mark.parametrize(
    "precision, shown",
    [("", None), ("4", "2.303"), ("1", "2"), ("2", "2.3"), ("17", "2.3025850929940459"), ("full", "2.302585092994046")],
)
def test_numbers_to_the_precision_asked(post, precision, shown):
    query = f"?precision={precision}" if precision else ""
    parsed = parse_mermaid(post(SEED_GRAPH, query).data.decode())
    assert parsed.nodes["n4"].text.split("\n")[1] == f"data {shown or '2.303'}, grad 1"
    words = parsed.nodes["legend_words"].text
    assert ("exact" in words) == (precision == "full")


@pytest.mark.parametrize("precision", ["0", "18", "x", "4.5", "-1", "+4", "٤", "FULL"])
def test_a_bad_precision_or_format_is_a_400(post, precision):
    problem = post(SEED_GRAPH, f"?precision={precision}").get_json()
    assert problem["status"] == 400 and problem["type"] == "/problems/invalid-parameter"
    assert problem["errors"] == [{"field": "precision", "message": "Must be an integer from 1 to 17, or full."}]
    problem = post(SEED_GRAPH, "?format=png").get_json()
    assert problem["status"] == 400 and problem["errors"] == [
        {"field": "format", "message": "Must be one of: mermaid, dot, svg, json."}
    ]


def test_a_bad_graph_is_refused_as_by_evaluate(post):
    problem = post({"nodes": [{"id": "x", "op": "log", "children": ["y"]}]}).get_json()
    assert problem["status"] == 422 and problem["errors"][0]["node"] == "x"


# --- limits --------------------------------------------------------------------------------------------


def fan(edges: int) -> dict:
    """Two nodes joined by `edges` edges: a recorded node listing one child `edges` times."""
    return {
        "nodes": [
            {"id": "x", "data": 1.0},
            {"id": "y", "data": 2.0, "children": ["x"] * edges, "local_grads": [0.5] * edges},
        ]
    }


def test_too_many_nodes_is_refused_with_the_limit(post, make_app):
    small = make_app({"MAX_RENDER_NODES": 4}).test_client()
    problem = post(SEED_GRAPH, test_client=small).get_json()
    assert problem["status"] == 422 and problem["type"] == "/problems/graph-too-large-to-draw"
    assert "at most 4 nodes (VALUEGRAPH_MAX_RENDER_NODES); this graph has 5" in problem["detail"]


def test_too_many_edges_is_refused_with_the_limit_before_the_graph_is_read(post, make_app):
    small = make_app({"MAX_RENDER_EDGES": 4}).test_client()
    assert post(fan(4), "?format=dot", test_client=small).status_code == 200
    problem = post(fan(5), test_client=small).get_json()
    assert problem["status"] == 422 and problem["type"] == "/problems/graph-too-large-to-draw"
    assert "at most 4 edges (VALUEGRAPH_MAX_RENDER_EDGES" in problem["detail"] and "has 5" in problem["detail"]
    invalid = fan(5)
    invalid["nodes"][1]["local_grads"] = "not checked"
    assert post(invalid, test_client=small).get_json()["type"] == "/problems/graph-too-large-to-draw"


def test_two_nodes_joined_by_a_million_edges_are_refused_at_once(post):
    problem = post(fan(1_670_000)).get_json()
    assert problem["status"] == 422 and "has 1670000" in problem["detail"]


def test_mermaid_refuses_what_mermaid_would_refuse_and_suggests_svg_or_dot(post, make_app):
    roomy = make_app({"MAX_RENDER_EDGES": 10_000}).test_client()
    assert post(fan(MERMAID_MAX_EDGES), test_client=roomy).status_code == 200
    problem = post(fan(MERMAID_MAX_EDGES + 1), test_client=roomy).get_json()
    assert problem["status"] == 422 and problem["type"] == "/problems/graph-too-large-to-draw"
    assert "501 edges and Mermaid draws at most 500 (its maxEdges)" in problem["detail"]
    assert "format=svg or format=dot" in problem["detail"] and problem["errors"][0]["field"] == "format"
    assert post(fan(MERMAID_MAX_EDGES + 1), "?format=dot", test_client=roomy).status_code == 200
    wordy = {"nodes": [{"id": k, "data": 1.0, "label": f"{k:03}" * 80} for k in range(250)]}
    wordy["output"] = 0
    problem = post(wordy).get_json()
    assert problem["status"] == 422 and "Mermaid reads at most 50000 (its maxTextSize)" in problem["detail"]


def test_the_deadline_stops_a_picture(post, make_app):
    hasty = make_app({"DEADLINE_SECONDS": 1e-9}).test_client()
    for picture_format in ("mermaid", "json"):
        problem = post(SEED_GRAPH, f"?format={picture_format}", test_client=hasty).get_json()
        assert problem["status"] == 504 and problem["type"] == "/problems/deadline-exceeded"


def test_the_request_log_records_the_graphs_size(client, capsys):
    capsys.readouterr()
    client.post(PATH, json=SEED_GRAPH, buffered=True)
    client.post(PATH, json={"nodes": [{"id": "x"}]}, buffered=True)
    drawn, refused = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert (drawn["status"], drawn["nodes"]) == (200, 5)
    assert (refused["status"], refused["nodes"]) == (422, None)
