"""Errors, as RFC 9457 problem details (`application/problem+json`)."""

from marshmallow import Schema, fields

from service.contract.graph import Id, Number


class ProblemErrorSchema(Schema):
    """One thing wrong with the request, located precisely enough to fix it."""

    node = Id(
        metadata={
            "description": "The id of the node at fault; absent when the problem is not one node's, or the node has no valid id."
        }
    )
    index = fields.Integer(metadata={"description": "The node's position in the request's `nodes` list."})
    field = fields.String(
        allow_none=True,
        metadata={"description": 'The field at fault, like "data" or "children[1]"; null for the node as a whole.'},
    )
    message = fields.String(required=True)
    op = fields.String(metadata={"description": "For a numeric error: the op that failed."})
    inputs = fields.List(Number(), metadata={"description": "For a numeric error: the op's input data."})
    cycle = fields.List(
        Id(), metadata={"description": "For a cycle: the ids on it, in order, the first repeated at the end."}
    )


class ProblemSchema(Schema):
    type = fields.String(
        required=True,
        metadata={
            "description": 'A URI reference naming the kind of problem; "about:blank" when the status says it all.'
        },
    )
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    request_id = fields.String(
        metadata={"description": "The request's id, as in the answer's X-Request-ID header and the service's log."}
    )
    errors = fields.List(
        fields.Nested(ProblemErrorSchema), metadata={"description": "For 422: every problem found, node by node."}
    )
