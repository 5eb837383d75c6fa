"""openapi.yaml, generated from the marshmallow schemas: `python -m schemas.openapi > openapi.yaml`.

tests/test_openapi.py fails when the committed file differs from what this prints.
"""

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from schemas import graph
from schemas.graph import EvaluationSchema, GraphRequestSchema, LeafNodeSchema, OperationNodeSchema, RecordedNodeSchema
from schemas.problem import ProblemSchema
from schemas.status import StatusSchema

DESCRIPTION = "\n\n".join(
    [
        "POST a computation graph; valuegraph rebuilds it as scalar autograd `Value` nodes, runs the forward "
        "pass and the backward pass from one output node, and answers with every node's `data` and `grad`.",
        "Numbers are IEEE 754 doubles. Every error is RFC 9457 problem details (`application/problem+json`); "
        "a 422 carries `errors`, one entry per problem, naming the node (`node`, `index`) and the `field`. "
        "Problem types: `/problems/invalid-json` (400), `/problems/invalid-graph` and `/problems/numeric-error` "
        "(422), and `about:blank` where the HTTP status says it all.",
        "Limits, set by environment variables: the body, `VALUEGRAPH_MAX_BODY_BYTES` (default 268435456 "
        "bytes; over it, 413); the nodes of one graph, `VALUEGRAPH_MAX_NODES` (default 1000000; over it, 422).",
    ]
)

PROBLEM_STATUSES = {
    400: "The body is not JSON: not UTF-8, a syntax error, NaN or Infinity, a number too large for a double, or nesting over 1024 levels.",
    405: "The method is not allowed here; the `Allow` header lists those that are.",
    413: "The body is larger than VALUEGRAPH_MAX_BODY_BYTES.",
    415: "The body is not `application/json`.",
    422: "The JSON is not a valid graph (`/problems/invalid-graph`), or the graph leaves the finite doubles (`/problems/numeric-error`).",
}

SEED_EXAMPLE = {
    "nodes": [
        {"id": "a", "op": "value", "data": 2.0},
        {"id": "b", "op": "value", "data": 3.0},
        {"id": "c", "op": "add", "children": ["a", "b"]},
        {"id": "d", "op": "mul", "children": ["c", "a"]},
        {"id": "e", "op": "log", "children": ["d"]},
    ]
}


def node_field_to_oneof(self, field, **kwargs):
    """The Node field is one of the three node schemas, chosen by the node's keys."""
    if isinstance(field, graph.Node):
        return {
            "oneOf": [
                {"$ref": f"#/components/schemas/{name}"} for name in ("LeafNode", "OperationNode", "RecordedNode")
            ]
        }
    if isinstance(field, graph.Id):
        return {"oneOf": [{"type": "string", "minLength": 1, "maxLength": graph.ID_MAX_LENGTH}, {"type": "integer"}]}
    return {}


def problem_response(status, description):
    response = {"description": description, "content": {"application/problem+json": {"schema": "Problem"}}}
    if status == 405:
        response["headers"] = {"Allow": {"description": "The methods allowed here.", "schema": {"type": "string"}}}
    return response


def build_spec():
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="valuegraph",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[plugin],
        info={"description": DESCRIPTION},
    )
    plugin.converter.add_attribute_function(node_field_to_oneof)
    for name, schema in [
        ("LeafNode", LeafNodeSchema),
        ("OperationNode", OperationNodeSchema),
        ("RecordedNode", RecordedNodeSchema),
        ("GraphRequest", GraphRequestSchema),
        ("Evaluation", EvaluationSchema),
        ("Problem", ProblemSchema),
        ("Status", StatusSchema),
    ]:
        spec.components.schema(name, schema=schema)
    spec.path(
        path="/v1/evaluate",
        operations={
            "post": {
                "summary": "Evaluate a graph: every node's data, and its grad from the output's backward pass.",
                "operationId": "evaluate",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "GraphRequest", "example": SEED_EXAMPLE}},
                },
                "responses": {
                    200: {
                        "description": "Every node of the request, in request order, with its data and grad.",
                        "content": {"application/json": {"schema": "Evaluation"}},
                    },
                    **{status: problem_response(status, text) for status, text in PROBLEM_STATUSES.items()},
                },
            }
        },
    )
    add_expression_and_render(spec)
    for path, summary, content, schema in [
        ("/healthz", "Liveness: the process answers.", "application/json", "Status"),
        ("/readyz", "Readiness: the contract is loaded and the engine differentiates.", "application/json", "Status"),
        ("/openapi.yaml", "This contract, as YAML.", "application/yaml", {"type": "object"}),
        ("/openapi.json", "This contract, as JSON.", "application/json", {"type": "object"}),
    ]:
        spec.path(
            path=path,
            operations={
                "get": {
                    "summary": summary,
                    "operationId": path.strip("/").replace(".", "_"),
                    "responses": {200: {"description": summary, "content": {content: {"schema": schema}}}},
                }
            },
        )
    return spec


def add_expression_and_render(spec):
    """POST /v1/expression and POST /v1/render (schemas/expression.py, schemas/render.py)."""
    from schemas.expression import (
        EXAMPLE_REQUEST,
        ExpressionEvaluationSchema,
        ExpressionProblemSchema,
        ExpressionRequestSchema,
    )
    from schemas.render import RenderQuerySchema
    from service.render import MEDIA_TYPES

    for name, schema in [
        ("ExpressionRequest", ExpressionRequestSchema),
        ("ExpressionEvaluation", ExpressionEvaluationSchema),
        ("ExpressionProblem", ExpressionProblemSchema),
    ]:
        spec.components.schema(name, schema=schema)
    expression_problems = {
        400: PROBLEM_STATUSES[400],
        413: PROBLEM_STATUSES[413],
        415: PROBLEM_STATUSES[415],
        422: "The request or the expression is not valid (`/problems/invalid-expression`: each error gives the "
        "`column` and the `text` there), or its value leaves the finite doubles (`/problems/numeric-error`).",
    }
    spec.path(
        path="/v1/expression",
        operations={
            "post": {
                "summary": "Differentiate a formula: its value, each input's grad, and every node it builds.",
                "operationId": "expression",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "ExpressionRequest", "example": EXAMPLE_REQUEST}},
                },
                "responses": {
                    200: {
                        "description": "The output's data, every input's grad, and every node built, as by /v1/evaluate.",
                        "content": {"application/json": {"schema": "ExpressionEvaluation"}},
                    },
                    **{
                        status: {
                            "description": text,
                            "content": {"application/problem+json": {"schema": "ExpressionProblem"}},
                        }
                        for status, text in expression_problems.items()
                    },
                },
            }
        },
    )
    spec.path(
        path="/v1/render",
        operations={
            "post": {
                "summary": "Draw an evaluated graph: Mermaid (flowchart BT, as the seed draws) or Graphviz dot.",
                "description": "Each node shows its id, how it is computed, its data and its grad; each edge, the "
                "gradient it carries from the node to the child (a child's edges add up to its grad); the output "
                "node is a rounded bold box. At most VALUEGRAPH_MAX_RENDER_NODES nodes (default 500); over it, 422 "
                "`/problems/graph-too-large-to-draw`.",
                "operationId": "render",
                "parameters": [{"in": "query", "schema": RenderQuerySchema}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "GraphRequest", "example": SEED_EXAMPLE}},
                },
                "responses": {
                    200: {
                        "description": "The picture's text, in the language asked for.",
                        "content": {
                            media_type: {"schema": {"type": "string"}, "example": _seed_picture(format)}
                            for format, media_type in MEDIA_TYPES.items()
                        },
                    },
                    **{
                        status: problem_response(status, text)
                        for status, text in {
                            **PROBLEM_STATUSES,
                            400: PROBLEM_STATUSES[400]
                            + " Or `format` is not mermaid or dot (`/problems/invalid-parameter`).",
                            422: PROBLEM_STATUSES[422]
                            + " Or the graph has more than VALUEGRAPH_MAX_RENDER_NODES nodes "
                            "(`/problems/graph-too-large-to-draw`).",
                        }.items()
                    },
                },
            }
        },
    )


def _seed_picture(format):
    from service import graph, render

    output, values = graph.evaluate(SEED_EXAMPLE["nodes"])
    return render.render(SEED_EXAMPLE["nodes"], output, values, format)


if __name__ == "__main__":
    print(build_spec().to_yaml(), end="")
