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
    400: "The body is not JSON: not UTF-8, a syntax error, NaN or Infinity, a number too large for a double, or nesting over 1024 levels; or its chunked framing is malformed.",
    405: "The method is not allowed here; the `Allow` header lists those that are.",
    408: "The client sent its request slower than VALUEGRAPH_CLIENT_MIN_BYTES_PER_SECOND after VALUEGRAPH_CLIENT_GRACE_SECONDS; the connection is closed.",
    413: "The body is larger than VALUEGRAPH_MAX_BODY_BYTES.",
    415: "The body is not `application/json`, or has a Content-Encoding other than identity.",
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
    add_options(spec)
    return spec


def add_options(spec):
    """OPTIONS on every path: 204 with the methods allowed there in `Allow`, no body."""
    for path, operations in list(spec._paths.items()):
        methods = sorted(
            {method.upper() for method in operations} | {"OPTIONS"} | ({"HEAD"} if "get" in operations else set())
        )
        spec.path(
            path=path,
            operations={
                "options": {
                    "summary": f"The methods allowed on {path}: {', '.join(methods)}.",
                    "operationId": "options_" + path.strip("/").replace(".", "_").replace("/", "_"),
                    "responses": {
                        204: {
                            "description": "No body; `Allow` lists the methods allowed here.",
                            "headers": {
                                "Allow": {"description": "The methods allowed here.", "schema": {"type": "string"}}
                            },
                        }
                    },
                }
            },
        )


if __name__ == "__main__":
    print(build_spec().to_yaml(), end="")
