"""The op registry is the one place an op is defined: a new entry in service/core/ops.py is accepted by the
schemas, the fast validation, the graph builder, the numeric errors and the spec, with no other edit."""

import pytest

from service.core import ops
from service.core.engine import Value
from tools.openapi import build_spec


def sqrt(x: Value) -> Value:
    """A hypothetical op built from the seed's own: x ** 0.5."""
    return x**0.5


@pytest.fixture
def with_sqrt(monkeypatch):
    def domain(inputs, exponent):
        return f"sqrt({inputs[0]!r}): sqrt is defined only for numbers >= 0." if inputs[0] < 0 else None

    monkeypatch.setitem(ops.OPS, "sqrt", ops.Op("sqrt", 1, sqrt, domain))


def test_a_registry_entry_is_all_a_new_op_needs(with_sqrt, make_app):
    client = make_app().test_client()
    nodes = [{"id": "x", "data": 9.0}, {"id": "y", "op": "sqrt", "children": ["x"]}]
    answer = client.post("/v1/evaluate", json={"nodes": nodes}).get_json()
    x = Value(9.0)
    y = sqrt(x)
    y.backward()
    assert answer["nodes"] == [{"id": "x", "data": 9.0, "grad": x.grad}, {"id": "y", "data": y.data, "grad": 1}]
    assert answer["nodes"][0]["grad"] == 1 / 6

    refused = client.post("/v1/evaluate", json={"nodes": [{**nodes[0], "data": -1.0}, nodes[1]]}).get_json()
    assert refused["errors"][0]["message"] == "sqrt(-1.0): sqrt is defined only for numbers >= 0."

    arity = client.post("/v1/evaluate", json={"nodes": [nodes[0], {**nodes[1], "children": ["x", "x"]}]}).get_json()
    assert arity["errors"][0]["message"] == "sqrt takes 1 children, not 2."

    shapes = build_spec().to_dict()["components"]["schemas"]
    assert any(schema.get("properties", {}).get("op", {}).get("enum") == ["sqrt"] for schema in shapes.values())


def test_without_the_entry_the_op_is_unknown(make_app):
    client = make_app().test_client()
    nodes = [{"id": "x", "data": 9.0}, {"id": "y", "op": "sqrt", "children": ["x"]}]
    message = client.post("/v1/evaluate", json={"nodes": nodes}).get_json()["errors"][0]["message"]
    assert message.startswith("Unknown op 'sqrt'; one of: add, mul,")
