from marshmallow import Schema, fields


class StatusSchema(Schema):
    """The answer of /healthz and /readyz."""

    status = fields.String(required=True, metadata={"description": '"ok" (healthz) or "ready" (readyz).'})
