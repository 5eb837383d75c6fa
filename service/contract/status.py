from marshmallow import Schema, fields, validate


class StatusSchema(Schema):
    """The answer of /healthz and /readyz."""

    status = fields.String(required=True, metadata={"description": '"ok" (healthz) or "ready" (readyz).'})
    path = fields.String(
        validate=validate.OneOf(["fast", "reference"]),
        metadata={
            "description": 'readyz: "fast" when the compiled fast path answers, "reference" when every request '
            "takes the reference path (the extension is not built, or VALUEGRAPH_FAST_PATH=0)."
        },
    )
