"""POST /v1/render: a graph request in (the body of /v1/evaluate), a picture out; the query string
says in which format and to what precision."""

from marshmallow import Schema, fields, validate

from service.contract.graph import Id
from service.core.render import DEFAULT_PRECISION, FORMATS, KINDS, MAX_PRECISION

FULL_PRECISION = "full"


class Precision(fields.Field):
    """Significant digits, 1 to MAX_PRECISION, or `full`: the shortest digits that read back the same (None)."""

    default_error_messages = {
        "invalid": f"Must be an integer from 1 to {MAX_PRECISION}, or {FULL_PRECISION}.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if value == FULL_PRECISION:
            return None
        if isinstance(value, str) and value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_PRECISION:
            return int(value)
        raise self.make_error("invalid")


class RenderQuerySchema(Schema):
    """The query string: the picture's format and the precision of its numbers."""

    format = fields.String(
        load_default="mermaid",
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": "mermaid (the default; `flowchart BT`, as the reference Value class's documentation "
            "draws), dot (Graphviz's language), svg (the picture Graphviz's dot draws, where Graphviz is "
            "installed; else 406 `/problems/format-unavailable`), or json (the picture's content as data: "
            "nodes and edges with exact numbers)."
        },
    )
    precision = Precision(
        load_default=DEFAULT_PRECISION,
        metadata={
            "description": f"The numbers' significant digits, 1 to {MAX_PRECISION} (default {DEFAULT_PRECISION}), "
            f"or {FULL_PRECISION} for the shortest digits that read back the same number. Not used by json, whose "
            "numbers are exact.",
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_PRECISION},
                {"type": "string", "enum": [FULL_PRECISION]},
            ],
            "default": DEFAULT_PRECISION,
        },
    )


class PictureNodeSchema(Schema):
    id = Id(required=True)
    label = fields.String(required=True, allow_none=True, metadata={"description": "The node's label, or null."})
    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS),
        metadata={
            "description": "leaf (a leaf without a label, an input value), parameter (a leaf with a label), op "
            "(computed by the service) or recorded (sent with its local gradients)."
        },
    )
    op = fields.String(required=True, metadata={"description": "The node's op; value for leaves and recorded nodes."})
    children = fields.List(Id(), required=True)
    exponent = fields.Float(metadata={"description": "pow's exponent; only on pow nodes."})
    data = fields.Float(required=True)
    grad = fields.Float(required=True)
    local_grads = fields.List(
        fields.Float(allow_none=True),
        required=True,
        metadata={
            "description": "d(node)/d(child), one per child in order: for an op, per unit of the node's grad through "
            "the Values the reference class builds for it (sub, div and neg are built from several); for a recorded "
            "node, as sent. null where it is not finite (on a node the output does not reach)."
        },
    )


class PictureEdgeSchema(Schema):
    child = Id(required=True)
    parent = Id(required=True, metadata={"description": "The node that uses the child."})
    position = fields.Integer(required=True, metadata={"description": "The child's position in the parent's children."})
    local_grad = fields.Float(required=True, allow_none=True, metadata={"description": "d(parent)/d(child)."})
    carried = fields.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "The gradient the backward pass sent to the child along this edge; a child's add up to "
            "its grad."
        },
    )


class PictureSchema(Schema):
    """format=json: the picture's content, its numbers exact; nodes in request order, edges by parent and position."""

    output = Id(required=True)
    nodes = fields.List(fields.Nested(PictureNodeSchema), required=True)
    edges = fields.List(fields.Nested(PictureEdgeSchema), required=True)
