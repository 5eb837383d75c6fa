"""A checker of the Mermaid flowcharts the service writes, by the rules of Mermaid's documented
flowchart syntax, and a reader of what they say.

The rules checked, each from Mermaid's flowchart documentation or from what Mermaid does to a text
before parsing it:
- one statement per line; a line is a node, an edge, a `class`, a `classDef`, or a `subgraph` ... `end`;
- text only inside double quotes, which cannot hold a double quote;
- `%%` starts a comment (to the end of the line) or, as `%%{...}%%`, a directive anywhere: no `%` at all;
- `#...;` is an entity code, decoded by Mermaid: a `#` or a `;` only as a decimal one, `#N;`;
- HTML: the only tag is our `<br/>` between lines; no `&`, `<` or `>` otherwise;
- a backquote would make a markdown string: none appears; and what Mermaid reads in a label once the
  entity codes are decoded (`$$` as KaTeX, a backslash and n or `<br` as a line break where it wraps a
  long label) appears in no decoded text;
- `:` only outside strings (Mermaid rewrites a line with `style`...`:`...`#`...`;` before parsing);
- Mermaid trims a label: no space at either end of one;
- node names are plain words, none of the flowchart's keywords, none beginning with o or x (which
  Mermaid's documentation warns would be read as an edge's end).
"""

import re
from dataclasses import dataclass, field

KEYWORDS = {"end", "graph", "flowchart", "subgraph", "style", "class", "classdef", "click", "linkstyle"}
KEYWORDS |= {"direction", "default", "call", "href"}
SHAPES = {"(": ")", "([": "])", "[": "]", "[[": "]]"}
STRING = re.compile(r'"([^"]*)"')
QUOTED_TEXT = re.compile(r"(?:#[0-9]+;|<br/>|[^#;:<>&%`$\"\n\r])*")
NAME = r"[A-Za-z][A-Za-z0-9_]*"
STATEMENTS = {
    "node": re.compile(
        rf" +(?P<name>{NAME})(?P<open>\(\[|\[\[|\(|\[)\"\"(?P<close>\]\)|\]\]|\)|\])(?::::(?P<kind>\w+))?"
    ),
    "edge": re.compile(rf" +(?P<child>{NAME}) -- \"\" --> (?P<parent>{NAME})"),
    "class": re.compile(rf" +class (?P<name>{NAME}) (?P<kind>\w+)"),
    "classDef": re.compile(r" +classDef (?P<kind>\w+) [a-z-]+:[#\w .-]+(?:,[a-z-]+:[#\w .-]+)*"),
    "subgraph": re.compile(rf" +subgraph (?P<name>{NAME}) \[\"\"\]"),
    "end": re.compile(r" +end"),
}


@dataclass
class MermaidNode:
    shape: str
    text: str
    kinds: list[str] = field(default_factory=list)


@dataclass
class MermaidEdge:
    child: str
    parent: str
    label: str


@dataclass
class Flowchart:
    nodes: dict[str, MermaidNode] = field(default_factory=dict)
    edges: list[MermaidEdge] = field(default_factory=list)
    styled: set[str] = field(default_factory=set)


def parse_mermaid(text: str) -> Flowchart:
    """The flowchart's nodes (their shape, decoded text and classes) and edges; AssertionError at the
    first rule broken."""
    assert "%" not in text, "a comment or a directive"
    assert text.endswith("\n") and "\r" not in text
    lines = text[:-1].split("\n")
    assert lines[0] == "flowchart BT"
    chart, depth = Flowchart(), 0
    for line in lines[1:]:
        strings = STRING.findall(line)
        skeleton = STRING.sub('""', line)
        assert skeleton.count('"') == 2 * len(strings), line
        texts = [decoded(string) for string in strings]
        kind, match = next(
            ((kind, p.fullmatch(skeleton)) for kind, p in STATEMENTS.items() if p.fullmatch(skeleton)), (None, None)
        )
        assert match is not None, f"not a statement: {line!r}"
        for name in (match.groupdict().get(key) for key in ("name", "child", "parent")):
            if name is not None and kind != "subgraph":
                assert name.lower() not in KEYWORDS and name[0] not in "oOxX", name
        if kind == "node":
            assert SHAPES[match["open"]] == match["close"], line
            assert match["name"] not in chart.nodes, f"{match['name']} defined twice"
            chart.nodes[match["name"]] = MermaidNode(match["open"], texts[0], [match["kind"]] if match["kind"] else [])
        elif kind == "edge":
            assert match["child"] in chart.nodes and match["parent"] in chart.nodes, line
            chart.edges.append(MermaidEdge(match["child"], match["parent"], texts[0]))
        elif kind == "class":
            chart.nodes[match["name"]].kinds.append(match["kind"])
        elif kind == "classDef":
            chart.styled.add(match["kind"])
        elif kind == "subgraph":
            depth += 1
        elif kind == "end":
            assert depth > 0, "end without subgraph"
            depth -= 1
    assert depth == 0
    used = {kind for node in chart.nodes.values() for kind in node.kinds}
    assert used <= chart.styled, f"classes without a classDef: {used - chart.styled}"
    return chart


def decoded(string: str) -> str:
    """A quoted string's text, as Mermaid shows it: entity codes decoded, `<br/>` a line break."""
    assert QUOTED_TEXT.fullmatch(string), f"a character Mermaid reads as syntax in {string!r}"
    assert not string.startswith(" ") and not string.endswith(" "), f"Mermaid trims {string!r}"

    def character(match):
        code = int(match[1])
        assert code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF, code
        return chr(code)

    text = "\n".join(re.sub(r"#([0-9]+);", character, line) for line in string.split("<br/>"))
    assert not re.search(r"\$\$|\\n|<br", text, re.IGNORECASE), f"KaTeX or a line break in {text!r}"
    return text
