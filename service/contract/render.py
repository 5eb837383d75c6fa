"""POST /v1/render: a graph request in (the body of /v1/evaluate), a picture description out."""

from marshmallow import Schema, fields, validate

from service.core.render import FORMATS


class RenderQuerySchema(Schema):
    """The query string: which picture language to answer in."""

    format = fields.String(
        load_default="mermaid",
        validate=validate.OneOf(FORMATS),
        metadata={
            "description": "mermaid (the default; `flowchart BT`, as the reference Value class's documentation draws) or dot (Graphviz).",
        },
    )
