"""A formula in Python's syntax, differentiated: POST /v1/expression's logic, free of Flask.

The text is parsed with `ast` and checked against a whitelist (numbers, input names, + - * / **,
unary -, and calls of log, exp, relu); nothing is ever evaluated by Python. It is then built into a
graph of the service's own nodes exactly as the reference `Value` class's operators would build it when Python
runs the same expression: `a - b` is `a + (b * -1)`, `a / b` is `a * b ** -1`, `-a` is `a * -1`, a
number meeting a Value becomes a new leaf (on the right, as `__radd__`/`__rmul__` put it), numbers
meeting numbers stay plain numbers, and the exponent of `**` is a plain number. The inputs come
first, then every node in the order the reference class creates its Values; so the evaluation is the reference's,
bit for bit.
"""

import ast
import itertools
import math
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from service.core import arithmetic, graphs
from service.core.engine import Value
from service.core.ops import OPS
from service.core.record import phase
from service.core.traversal import CHECKPOINT_EVERY, Checkpoint, checkpointed

FUNCTIONS = ("log", "exp", "relu")
OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
#: AST nodes that are never refused by type: the others are checked one by one in `_refusal`.
_STRUCTURE = (ast.Expression, ast.Load, *OPERATORS, ast.USub)
#: The longest text that describes one node: a chain a+a+...+a would otherwise answer its length squared.
MAX_NODE_TEXT = 120
#: What CPython's parser says when an expression nests more deeply than it goes (beside RecursionError
#: and MemoryError).
PARSER_DEPTH_ERRORS = ("too many nested parentheses",)
#: Larger ints than this are beyond the doubles: refused rather than computed.
_LARGEST_INT_BITS = 1100


class ExpressionError(Exception):
    """The expression is refused. `kind` is a problem type ("invalid-expression" or
    "numeric-error"); each entry of `errors` says where (column, text) and why."""

    def __init__(self, kind: str, detail: str, errors: list[dict]):
        super().__init__(detail)
        self.kind, self.detail, self.errors = kind, detail, errors


@dataclass(frozen=True)
class Term:
    """A sub-expression's result while building: a node of the graph (`node` is its position) or,
    when no input is involved, a plain number (`number`). `text` is what it stands for."""

    text: str
    ast_node: ast.AST
    node: int | None = None
    number: int | float | None = None

    @property
    def operand_text(self) -> str:
        """The text, parenthesized where it is a compound inside a larger one."""
        atomic = isinstance(self.ast_node, ast.Name | ast.Call) or (
            isinstance(self.ast_node, ast.Constant) and not self.text.startswith("-")
        )
        return self.text if atomic else f"({self.text})"


class Source:
    """The expression's text, with positions converted from `ast`'s UTF-8 byte offsets to the
    1-based character columns a person counts."""

    def __init__(self, text: str):
        self.original = text
        self.indent = len(text) - len(text.lstrip(" \t"))
        self.text = text[self.indent :]
        self.lines = re.split(r"\r\n|\r|\n", self.text)
        self.encoded = [line.encode() for line in self.lines]
        self.multiline = len(re.split(r"\r\n|\r|\n", text.strip())) > 1

    def segment(self, node: ast.AST) -> str:
        """The text of `node` (ast.get_source_segment, which loops in Python over the whole text per call)."""
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return self.encoded[first][node.col_offset : node.end_col_offset].decode()
        parts = [
            self.encoded[first][node.col_offset :],
            *self.encoded[first + 1 : last],
            self.encoded[last][: node.end_col_offset],
        ]
        return b"\n".join(parts).decode()

    def where(self, node: ast.AST) -> dict:
        """The error fields that locate `node`: column (and line when there are several) and text."""
        line = node.lineno
        column = len(self.encoded[line - 1][: node.col_offset].decode(errors="replace")) + 1
        return self._place(line, column, self.segment(node))

    def _place(self, line: int, column: int, text: str) -> dict:
        if line == 1:
            column += self.indent
        place = {"column": column, "text": shorten(text)}
        if self.multiline:
            place["line"] = line
        return place

    def span(self, start: tuple[int, int], end: tuple[int, int] | None) -> dict:
        """The error fields for the text from `start` to `end` (lines from 1, UTF-8 byte offsets)."""
        node = ast.AST()
        node.lineno, node.col_offset = start
        node.end_lineno, node.end_col_offset = end or start
        return self.where(node)

    def syntax_error(self, error: SyntaxError) -> dict:
        line = error.lineno or 1
        column = error.offset or 1
        end = error.end_offset if error.end_lineno == line and error.end_offset else column + 1
        source_line = self.lines[line - 1] if line <= len(self.lines) else ""
        return self._place(line, column, source_line[column - 1 : max(end - 1, column)])


def evaluate(
    text: str, inputs: Mapping[str, float], max_length: int, max_nodes: int, checkpoint: Checkpoint | None = None
) -> dict:
    """The answer to POST /v1/expression: the output's data, each input's grad, every node built (as a
    graph request's node with its sub-expression, data and grad), and the inputs the expression does not use.
    `checkpoint`, when given, is called every few thousand nodes and inputs (a deadline raises there)."""
    nodes, texts, wheres, output = build(text, inputs, max_length, max_nodes, checkpoint)
    with phase("build"):
        values = build_values(nodes, texts, wheres, checkpoint)
    by_id = {node["id"]: value for node, value in zip(nodes, values)}
    root = by_id[output]
    with phase("backward"):
        root.backward(checkpoint)
        for i in checkpointed(reversed(range(len(values))), checkpoint):
            if not math.isfinite(values[i].grad):
                message = f"The gradient of the output with respect to this node overflows ({values[i].grad!r})."
                raise _numeric_error("A gradient is not a finite number.", nodes, texts, wheres, i, message)
    with phase("write"):
        return {
            "expression": text,
            "output": output,
            "data": by_id[output].data,
            "grads": {name: by_id[name].grad if name in by_id else 0 for name in checkpointed(inputs, checkpoint)},
            "unused": [name for name in checkpointed(inputs, checkpoint) if name not in by_id],
            "nodes": [
                {
                    **{key: node[key] for key in ("id", "op", "children", "exponent") if key in node},
                    "expression": shorten(node_text),
                    "data": value.data,
                    "grad": value.grad,
                }
                for node, node_text, value in checkpointed(zip(nodes, texts, values), checkpoint)
            ],
        }


def shorten(text: str) -> str:
    """The text, its middle replaced by … when it is longer than MAX_NODE_TEXT."""
    if len(text) <= MAX_NODE_TEXT:
        return text
    half = (MAX_NODE_TEXT - 1) // 2
    return text[:half] + "…" + text[len(text) - (MAX_NODE_TEXT - 1 - half) :]


def build_values(
    nodes: list[dict], texts: list[str], wheres: list[dict], checkpoint: Checkpoint | None = None
) -> list[Value]:
    """The forward pass, node by node with the graph builder's `build_value` (the constants keep their
    Python type, int or float, as in the reference class); a node whose value or local gradient is not
    finite is refused where the expression builds it."""
    values: list[Value] = []
    position = {}
    for i, node in checkpointed(enumerate(nodes), checkpoint):
        children = [values[position[child]] for child in node.get("children", ())]
        try:
            value = graphs.build_value(nodes, i, children, number=_as_written)
        except graphs.GraphError as error:
            raise _from_fault(error.detail, error.faults[0], nodes, texts, wheres, i) from None
        if not all(map(math.isfinite, value._local_grads)):
            data = [child.data for child in children]
            fault = graphs.Fault(OPS[node["op"]].why_not_finite(data, node.get("exponent")), op=node["op"], inputs=data)
            raise _from_fault("A local gradient is not a finite number.", fault, nodes, texts, wheres, i)
        position[node["id"]] = i
        values.append(value)
    return values


def _as_written(number: int | float) -> int | float:
    return number


def _from_fault(detail: str, fault, nodes: list[dict], texts: list[str], wheres: list[dict], i: int):
    error = _numeric_error(detail, nodes, texts, wheres, i, fault.message)
    error.errors[0].update(op=fault.op, inputs=fault.inputs)
    return error


def _numeric_error(detail: str, nodes: list[dict], texts: list[str], wheres: list[dict], i: int, message: str):
    entry = {"node": nodes[i]["id"], "index": i, "field": "expression", "message": message}
    return ExpressionError("numeric-error", detail, [{**entry, "expression": shorten(texts[i]), **wheres[i]}])


def build(
    text: str, inputs: Mapping[str, float], max_length: int, max_nodes: int, checkpoint: Checkpoint | None = None
) -> tuple[list[dict], list[str], list[dict], object]:
    """The expression as /v1/evaluate's nodes, children first: (nodes, each node's text, each node's
    place in the expression, the output's id). The inputs it uses are the first nodes, in the order of
    their first use; the others are not nodes."""
    with phase("validate"):
        source, tree, names_in_order = checked(text, inputs, max_length, checkpoint)
    with phase("build"):
        return _Builder(source, inputs, names_in_order, max_nodes, checkpoint).build(tree.body)


def checked(
    text: str, inputs: Mapping[str, float], max_length: int, checkpoint: Checkpoint | None = None
) -> tuple["Source", ast.Expression, list[str]]:
    """The expression parsed and checked against the whitelist: its source, its syntax tree and the names
    of the inputs it uses, in the order of their first use; or a refusal naming every part not allowed."""
    if len(text) > max_length:
        raise ExpressionError(
            "invalid-expression",
            f"The expression has {len(text)} characters; the limit is {max_length} (VALUEGRAPH_MAX_EXPRESSION_LENGTH).",
            [{"field": "expression", "message": f"An expression may have at most {max_length} characters."}],
        )
    source = Source(text)
    tree = parse(source)
    syntax_nodes = list(checkpointed(ast.walk(tree), checkpoint))
    called = {id(node.func) for node in syntax_nodes if isinstance(node, ast.Call)}
    variables = [node for node in syntax_nodes if isinstance(node, ast.Name) and id(node) not in called]
    refusals = [
        refusal
        for refusal in (
            _refusal(node, inputs) for node in checkpointed(syntax_nodes, checkpoint) if id(node) not in called
        )
        if refusal
    ]
    variables.sort(key=lambda node: (node.lineno, node.col_offset))
    names_in_order = list(dict.fromkeys(node.id for node in variables))
    if refusals:
        errors = [
            {"field": "expression", "message": message, **source.where(node)} for node, message in _outermost(refusals)
        ]
        raise ExpressionError("invalid-expression", _count(errors), errors)
    return source, tree, names_in_order


def parse(source: Source) -> ast.Expression:
    """The syntax tree, or a refusal pointing at the syntax error. CPython's parser first; where the
    expression nests more deeply than it goes, service/core/arithmetic.py's, which builds the same
    tree at any depth, so that an expression within the length limit is never refused for its depth."""
    if not source.text.strip():
        raise ExpressionError(
            "invalid-expression",
            "The expression is empty.",
            [{"field": "expression", "message": "The expression is empty."}],
        )
    try:
        return ast.parse(source.text, mode="eval")
    except SyntaxError as error:
        if error.msg not in PARSER_DEPTH_ERRORS:
            place = source.syntax_error(error) if error.lineno else {}
            message = f"Not a valid expression: {error.msg}."
            raise ExpressionError(
                "invalid-expression", message, [{"field": "expression", "message": message, **place}]
            ) from None
    except (RecursionError, MemoryError):
        pass
    try:
        return arithmetic.parse(source.text)
    except arithmetic.NotArithmetic as error:
        place = source.span(error.start, error.end) if error.start else {}
        message = f"Not a valid expression: {error.message}"
        raise ExpressionError(
            "invalid-expression", message, [{"field": "expression", "message": message, **place}]
        ) from None


def _refusal(node: ast.AST, inputs: Mapping[str, float]) -> tuple[ast.AST, str] | None:
    """Why this syntax node is not allowed, or None. Never evaluates anything."""
    if isinstance(node, _STRUCTURE) or not hasattr(node, "lineno"):
        return None  # an operator or a context: its expression is checked (and located) instead
    if isinstance(node, ast.Name):
        if node.id in inputs:
            return None
        if node.id in FUNCTIONS:
            return node, f"{node.id} is a function: call it, as in {node.id}(x)."
        return node, f"{node.id!r} is not an input: give its value in inputs."
    if isinstance(node, ast.Constant):
        if type(node.value) in (int, float):
            return None
        return node, "Only numbers may be written as constants."
    if isinstance(node, ast.BinOp):
        if type(node.op) in OPERATORS:
            return None
        return node, "Only the operators + - * / ** may be used."
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            return None
        return node, "Only unary minus (-x) may be used."
    if isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
            return node.func, f"Only {', '.join(FUNCTIONS)} may be called."
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            return node, f"{node.func.id} takes exactly one argument, as in {node.func.id}(x)."
        return None
    if isinstance(node, ast.Attribute):
        return node, "Attribute access is not allowed."
    return (
        node,
        f"This is not allowed in an expression ({type(node).__name__}): use numbers, inputs, + - * / **, unary -, {', '.join(FUNCTIONS)}.",
    )


def _outermost(refusals: list[tuple[ast.AST, str]]) -> list[tuple[ast.AST, str]]:
    """The refusals in the order they appear, without those inside an earlier one (`a.b.c` once)."""
    kept, end = [], (0, -1)
    for node, message in sorted(refusals, key=lambda refusal: (refusal[0].lineno, refusal[0].col_offset)):
        if (node.lineno, node.col_offset) >= end:
            kept.append((node, message))
            end = (node.end_lineno, node.end_col_offset)
    return kept


def _count(errors: list[dict]) -> str:
    return errors[0]["message"] if len(errors) == 1 else f"{len(errors)} problems found; see errors."


def node_names(taken: set[str]) -> Iterator[str]:
    """Ids for the nodes that are not inputs, as the reference class's example names them: a, b, c, ..., z, aa, ab, ...,
    skipping the inputs' names (so `log((a + b) * a)` builds c, d and e)."""
    for length in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            name = "".join(letters)
            if name not in taken:
                yield name


class _Builder:
    def __init__(
        self,
        source: Source,
        inputs: Mapping[str, float],
        names: list[str],
        max_nodes: int,
        checkpoint: Checkpoint | None = None,
    ):
        self.source, self.max_nodes, self.checkpoint = source, max_nodes, checkpoint
        self.nodes: list[dict] = []
        self.texts: list[str] = []
        self.wheres: list[dict] = []
        self.ids = node_names(set(inputs))
        self.input_positions = {}
        for name in names:
            self.input_positions[name] = len(self.nodes)
            self.nodes.append({"id": name, "op": "value", "data": float(inputs[name])})
            self.texts.append(name)
            self.wheres.append({})

    def build(self, root: ast.expr) -> tuple[list[dict], list[str], list[dict], object]:
        """Post-order over the syntax tree with an explicit stack: any depth the parser accepts."""
        results: list[Term] = []
        stack: list[tuple[ast.expr, bool]] = [(root, False)]
        steps = 0
        while stack:
            steps += 1
            if self.checkpoint and not steps % CHECKPOINT_EVERY:
                self.checkpoint()
            node, children_done = stack.pop()
            operands = _operands(node)
            if operands and not children_done:
                stack.append((node, True))
                stack.extend((operand, False) for operand in reversed(operands))
                continue
            arguments = results[len(results) - len(operands) :] if operands else []
            del results[len(results) - len(operands) :]
            results.append(self._term(node, arguments))
        (result,) = results
        if result.node is None:
            result = self._leaf(result.number, result.text, root)
        return self.nodes, self.texts, self.wheres, self.nodes[result.node]["id"]

    def _term(self, node: ast.expr, arguments: list[Term]) -> Term:
        text = shorten(self.source.segment(node))
        if isinstance(node, ast.Constant):
            return Term(
                text,
                node,
                number=self._number(lambda: node.value, node, "This number is too large for a double."),
            )
        if isinstance(node, ast.Name):
            return Term(text, node, node=self.input_positions[node.id])
        if isinstance(node, ast.UnaryOp):
            (operand,) = arguments
            if operand.node is None:
                return Term(text, node, number=-operand.number)
            return self._neg(operand, node, text)
        if isinstance(node, ast.Call):
            (argument,) = arguments
            function = node.func.id
            if argument.node is None:
                return Term(text, node, number=self._fold(function, [argument.number], node))
            return Term(text, node, node=self._add_node({"op": function, "children": [argument.node]}, text, node))
        left, right = arguments
        return self._binary(type(node.op), left, right, node, text)

    def _binary(self, operator: type, left: Term, right: Term, node: ast.BinOp, text: str) -> Term:
        if left.node is None and right.node is None:
            name = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}[operator]
            return Term(text, node, number=self._fold(name, [left.number, right.number], node))
        if operator is ast.Pow:
            if right.node is not None:
                message = "The exponent must be a plain number, as in the reference Value class: x ** 2, not x ** y."
                raise ExpressionError(
                    "invalid-expression",
                    message,
                    [{"field": "expression", "message": message, **self.source.where(right.ast_node)}],
                )
            return self._node("pow", [left], node, text, exponent=right.number)
        if operator in (ast.Add, ast.Mult):
            op = "add" if operator is ast.Add else "mul"
            if left.node is None:  # 2 * a is a.__rmul__(2): a * Value(2)
                return self._node(op, [right, left], node, text)
            return self._node(op, [left, right], node, text)
        if operator is ast.Sub:
            if right.node is None:  # a - 2 is a + (-2)
                return self._node("add", [left, self._negated_number(right, node)], node, text)
            negated = self._neg(right, node, f"-{right.operand_text}")
            if left.node is None:  # 2 - a is a.__rsub__(2): (a * -1) + 2
                return self._node("add", [negated, left], node, text)
            return self._node("add", [left, negated], node, text)
        # division
        if right.node is None:  # a / 2 is a * 2 ** -1, a plain number
            reciprocal = self._fold("pow", [right.number, -1], node, "Division by zero." if right.number == 0 else None)
            return self._node("mul", [left, Term(f"{right.operand_text} ** -1", node, number=reciprocal)], node, text)
        reciprocal = self._node("pow", [right], node, f"{right.operand_text} ** -1", exponent=-1)
        if left.node is None:  # 2 / a is a.__rtruediv__(2): a ** -1 * 2
            return self._node("mul", [reciprocal, left], node, text)
        return self._node("mul", [left, reciprocal], node, text)

    def _neg(self, operand: Term, node: ast.expr, text: str) -> Term:
        """-x is x * -1, as in the reference class."""
        return self._node("mul", [operand, Term("-1", node, number=-1)], node, text)

    def _negated_number(self, term: Term, node: ast.expr) -> Term:
        return Term(f"-{term.operand_text}", node, number=-term.number)

    def _node(self, op: str, operands: list[Term], node: ast.expr, text: str, **extra) -> Term:
        """A node of `op`; a plain number among the operands becomes a new leaf first, as
        `Value.__add__`/`__mul__` wrap `other`."""
        children = [
            operand.node if operand.node is not None else self._leaf(operand.number, operand.text, node).node
            for operand in operands
        ]
        return Term(text, node, node=self._add_node({"op": op, "children": children, **extra}, text, node))

    def _leaf(self, number: int | float, text: str, node: ast.expr) -> Term:
        return Term(text, node, node=self._add_node({"op": "value", "data": number}, text, node))

    def _add_node(self, fields: dict, text: str, node: ast.expr) -> int:
        if len(self.nodes) >= self.max_nodes:
            message = f"The expression builds more than {self.max_nodes} nodes (VALUEGRAPH_MAX_EXPRESSION_NODES)."
            raise ExpressionError(
                "invalid-expression", message, [{"field": "expression", "message": message, **self.source.where(node)}]
            )
        if "children" in fields:
            fields["children"] = [self.nodes[child]["id"] for child in fields["children"]]
        self.nodes.append({"id": next(self.ids), **fields})
        self.texts.append(text)
        self.wheres.append(self.source.where(node))
        return len(self.nodes) - 1

    def _fold(self, op: str, numbers: list[int | float], node: ast.expr, why: str | None = None) -> int | float:
        """Numbers meeting numbers, computed as Python computes them: an int stays an int (0 * -1 is
        0, where 0.0 * -1 is -0.0), an int too large for a double is refused before it is made."""
        if op == "pow" and all(type(number) is int for number in numbers):
            base, exponent = numbers
            if exponent > 0 and abs(base) > 1 and exponent * abs(base).bit_length() > _LARGEST_INT_BITS:
                numbers = [float(base), exponent]
        operations = {
            "add": lambda x, y: x + y,
            "sub": lambda x, y: x - y,
            "mul": lambda x, y: x * y,
            "div": lambda x, y: x / y,
            "pow": lambda x, y: x**y,
            "log": math.log,
            "exp": math.exp,
            "relu": lambda x: max(0, x),
        }
        exponent = numbers[1] if op == "pow" else None
        return self._number(
            lambda: operations[op](*numbers),
            node,
            why or OPS[op].why_not_finite(numbers[:1] if op == "pow" else numbers, exponent),
        )

    def _number(self, compute, node: ast.expr, why: str) -> int | float:
        try:
            number = compute()
            if type(number) is int and number.bit_length() <= _LARGEST_INT_BITS:
                return number
            if type(number) is float and math.isfinite(number):
                return number
        except (ArithmeticError, ValueError):
            pass
        raise ExpressionError(
            "numeric-error",
            "A number in the expression is not finite.",
            [{"field": "expression", "message": why, **self.source.where(node)}],
        )


def _operands(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []
