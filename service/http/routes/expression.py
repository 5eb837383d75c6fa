"""POST /v1/expression: a formula in Python's syntax instead of a graph; the logic is in
service/core/expression.py."""

from flask import Blueprint, Response, current_app
from marshmallow import ValidationError

from service.contract.expression import ExpressionRequestSchema
from service.core import expression
from service.core.traversal import Checkpoint
from service.http.answer import answer, json_bytes
from service.http.problem_types import title
from service.http.problems import Problem, field_problem, listed

bp = Blueprint("expression", __name__)


@bp.post("/v1/expression")
def evaluate_expression() -> Response:
    return answer(expression_body)


def expression_body(document: object, checkpoint: Checkpoint) -> bytes:
    try:
        request_body = ExpressionRequestSchema().load(document)
    except ValidationError as error:
        raise field_problem(error, 422, "/problems/invalid-expression", title("invalid-expression")) from None
    try:
        evaluated = expression.evaluate(
            request_body["expression"],
            request_body.get("inputs", {}),
            current_app.config["MAX_EXPRESSION_LENGTH"],
            current_app.config["MAX_EXPRESSION_NODES"],
        )
    except expression.ExpressionError as error:
        raise Problem(
            422, f"/problems/{error.kind}", title(error.kind), error.detail, errors=listed(error.errors)
        ) from None
    return json_bytes(evaluated)
