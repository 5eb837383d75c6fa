"""POST /v1/grade and POST /v1/grade/batch: a submission graded node by node against the reference.

A grade request is a graph request plus what a submission computed; it is answered on /v1/evaluate's
path (service/http/answer.py), its graph evaluated by the same functions, then graded (service/core/grading.py).
"""

from flask import Blueprint, Response, current_app
from marshmallow import ValidationError

from service.contract.grade import is_valid_grade_request
from service.contract.graph import is_id
from service.core import graphs
from service.core.grading import DEFAULT_TOLERANCE, Tolerance, grade
from service.core.record import note_graph_size, phase
from service.core.traversal import Checkpoint
from service.http.answer import answer, json_bytes, parse_json_with_non_finite, validated
from service.http.batch import batch_body, unexplained
from service.http.problems import Problem, field_path, graph_entry, invalid_graph, message_paths

bp = Blueprint("grade", __name__)

#: The grade request's own fields, beside the graph's: their refusals are named by their path.
SUBMISSION_FIELDS = ("submitted", "tolerance", "required")


@bp.post("/v1/grade")
def grade_route() -> Response:
    return answer(grade_body, parse=parse_json_with_non_finite)


@bp.post("/v1/grade/batch")
def grade_batch() -> Response:
    return answer(
        lambda document, checkpoint: batch_body(document, grade_body, b"grade", checkpoint),
        parse=parse_json_with_non_finite,
    )


def grade_body(document: object, checkpoint: Checkpoint, explain: bool = True) -> bytes:
    """The 200 body of POST /v1/grade for this document; raises a Problem or GraphError otherwise (a
    refusal unexplained when, in a batch whose answer has no room left, `explain` is false)."""
    grade_request = validated(
        document,
        lambda document: is_valid_grade_request(document, current_app.config["MAX_NODES"], checkpoint),
        current_app.extensions["valuegraph.grade_schema"],
        invalid_grade_request,
        None if explain else lambda: unexplained("invalid-graph"),
    )
    checkpoint()
    nodes = grade_request["nodes"]
    note_graph_size(len(nodes))
    output, values = graphs.evaluate(nodes, grade_request.get("output"), checkpoint)
    given = grade_request.get("tolerance")
    tolerance = (
        None
        if given is None
        else Tolerance(
            rtol=float(given.get("rtol", DEFAULT_TOLERANCE.rtol)),
            atol=float(given.get("atol", DEFAULT_TOLERANCE.atol)),
        )
    )
    with phase("grade"):
        body = grade(
            nodes, output, values, grade_request["submitted"], tolerance, grade_request.get("required", ()), checkpoint
        )
    checkpoint()
    with phase("write"):
        return json_bytes(body)


def invalid_grade_request(error: ValidationError) -> Problem:
    """The graph's problems as /v1/evaluate names them, then the submission's by entry and field
    (`submitted[3].local_grads[1]`, `tolerance.rtol`), an entry naming its node."""
    document = error.data if isinstance(error.data, dict) else {}
    paths = message_paths(error.normalized_messages())
    graph_part = [(path, message) for path, message in paths if not path or path[0] not in SUBMISSION_FIELDS]
    submission_part = sorted(
        [(path, message) for path, message in paths if path and path[0] in SUBMISSION_FIELDS],
        key=lambda pair: SUBMISSION_FIELDS.index(pair[0][0]),
    )
    errors = [graph_entry(path, message, document.get("nodes")) for path, message in graph_part]
    entries = document.get("submitted")
    for path, message in submission_part:
        named = {}
        if path[0] == "submitted" and len(path) > 1 and isinstance(path[1], int) and isinstance(entries, list):
            entry = entries[path[1]]
            if isinstance(entry, dict) and is_id(entry.get("id")):
                named = {"node": entry["id"]}
        errors.append({**named, "field": field_path(path), "message": message})
    return invalid_graph(errors)
