"""A picture in Mermaid's flowchart language (`flowchart BT`: children below, the output on top).

Nothing a client sends reaches the text as it was sent. Nodes are named n0, n1, ... by position; every
label is a quoted string in which only letters, digits, spaces and a few plain signs are written as
they are, and every other character as Mermaid's entity code `#N;` (its decimal code point). So an
id or label cannot end a string (`"`), start a comment or a directive (`%%`, `%%{init: ...}%%`), open
HTML (`<`) or a markdown string (a backquote), or bring in a line break; and the entity codes Mermaid
decodes are only ours. What Mermaid reads even from entity codes (`$$` as KaTeX, `\\n` and `<br` as
line breaks) is parted by a zero-width space.
"""

import re
import string

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
    Picture,
    edge_text,
    precision_words,
    title,
    values_text,
)
from service.core.traversal import CHECKPOINT_EVERY, Checkpoint

#: Mermaid's own defaults, which a diagram cannot raise from inside (they are "secure" settings):
#: it refuses a flowchart of more edges, or a text of more UTF-16 code units.
MAX_EDGES = 500
MAX_TEXT_SIZE = 50_000

#: The characters a label writes as they are; any other is an entity code.
PLAIN = frozenset(string.ascii_letters + string.digits + " ()+-*/=.,_'!?")

#: Each kind's shape: (opening, closing) around the quoted label.
SHAPES = {LEAF: ("(", ")"), PARAMETER: ("([", "])"), OPERATION: ("[", "]"), RECORDED: ("[[", "]]")}
STYLES = {
    **{kind: f"fill:{fill},stroke:{border}" for kind, (fill, border) in COLOURS.items()},
    RECORDED: f"fill:{COLOURS[RECORDED][0]},stroke:{COLOURS[RECORDED][1]},stroke-dasharray:4 3",
    "output": "stroke-width:3px",
    "sample": "fill:#ffffff,stroke:#333333",
    "legend": "fill:#ffffff,stroke:#ffffff",
}


class MermaidRefuses(Exception):
    """Mermaid itself would refuse to draw this picture: `reason` says why, in words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def mermaid(drawn: Picture, precision: int | None, checkpoint: Checkpoint | None = None) -> str:
    """The picture as a Mermaid flowchart, or MermaidRefuses when Mermaid would not draw it."""
    if len(drawn.edges) > MAX_EDGES:
        raise MermaidRefuses(f"it has {len(drawn.edges)} edges and Mermaid draws at most {MAX_EDGES} (its maxEdges)")
    lines = ["flowchart BT"]
    for i, node in enumerate(drawn.nodes):
        if checkpoint and not i % CHECKPOINT_EVERY:
            checkpoint()
        opening, closing = SHAPES[node.kind]
        lines.append(
            f"    n{i}{opening}{quoted(title(drawn, node), values_text(node, precision))}{closing}:::{node.kind}"
        )
    for edge in drawn.edges:
        lines.append(f"    n{edge.child} -- {quoted(', '.join(edge_text(edge, precision)))} --> n{edge.parent}")
    lines.append(f"    class n{drawn.output} output")
    lines += _legend(drawn, precision)
    lines += [f"    classDef {name} {style}" for name, style in STYLES.items()]
    text = "\n".join(lines) + "\n"
    size = len(text.encode("utf-16-le")) // 2
    if size > MAX_TEXT_SIZE:
        raise MermaidRefuses(
            f"its text is {size} characters long and Mermaid reads at most {MAX_TEXT_SIZE} (its maxTextSize)"
        )
    return text


def _legend(drawn: Picture, precision: int | None) -> list[str]:
    """A box of example nodes, one of each kind the picture has, and the words for arrows and edges."""
    lines = ['    subgraph legend ["legend"]']
    for kind in drawn.kinds():
        opening, closing = SHAPES[kind]
        lines.append(f"        legend_{kind}{opening}{quoted(*KIND_WORDS[kind])}{closing}:::{kind}")
    lines.append(f"        legend_output[{quoted(*OUTPUT_WORDS)}]:::sample")
    lines.append(f"        legend_words[{quoted(ARROW_WORDS, *EDGE_WORDS, precision_words(precision))}]:::legend")
    lines += ["    end", "    class legend_output output"]
    return lines


def quoted(*lines: str) -> str:
    """Lines of text as one Mermaid string, `<br/>` between them, each character plain or an entity
    code; a space that Mermaid would trim, at either end, is an entity code too."""
    text = "<br/>".join(map(escaped, lines))
    if text.startswith(" "):
        text = "#32;" + text[1:]
    if text.endswith(" "):
        text = text[:-1] + "#32;"
    return f'"{text}"'


def escaped(text: str) -> str:
    """Each character plain or an entity code; and a zero-width space after the first character of
    what Mermaid reads in a label once it has decoded the codes: `$$` (KaTeX), `\\n` and `<br`
    (line breaks, where it wraps a long label)."""
    text = _READ_AFTER_DECODING.sub(lambda match: match[0] + "\u200b", text)
    return "".join(character if character in PLAIN else f"#{ord(character)};" for character in text)


_READ_AFTER_DECODING = re.compile(r"\$(?=\$)|\\(?=n)|<(?=br)", re.IGNORECASE)
