"""POST /v1/expression: a formula and its inputs in; the output, the inputs' grads and every node out."""

from marshmallow import Schema, ValidationError, fields

from service.contract.graph import MAX_EXPLAINED, Id, NodeResultSchema, Number, forget_frames, is_number
from service.contract.problem import ProblemErrorSchema, ProblemSchema
from service.core.ops import OPS


class Inputs(fields.Field):
    """Each input's name and its value: a finite number. Errors are keyed by the input's name; past
    MAX_EXPLAINED bad values, the rest are counted."""

    default_error_messages = {"invalid": "Not a valid object: the inputs' names and values are required."}

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not dict:
            raise self.make_error("invalid")
        bad = [name for name, given in value.items() if not is_number(given)]
        if not bad:
            return value
        number, errors = Number(), {}
        for name in bad[:MAX_EXPLAINED]:
            try:
                number.deserialize(value[name])
            except ValidationError as error:
                errors[name] = error.messages
                forget_frames(error)
        if len(bad) > MAX_EXPLAINED:
            errors["_schema"] = [
                f"{len(bad) - MAX_EXPLAINED} more inputs are invalid; the first {MAX_EXPLAINED} are listed."
            ]
        raise ValidationError(errors)


class ExpressionRequestSchema(Schema):
    expression = fields.String(
        required=True,
        metadata={
            "description": "A formula in Python's syntax: numbers, input names, + - * / ** (the exponent a "
            "plain number), unary -, and log(x), exp(x), relu(x). Built as the reference Value class's operators build "
            "it: a - b is a + (b * -1), a / b is a * b ** -1, -a is a * -1, a number meeting a Value is a new "
            "leaf, numbers meeting numbers stay numbers. At most VALUEGRAPH_MAX_EXPRESSION_LENGTH characters "
            "(default 10000) and VALUEGRAPH_MAX_EXPRESSION_NODES nodes built (default 10000)."
        },
    )
    inputs = Inputs(
        load_default=dict,
        metadata={
            "description": "The value of every name the expression uses; others are answered as `unused`.",
            "type": "object",
            "additionalProperties": {"type": "number"},
            "example": {"a": 2.0, "b": 3.0},
        },
    )


_REQUEST_KEYS = frozenset(("expression", "inputs"))


def is_valid_expression_request(document: object) -> bool:
    """True exactly when ExpressionRequestSchema().load(document) would succeed."""
    if type(document) is not dict or not document.keys() <= _REQUEST_KEYS or "expression" not in document:
        return False
    inputs = document.get("inputs", {})
    return type(document["expression"]) is str and type(inputs) is dict and all(map(is_number, inputs.values()))


class ExpressionNodeSchema(NodeResultSchema):
    """A node of the graph the expression builds: as a graph request's node (`op`, `children`, pow's
    `exponent`; a leaf's `data`), with its sub-expression and its grad."""

    op = fields.String(
        required=True,
        metadata={"description": "value for a leaf (an input or a number), else the op.", "enum": ["value", *OPS]},
    )
    children = fields.List(Id(), metadata={"description": "The children's ids, in order; absent on a leaf."})
    exponent = fields.Float(metadata={"description": "pow's exponent, a plain number; only on pow nodes."})
    expression = fields.String(
        required=True,
        metadata={
            "description": "The sub-expression the node stands for, as written (or as the reference class builds it); "
            "over 120 characters, its middle is replaced by …."
        },
    )


class ExpressionEvaluationSchema(Schema):
    """The answer: the nodes are the inputs the expression uses, in the order of their first use, then
    every node in the order the reference Value class creates them. Ids: the inputs' names; the other
    nodes get a, b, c, ... skipping the inputs' names, as the reference class's example names its nodes.
    The nodes, without `expression` and `grad` (and without `data` where `op` is not value), are a graph
    request: POST /v1/render draws them, POST /v1/evaluate answers the same numbers."""

    expression = fields.String(required=True)
    output = Id(required=True, metadata={"description": "The id of the node the whole expression builds."})
    data = fields.Float(required=True, metadata={"description": "The expression's value."})
    grads = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={"description": "d(expression)/d(input), for every input (0 for an unused one)."},
    )
    unused = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "The inputs the expression does not use, in the order given; they are not nodes."},
    )
    nodes = fields.List(fields.Nested(ExpressionNodeSchema), required=True)


class ExpressionErrorSchema(ProblemErrorSchema):
    column = fields.Integer(
        metadata={"description": "Where in the expression: the 1-based column, in characters, of `text`."}
    )
    line = fields.Integer(metadata={"description": "The 1-based line of `column`, for an expression of several lines."})
    text = fields.String(metadata={"description": "The part of the expression at fault."})
    expression = fields.String(metadata={"description": "For a numeric error: the sub-expression of the node."})


class ExpressionProblemSchema(ProblemSchema):
    errors = fields.List(fields.Nested(ExpressionErrorSchema), metadata={"description": "Every problem found."})
