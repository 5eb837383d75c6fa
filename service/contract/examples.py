"""The examples the spec, the docs and the tests show: the reference class's own example graph, a
graded submission of it, and the same graph as a formula."""

#: The example of the reference `Value` class: a = 2, b = 3, c = a + b, d = c · a, e = ln d.
EXAMPLE_GRAPH = {
    "nodes": [
        {"id": "a", "op": "value", "data": 2.0},
        {"id": "b", "op": "value", "data": 3.0},
        {"id": "c", "op": "add", "children": ["a", "b"]},
        {"id": "d", "op": "mul", "children": ["c", "a"]},
        {"id": "e", "op": "log", "children": ["d"]},
    ]
}

#: The example graded: a student's a.grad is 0.2, d's contribution dropped (`=` for `+=`).
GRADE_EXAMPLE = {**EXAMPLE_GRAPH, "submitted": [{"id": "a", "data": 2.0, "grad": 0.2}, {"id": "e", "grad": 1.0}]}

#: The example as a formula, for POST /v1/expression.
EXPRESSION_EXAMPLE = {"expression": "log((a + b) * a)", "inputs": {"a": 2.0, "b": 3.0}}
