"""POST /v1/expression: a formula in Python's syntax instead of a graph; the logic is in
service/core/expression.py."""

from flask import Blueprint, Response, current_app

from service.contract.expression import ExpressionRequestSchema, is_valid_expression_request
from service.core import expression
from service.core.record import phase
from service.core.traversal import Checkpoint
from service.http.answer import answer, json_bytes, validated
from service.http.problem_types import title
from service.http.problems import Problem, field_problem, listed

bp = Blueprint("expression", __name__)

#: Made once: making a schema deep-copies its fields.
REQUEST_SCHEMA = ExpressionRequestSchema()


@bp.post("/v1/expression")
def evaluate_expression() -> Response:
    return answer(expression_body)


def expression_body(document: object, checkpoint: Checkpoint) -> bytes:
    request_body = validated(
        document,
        is_valid_expression_request,
        REQUEST_SCHEMA,
        lambda error: field_problem(error, 422, "/problems/invalid-expression", title("invalid-expression")),
    )
    try:
        evaluated = expression.evaluate(
            request_body["expression"],
            request_body.get("inputs", {}),
            current_app.config["MAX_EXPRESSION_LENGTH"],
            current_app.config["MAX_EXPRESSION_NODES"],
            checkpoint,
        )
    except expression.ExpressionError as error:
        raise Problem(
            422, f"/problems/{error.kind}", title(error.kind), error.detail, errors=listed(error.errors)
        ) from None
    with phase("write"):
        return json_bytes(evaluated)
