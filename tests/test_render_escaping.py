"""Pictures escape what they draw: no id or label, whatever its characters, changes a picture's
structure or configuration. Hypothesis draws ids and labels from all of Unicode (and from the texts
that mean something to Mermaid, dot or HTML); the pictures are read back: Mermaid's by a checker of its
documented syntax (tests/mermaid_syntax.py), dot's by Graphviz itself, whose SVG must show exactly the
text meant, in as many nodes and edges as the graph has."""

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.core import graphs, render
from service.core.dot import dot
from service.core.mermaid import mermaid
from tests.mermaid_syntax import parse_mermaid
from tests.property import examples

SVG = "{http://www.w3.org/2000/svg}"

#: Texts that mean something to Mermaid (directives, comments, entity codes, strings, markdown, KaTeX,
#: keywords, edges), to dot (quotes, escapes like \N, HTML-like labels) or to HTML and XML.
MEANINGFUL = [
    "%%{init: {'theme':'dark'}}%%",
    "%% comment",
    "#quot;",
    "#35;",
    "#9829;",
    '"',
    'a"] --> b["',
    "`**bold**`",
    "$$x^2$$",
    "$$$",
    "a<br>b<BR/>c",
    "\\n\\\\n",
    "end",
    "subgraph",
    "o--x",
    "style n0 fill:#f00;",
    "classDef x fill:#f00;",
    "click n0 call alert()",
    "<b>bold</b>",
    "<br/>",
    "&amp;",
    "]]>",
    "\\N",
    "\\G\\n\\l",
    '\\"',
    "}; digraph { x",
    "-> n1",
    " padded ",
    "two  spaces",
    "line\nbreak",
    "\r\n",
    "\x00\x1b\x7f",
    "\u2028\u2029\u200b\ufeff",
    "\ud800",
    "\U0001f642 \U00010348",
    "\u0301\u0627\u05d0",
    "\xa0",
]
texts = st.one_of(
    st.text(st.characters(blacklist_categories=()), min_size=1, max_size=12),
    st.sampled_from(MEANINGFUL),
    st.builds(lambda a, b: a + b, st.sampled_from(MEANINGFUL), st.sampled_from(MEANINGFUL)),
)
ids = st.one_of(texts, st.integers(-(2**63), 2**64 - 1))


def shown(text: str) -> str:
    """The text a picture must show for a name: each character that cannot be printed as Python writes it."""
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


@st.composite
def graphs_with_names(draw):
    """Leaves, an add over two of them and a recorded node over all (one child twice), every node with an
    arbitrary id and, often, an arbitrary label."""
    count = draw(st.integers(2, 4))
    node_ids = draw(st.lists(ids, min_size=count + 2, max_size=count + 2, unique_by=lambda i: (type(i), i)))
    nodes = [{"id": node_ids[k], "data": float(k) + 0.5} for k in range(count)]
    nodes.append({"id": node_ids[count], "op": "add", "children": [node_ids[0], node_ids[count - 1]]})
    children = [node_ids[k] for k in range(count + 1)] + [node_ids[0]]
    nodes.append({"id": node_ids[-1], "data": 1.0, "children": children, "local_grads": [2.0] * len(children)})
    for node in nodes:
        if draw(st.booleans()):
            node["label"] = draw(texts)
    return nodes


def name(node: dict) -> str:
    return (
        shown(node["label"])
        if "label" in node
        else shown(node["id"] if isinstance(node["id"], str) else repr(node["id"]))
    )


def titles(nodes: list[dict]) -> list[str]:
    """Each node's first line, as meant: its name, and for the add how it is computed."""
    *leaves, add, recorded = nodes
    children = {node["id"]: name(node) for node in nodes}
    left, right = (children[child] for child in add["children"])
    return [*map(name, leaves), f"{name(add)} = {left} + {right}", name(recorded)]


def drawing(nodes):
    output, values = graphs.evaluate(nodes)
    return render.picture(nodes, output, values)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs_with_names())
@example(
    [
        {"id": "%%{init: {'theme':'dark'}}%%", "data": 1.0},
        {"id": "x\ny", "data": 2.0},
        {"id": "s", "op": "add", "children": ["%%{init: {'theme':'dark'}}%%", "x\ny"]},
        {"id": "r", "data": 1.0, "children": ["s"], "local_grads": [1.0]},
    ]
)
def test_mermaid_shows_every_name_exactly_and_nothing_else(nodes):
    drawn = drawing(nodes)
    for precision in (4, None):
        chart = parse_mermaid(mermaid(drawn, precision))
        graph_nodes = {key: node for key, node in chart.nodes.items() if not key.startswith("legend_")}
        assert len(graph_nodes) == len(nodes) and len(chart.edges) == len(drawn.edges)
        shown_titles = [graph_nodes[f"n{i}"].text.split("\n")[0] for i in range(len(nodes))]
        assert [title.replace("\u200b", "") for title in shown_titles] == titles(nodes)
        for edge, drawn_edge in zip(chart.edges, drawn.edges):
            assert (edge.child, edge.parent) == (f"n{drawn_edge.child}", f"n{drawn_edge.parent}")
            assert edge.label == ", ".join(render.edge_text(drawn_edge, precision))


def svg_texts(svg: bytes) -> tuple[dict[str, str], int]:
    """Each node's drawn text by its SVG id, and how many edges were drawn."""
    root = ElementTree.fromstring(svg)
    groups = list(root.iter(f"{SVG}g"))
    nodes = {
        group.get("id"): "".join(text.text or "" for text in group.iter(f"{SVG}text")).replace("\xa0", " ")
        for group in groups
        if group.get("class") == "node"
    }
    return nodes, sum(group.get("class") == "edge" for group in groups)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed (make system-tools)")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs_with_names())
def test_graphviz_reads_the_dot_and_draws_every_name_exactly(nodes):
    drawn = drawing(nodes)
    svg = subprocess.run(["dot", "-Tsvg"], input=dot(drawn, 4).encode(), capture_output=True, check=True, timeout=60)
    assert svg.stderr == b""
    texts_drawn, edges = svg_texts(svg.stdout)
    assert set(texts_drawn) == {f"n{i}" for i in range(len(nodes))}
    assert edges == len(drawn.edges)
    for i, (title, node) in enumerate(zip(titles(nodes), drawn.nodes)):
        numbers = f"data {render.number_text(node.data, 4)}   grad {render.number_text(node.grad, 4)}"
        assert texts_drawn[f"n{i}"] == title + numbers
