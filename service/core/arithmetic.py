"""Python's arithmetic expressions parsed without recursion, for those nested more deeply than CPython's
parser goes: its depth is bounded (about 3,000 operators in a chain, fewer the deeper the caller's own
stack; 200 parentheses), where an expression of a few thousand characters can nest further.

It reads the arithmetic part of Python's expression grammar (the Python Language Reference, 6.3 to 6.9:
numbers, strings, names, attributes, calls with positional arguments, parentheses, unary - + ~, and the
binary operators from | up to **, with Python's precedence and associativity) by operator precedence
(Dijkstra's shunting-yard, with explicit stacks), and builds the `ast` nodes CPython builds for it, with
the same positions, so that a caller cannot tell the two apart. Anything else (subscripts, comparisons,
keywords, tuples) is refused where it stands.
"""

import ast
import io
import keyword
import tokenize
import unicodedata
from dataclasses import dataclass

#: Binary operators: precedence (higher binds tighter) and node. ** is right-associative.
BINARY = {
    "|": (1, ast.BitOr),
    "^": (2, ast.BitXor),
    "&": (3, ast.BitAnd),
    "<<": (4, ast.LShift),
    ">>": (4, ast.RShift),
    "+": (5, ast.Add),
    "-": (5, ast.Sub),
    "*": (6, ast.Mult),
    "/": (6, ast.Div),
    "//": (6, ast.FloorDiv),
    "%": (6, ast.Mod),
    "@": (6, ast.MatMult),
    "**": (8, ast.Pow),
}
UNARY = {"-": ast.USub, "+": ast.UAdd, "~": ast.Invert}
#: Between the multiplicative operators and **: -a * b is (-a) * b, -a ** b is -(a ** b).
UNARY_PRECEDENCE = 7
NAMED_CONSTANTS = {"True": True, "False": False, "None": None}
SKIPPED = (tokenize.COMMENT, tokenize.NL, tokenize.DEDENT, tokenize.ENDMARKER)

Position = tuple[int, int]  # line (from 1), UTF-8 byte offset in the line (from 0), as `ast` counts


class NotArithmetic(Exception):
    """The text is not an arithmetic expression: `start` and `end` say where (None: at its end)."""

    def __init__(self, message: str, start: Position | None = None, end: Position | None = None):
        super().__init__(message)
        self.message, self.start, self.end = message, start, end


@dataclass
class Operand:
    """A parsed sub-expression, and its extent with any parentheses around it (which its node's own
    positions leave out, but an operator's node takes in)."""

    node: ast.expr
    start: Position
    end: Position


@dataclass
class Pending:
    """An operator waiting for its operands: binary or unary (`kind`), an attribute's dot, or an open
    parenthesis, of a group or of a call (`callee`, with `arguments` counted so far)."""

    kind: str
    token: str
    start: Position
    callee: Operand | None = None
    arguments: int = 0


def parse(text: str) -> ast.Expression:
    """`ast.parse(text, mode="eval")` for an arithmetic expression, at any depth."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    def position(row: int, column: int) -> Position:
        return row, len(lines[row - 1][:column].encode())

    operands: list[Operand] = []
    pending: list[Pending] = []
    wants_operand, ended = True, False
    try:
        for token in tokenize.generate_tokens(io.StringIO("\n".join(lines)).readline):
            if token.type in SKIPPED:
                continue
            start, end = position(*token.start), position(*token.end)
            if token.type == tokenize.NEWLINE:  # the end of the expression: only comments and blank lines follow
                ended = True
            elif ended or token.type == tokenize.INDENT:
                raise NotArithmetic("An expression is one line, or continues inside parentheses.", start, end)
            elif wants_operand:
                wants_operand = _operand(token, start, end, operands, pending)
            else:
                wants_operand = _operator(token, start, end, operands, pending)
    except tokenize.TokenError:
        raise NotArithmetic("The expression ends before its parentheses are closed.") from None
    except SyntaxError as error:  # the tokenizer's IndentationError
        raise NotArithmetic(f"{error.msg}.") from None
    if wants_operand:
        raise NotArithmetic("The expression ends where a number, an input or a parenthesis should follow.")
    _reduce(operands, pending, 0)
    if pending:
        raise NotArithmetic("The expression ends before its parentheses are closed.", pending[-1].start)
    (result,) = operands
    return ast.Expression(body=result.node)


def _operand(token, start: Position, end: Position, operands: list[Operand], pending: list[Pending]) -> bool:
    """Where an operand is due: a number, a name, a unary operator or an open parenthesis (or the close
    of a call with no, or a trailing, argument; or an attribute's name). Whether an operand is still due."""
    if pending and pending[-1].kind == "attribute":
        if token.type != tokenize.NAME or not token.string.isidentifier() or keyword.iskeyword(token.string):
            raise NotArithmetic(_unexpected(token.string), start, end)
        pending.pop()
        owner = operands.pop()
        node = ast.Attribute(value=owner.node, attr=unicodedata.normalize("NFKC", token.string), ctx=ast.Load())
        operands.append(Operand(_at(node, owner.start, end), owner.start, end))
        return False
    if token.type in (tokenize.NUMBER, tokenize.STRING):
        try:
            value = ast.literal_eval(token.string)
        except (ValueError, SyntaxError):
            raise NotArithmetic(_unexpected(token.string), start, end) from None
        kind = "u" if token.string[:1] in "uU" else None
        operands.append(Operand(_at(ast.Constant(value=value, kind=kind), start, end), start, end))
        return False
    if token.type == tokenize.NAME and token.string.isidentifier():
        if token.string in NAMED_CONSTANTS:
            node = ast.Constant(value=NAMED_CONSTANTS[token.string], kind=None)
        elif keyword.iskeyword(token.string):
            raise NotArithmetic(f"{token.string} is a keyword of Python, not allowed here.", start, end)
        else:
            node = ast.Name(id=unicodedata.normalize("NFKC", token.string), ctx=ast.Load())
        operands.append(Operand(_at(node, start, end), start, end))
        return False
    if token.string in UNARY:
        pending.append(Pending("unary", token.string, start))
        return True
    if token.string == "(":
        pending.append(Pending("group", "(", start))
        return True
    if token.string == ")" and pending and pending[-1].kind == "call":
        _close_call(operands, pending.pop(), end)
        return False
    raise NotArithmetic(_unexpected(token.string), start, end)


def _operator(token, start: Position, end: Position, operands: list[Operand], pending: list[Pending]) -> bool:
    """Where an operator is due: a binary operator, a call's open parenthesis, a comma between its
    arguments, or a close parenthesis. Whether an operand is due next."""
    if token.string in BINARY:
        precedence = BINARY[token.string][0]
        _reduce(operands, pending, precedence + (token.string == "**"))
        pending.append(Pending("binary", token.string, start))
        return True
    if token.string == "(":
        pending.append(Pending("call", "(", start, callee=operands.pop()))
        return True
    if token.string == ".":
        pending.append(Pending("attribute", ".", start))
        return True
    if token.string in (",", ")"):
        _reduce(operands, pending, 0)
        if not pending:
            raise NotArithmetic(_unexpected(token.string), start, end)
        opened = pending[-1]
        if opened.kind == "group":
            if token.string == ",":
                raise NotArithmetic("Tuples are not allowed.", opened.start, end)
            pending.pop()
            operands[-1].start, operands[-1].end = opened.start, end
            return False
        opened.arguments += 1
        if token.string == ",":
            return True
        _close_call(operands, pending.pop(), end)
        return False
    raise NotArithmetic(_unexpected(token.string), start, end)


def _reduce(operands: list[Operand], pending: list[Pending], precedence: int) -> None:
    """Apply the waiting operators that bind at least as tightly as `precedence`, innermost first."""
    while pending and pending[-1].kind in ("binary", "unary"):
        operator = pending[-1]
        binds = BINARY[operator.token][0] if operator.kind == "binary" else UNARY_PRECEDENCE
        if binds < precedence:
            return
        pending.pop()
        right = operands.pop()
        if operator.kind == "unary":
            node = ast.UnaryOp(op=UNARY[operator.token](), operand=right.node)
            operands.append(Operand(_at(node, operator.start, right.end), operator.start, right.end))
        else:
            left = operands.pop()
            node = ast.BinOp(left=left.node, op=BINARY[operator.token][1](), right=right.node)
            operands.append(Operand(_at(node, left.start, right.end), left.start, right.end))


def _close_call(operands: list[Operand], call: Pending, end: Position) -> None:
    arguments = [operand.node for operand in operands[len(operands) - call.arguments :]]
    del operands[len(operands) - call.arguments :]
    node = ast.Call(func=call.callee.node, args=arguments, keywords=[])
    operands.append(Operand(_at(node, call.callee.start, end), call.callee.start, end))


def _at(node: ast.expr, start: Position, end: Position) -> ast.expr:
    node.lineno, node.col_offset = start
    node.end_lineno, node.end_col_offset = end
    return node


def _unexpected(text: str) -> str:
    return (
        f"{text[:20]!r} is not allowed here: an expression nested this deeply may hold only numbers, inputs, "
        "operators, calls and parentheses."
    )
