"""The contract: the marshmallow schemas of every request and answer, each with its fast validator,
and the examples the spec and the docs show. The source of openapi.yaml (tools/openapi.py)."""
