"""A picture in Graphviz's dot language, left to right as micrograd's own `draw_dot` draws (children on
the left, the output on the right); `dot -Tsvg` draws it.

Nothing a client sends reaches the text as it was sent. Nodes are named n0, n1, ... by position; every
label is an HTML-like label in which the only markup is ours: `&`, `<`, `>` and `"` are entities, a
backslash is doubled and every character beyond ASCII is a numeric character reference, so that no id
or label can close the label, add an attribute or a node, or reach dot's own escapes (`\\N`, `\\G`).
"""

from service.core.render import (
    ARROW_WORDS,
    COLOURS,
    EDGE_WORDS,
    KIND_WORDS,
    LEAF,
    OPERATION,
    OUTPUT_WORDS,
    PARAMETER,
    RECORDED,
    DrawnNode,
    Picture,
    edge_text,
    how,
    number_text,
    precision_words,
)
from service.core.traversal import CHECKPOINT_EVERY, Checkpoint

FONT = "Helvetica,Arial,sans-serif"
#: Each kind's border style, beside its colours: rounded for leaves, dashed for recorded nodes.
STYLES = {LEAF: "rounded", PARAMETER: "rounded", OPERATION: "", RECORDED: "dashed"}
LOCAL_COLOUR, BACK_COLOUR = "#5f6b7a", "#b3261e"
HEAD = [
    "digraph valuegraph {",
    f'    graph [rankdir=LR, nodesep=0.3, ranksep=0.4, nslimit=2, nslimit1=2, fontname="{FONT}"];',
    f'    node [shape=plain, fontname="{FONT}", fontsize=11];',
    f'    edge [fontname="{FONT}", fontsize=9, color="#8a8a8a", arrowsize=0.6];',
]


def dot(drawn: Picture, precision: int | None, checkpoint: Checkpoint | None = None) -> str:
    """The picture as a dot digraph; node n<i> is the request's i-th node (its SVG group's id is `n<i>`)."""
    lines = list(HEAD)
    for i, node in enumerate(drawn.nodes):
        if checkpoint and not i % CHECKPOINT_EVERY:
            checkpoint()
        lines.append(f'    n{i} [id="n{i}", label=<{_node_table(drawn, node, precision, i == drawn.output)}>];')
    for edge in drawn.edges:
        local, back = edge_text(edge, precision)
        label = f'<FONT COLOR="{LOCAL_COLOUR}">{escaped(local + "  ")}</FONT><FONT COLOR="{BACK_COLOUR}">{escaped(back)}</FONT>'
        lines.append(f"    n{edge.child} -> n{edge.parent} [label=<{label}>];")
    lines.append(f"    graph [labelloc=t, labeljust=l, label=<{_legend_table(drawn, precision)}>];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node_table(drawn: Picture, node: DrawnNode, precision: int | None, is_output: bool) -> str:
    computed = how(drawn, node)
    title = f"<B>{escaped(node.name)}</B>" + (escaped(f" = {computed}") if computed else "")
    numbers = (
        f"{escaped('data ')}<B>{escaped(number_text(node.data, precision))}</B>"
        f"{escaped('   grad ')}<B>{escaped(number_text(node.grad, precision))}</B>"
    )
    return (
        f'<TABLE CELLSPACING="0" {_look(node.kind, 3 if is_output else 1)}>'
        f'<TR><TD>{title}</TD></TR><TR><TD><FONT POINT-SIZE="9">{numbers}</FONT></TD></TR></TABLE>'
    )


def _look(kind: str | None, border: int) -> str:
    """A node table's attributes: its kind's colours and style (a plain white box for the legend's output)."""
    fill, colour = COLOURS[kind] if kind else ("#ffffff", "#333333")
    style = f' STYLE="{STYLES[kind]}"' if kind and STYLES[kind] else ""
    return f'BORDER="{border}" CELLBORDER="0" CELLPADDING="2" COLOR="{colour}" BGCOLOR="{fill}"{style}'


def _legend_table(drawn: Picture, precision: int | None) -> str:
    """The legend: a sample of each kind of node the picture has and of the output, then what arrows
    and edge labels mean."""
    samples = [(KIND_WORDS[kind], kind, 1) for kind in drawn.kinds()] + [(OUTPUT_WORDS, None, 3)]
    rows = "".join(
        f"<TR><TD><TABLE {_look(kind, border)}><TR><TD>{escaped(name)}</TD></TR></TABLE></TD>"
        f'<TD ALIGN="LEFT">{escaped(meaning)}</TD></TR>'
        for (name, meaning), kind, border in samples
    )
    words = "".join(
        f'{escaped(line)}<BR ALIGN="LEFT"/>' for line in (ARROW_WORDS, *EDGE_WORDS, precision_words(precision))
    )
    return (
        '<FONT POINT-SIZE="9"><TABLE BORDER="1" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2" COLOR="#bbbbbb">'
        '<TR><TD ALIGN="LEFT"><B>legend</B></TD></TR>'
        f'<TR><TD><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="0">{rows}</TABLE></TD></TR>'
        f'<TR><TD ALIGN="LEFT" BALIGN="LEFT">{words}</TD></TR></TABLE></FONT>'
    )


#: Graphviz reads `\N` (the node's name), `\G` and the like even in an HTML-like label's text, after its
#: entities: a backslash is written as two, which it reads as one. A space is a no-break space, which
#: SVG neither strips at the ends of a run of text (`<B>c</B> = a + b` is two runs) nor collapses.
#: Graphviz's lexer refuses `]]` before a tag (`<B>]]</B>`, read as the end of a CDATA section): a
#: square bracket is written as a numeric reference.
_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\\": "\\\\",
    " ": "&#160;",
    "[": "&#91;",
    "]": "&#93;",
}


def escaped(text: str) -> str:
    """Text as an HTML-like label's characters: markup signs as entities, a backslash doubled, a space
    unbreakable, non-ASCII as numeric references."""
    return "".join(
        _ENTITIES.get(character, character) if character < "\x7f" else f"&#{ord(character)};" for character in text
    )
