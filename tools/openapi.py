"""openapi.yaml, generated from the marshmallow schemas, the op registry and the settings table:
`python -m tools.openapi > openapi.yaml` (`make openapi`).

tests/test_openapi.py fails when the committed file differs from what this prints, or when the app has
a route or a status this spec does not list.
"""

import copy
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import fields

from service.contract import graph
from service.contract.batch import BatchRequestSchema, EvaluateBatchSchema, GradeBatchSchema
from service.contract.examples import EXAMPLE_GRAPH, EXPRESSION_EXAMPLE, GRADE_EXAMPLE
from service.contract.expression import ExpressionEvaluationSchema, ExpressionProblemSchema, ExpressionRequestSchema
from service.contract.grade import GradeRequestSchema, GradeSchema
from service.contract.graph import (
    EvaluationSchema,
    GraphRequestSchema,
    LeafNodeSchema,
    OperationNodeSchema,
    RecordedNodeSchema,
)
from service.contract.problem import ProblemSchema
from service.contract.render import PictureSchema, RenderQuerySchema
from service.contract.status import StatusSchema
from service.core import expression, graphs, render
from service.core.dot import dot
from service.core.grading import grade
from service.core.mermaid import mermaid
from service.core.ops import OPS
from service.http.problem_types import PROBLEM_TYPES
from service.runtime.config import (
    CLIENT_GRACE_SECONDS,
    CLIENT_MIN_RATE,
    DEADLINE_SECONDS,
    MAX_BATCH_GRAPHS,
    MAX_BATCH_NODES,
    MAX_BODY_BYTES,
    MAX_NODES,
    MAX_RENDER_EDGES,
    MAX_RENDER_NODES,
    MEMORY_BUDGET_BYTES,
)
from tools.openapi_observability import ObservabilityPlugin
from tools.openapi_pages import add_pages

#: 3.0.3 rather than 3.1: in 3.1 (JSON Schema 2020-12) `2.0` is an integer, which the service refuses as
#: an id; 3.0.3's `type: integer` refuses it too. openapi-python-client, Prism and schemathesis handle
#: 3.0.3 fully (README, "The contract, in short").
OPENAPI_VERSION = "3.0.3"

#: The integers the service's JSON parser reads as integers; any other integer is read as a double,
#: which is not an id.
ID_INTEGER_RANGE = (-(2**63), 2**64 - 1)


def id_schema() -> dict:
    return {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": graph.ID_MAX_LENGTH},
            {"type": "integer", "minimum": ID_INTEGER_RANGE[0], "maximum": ID_INTEGER_RANGE[1]},
        ]
    }


GRAPH_RULES = (
    "ids are unique; every child, and `output` when given, is the id of a node of the request; "
    "the graph has no cycle; without `output`, exactly one node is used by no other node, and it is the output; "
    "a recorded node has one `local_grads` entry per child; "
    "every node's data and local gradients are finite doubles (else `/problems/numeric-error`)"
)

DESCRIPTION = "\n\n".join(
    [
        "POST a computation graph; valuegraph rebuilds it as scalar autograd `Value` nodes, runs the forward "
        "pass and the backward pass from one output node, and answers with every node's `data` and `grad`.",
        "Numbers are IEEE 754 doubles. Every error is RFC 9457 problem details (`application/problem+json`); "
        "a 422 carries `errors`, one entry per problem, naming the node (`node`, `index`) and the `field`. "
        "Problem types, each a page at its URI that says when it happens and what to do: "
        + ", ".join(f"`{problem.uri}` ({', '.join(map(str, problem.statuses))})" for problem in PROBLEM_TYPES.values())
        + "; and `about:blank` where the HTTP status says it all.",
        "A node has one of the shapes in `GraphRequest.nodes`: a leaf, a recorded node, or one shape per op "
        "with exactly the op's number of children (and pow's exponent). The shapes exclude one another. "
        f"What the schema cannot state, the service checks and answers with a 422: {GRAPH_RULES}.",
        f"Limits, set by environment variables: the body, `{MAX_BODY_BYTES.variable}` (default "
        f"{MAX_BODY_BYTES.default} bytes; over it, 413); the nodes of one graph, `{MAX_NODES.variable}` "
        f"(default {MAX_NODES.default}; over it, 422); the time of one evaluation, `{DEADLINE_SECONDS.variable}` "
        f"(default {DEADLINE_SECONDS.default} s; past it, 504); the memory a worker's requests may hold at once, "
        f"`{MEMORY_BUDGET_BYTES.variable}` (default: from the machine's or container's memory; a body that could "
        "never fit, 413; one that does not fit now, 503 with `Retry-After`).",
        "Any path not listed here answers 404 as a problem (type `about:blank`); a method a path does not take "
        "answers 405, with an `Allow` header; any route can answer 500 if the server fails.",
        "Grading and batches: `POST /v1/grade` compares a submission with the reference node by node and names "
        "its root causes; `POST /v1/evaluate/batch` and `POST /v1/grade/batch` answer many requests at once, each "
        f"on its own. A batch's limits: `{MAX_BATCH_GRAPHS.variable}` graphs (default {MAX_BATCH_GRAPHS.default}) "
        f"and `{MAX_BATCH_NODES.variable}` nodes in all (default {MAX_BATCH_NODES.default}); over them, or a body "
        'that is not `{"graphs": [...]}`, 422 `/problems/invalid-batch`.',
        "Every answer carries `X-Request-ID` (the request's own when acceptable, else a new one), as does every "
        "problem (`request_id`); evaluations carry `Server-Timing`. Started with bearer tokens (`VALUEGRAPH_TOKENS`, "
        "`VALUEGRAPH_TOKENS_FILE`), the service answers 401 without a valid `Authorization: Bearer TOKEN`, except "
        "on the health probes, this contract and the pages for people (`/`, `/docs`, `/playground`, `/problems/...`).",
    ]
)

EVALUATE_PROBLEMS = {
    400: "The body is not JSON: not UTF-8, a syntax error, NaN or Infinity, a number too large for a double, or "
    "nesting over 1024 levels; or its chunked framing is malformed.",
    408: f"The client sent its request slower than `{CLIENT_MIN_RATE.variable}`, or stalled for longer than "
    f"`{CLIENT_GRACE_SECONDS.variable}`; the connection is closed.",
    413: f"The body is larger than `{MAX_BODY_BYTES.variable}` (default {MAX_BODY_BYTES.default} bytes), or a body "
    f"this large could need more memory than a worker's budget, `{MEMORY_BUDGET_BYTES.variable}`, allows "
    "(`/problems/over-memory-budget`).",
    415: "The body is not `application/json`, has a charset other than UTF-8 (JSON is UTF-8, RFC 8259), or has a "
    "Content-Encoding other than identity.",
    422: "The JSON is not a valid graph (`/problems/invalid-graph`), or the graph leaves the finite doubles (`/problems/numeric-error`).",
    503: "The requests in progress hold the worker's memory budget (`/problems/over-memory-budget`, with "
    "`Retry-After`): retry shortly, here or on another replica.",
    504: f"The evaluation ran past `{DEADLINE_SECONDS.variable}` and was stopped (`/problems/deadline-exceeded`). "
    "A 504, not a 503: the graph would take as long on another replica, so a proxy should not retry it.",
}

#: Answers any route can give, whatever its operation: a method the path does not take, a failure.
#: 404, for a path the app does not have, belongs to no operation: it is a component, and in the text.
ANY_ROUTE_PROBLEMS = {
    405: ("MethodNotAllowed", "The method is not allowed here; the `Allow` header lists those that are."),
    500: ("InternalServerError", "The server failed; the error is logged."),
}
NOT_FOUND = (404, "NotFound", "No such path.")


GRADE_PROBLEMS = {
    **EVALUATE_PROBLEMS,
    422: "The JSON is not a valid grade request, or the graph is not valid (`/problems/invalid-graph`: also a "
    "submitted id that names no node, a duplicate submitted id, local_grads of the wrong length or for a leaf, a "
    "negative tolerance), or the graph leaves the finite doubles (`/problems/numeric-error`).",
}
BATCH_PROBLEMS = {
    **EVALUATE_PROBLEMS,
    422: f'The envelope is not `{{"graphs": [...]}}` with 1 to {MAX_BATCH_GRAPHS.variable} items and at most '
    f"{MAX_BATCH_NODES.variable} nodes in all (`/problems/invalid-batch`). An invalid item is answered in its own "
    "result, never here.",
}


def operation_shape_name(op_name: str) -> str:
    return f"{op_name.capitalize()}Node"


def operation_shapes(operation_node: dict) -> dict[str, dict]:
    """One schema per op of the registry, made from OperationNodeSchema's: the op's name, exactly its
    arity of children, and the exponent required by an op that takes one and absent from the others."""
    shapes = {}
    for name, op in OPS.items():
        properties = {
            **copy.deepcopy(operation_node["properties"]),
            "op": {"type": "string", "enum": [name]},
            "children": {
                **copy.deepcopy(operation_node["properties"]["children"]),
                "minItems": op.arity,
                "maxItems": op.arity,
                "description": f"The ids of {name}'s {op.arity} operand{'s' if op.arity > 1 else ''}, in order.",
            },
        }
        required = ["children", "id", "op"]
        if op.takes_exponent:
            required.append("exponent")
        else:
            del properties["exponent"]
        shapes[operation_shape_name(name)] = {
            "type": "object",
            "description": f"A node the service computes: {name}.",
            "properties": properties,
            "required": sorted(required),
            "additionalProperties": False,
        }
    return shapes


def node_shape_names() -> list[str]:
    """The node shapes, the leaf last. Validators find exactly one match whatever the order, but a
    recorded node has every key a leaf requires, and a generated client that tries each shape in turn
    and ignores additionalProperties (openapi-python-client) would read it as a leaf, dropping its
    children and local_grads."""
    return ["RecordedNode", *map(operation_shape_name, OPS), "LeafNode"]


def field_to_schema(self, field: fields.Field, **kwargs) -> dict:
    """A Node field is one of the node shapes; an Id, a bounded string or an integer the parser keeps."""
    if isinstance(field, graph.Node):
        return {"oneOf": [{"$ref": f"#/components/schemas/{name}"} for name in node_shape_names()]}
    if isinstance(field, graph.Id):
        return id_schema()
    return {}


def problem_response(description: str, *, status: int | None = None) -> dict:
    """A problem+json response; a 405 has the Allow header, a 503 may have Retry-After."""
    response = {"description": description, "content": {"application/problem+json": {"schema": "Problem"}}}
    if status == 405:
        response["headers"] = {"Allow": {"description": "The methods allowed here.", "schema": {"type": "string"}}}
    if status == 503:
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before retrying, when busy.", "schema": {"type": "string"}}
        }
    return response


def media_type(body: str | tuple[str, dict]) -> dict:
    """A response's content: a component's name, as JSON, or a (media type, schema) pair."""
    media, schema = ("application/json", body) if isinstance(body, str) else body
    return {media: {"schema": copy.deepcopy(schema)}}


def build_spec() -> APISpec:
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="valuegraph",
        version="1.0.0",
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin, ObservabilityPlugin()],
        info={"description": DESCRIPTION},
    )
    plugin.converter.add_attribute_function(field_to_schema)
    spec.components.schema("LeafNode", {"description": LeafNodeSchema.__doc__}, schema=LeafNodeSchema)
    for name, shape in operation_shapes(plugin.converter.schema2jsonschema(OperationNodeSchema)).items():
        spec.components.schema(name, shape)
    spec.components.schema("RecordedNode", {"description": RecordedNodeSchema.__doc__}, schema=RecordedNodeSchema)
    for name, schema in [
        ("GraphRequest", GraphRequestSchema),
        ("Evaluation", EvaluationSchema),
        ("Problem", ProblemSchema),
        ("Status", StatusSchema),
        ("GradeRequest", GradeRequestSchema),
        ("Grade", GradeSchema),
        ("BatchRequest", BatchRequestSchema),
        ("EvaluateBatch", EvaluateBatchSchema),
        ("GradeBatch", GradeBatchSchema),
    ]:
        spec.components.schema(name, schema=schema)
    spec.components.response(NOT_FOUND[1], problem_response(NOT_FOUND[2]))
    for status, (name, description) in ANY_ROUTE_PROBLEMS.items():
        spec.components.response(name, problem_response(description, status=status))
    any_route = {
        status: problem_response(description, status=status)
        for status, (name, description) in ANY_ROUTE_PROBLEMS.items()
    }
    spec.path(
        path="/v1/evaluate",
        operations={
            "post": {
                "summary": "Evaluate a graph: every node's data, and its grad from the output's backward pass.",
                "operationId": "evaluate",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "GraphRequest", "example": EXAMPLE_GRAPH}},
                },
                "responses": {
                    200: {
                        "description": "Every node of the request, in request order, with its data and grad.",
                        "content": {"application/json": {"schema": "Evaluation"}},
                    },
                    **{status: problem_response(text, status=status) for status, text in EVALUATE_PROBLEMS.items()},
                    **any_route,
                },
            }
        },
    )
    add_expression_and_render(spec)
    add_grading_paths(spec, any_route)
    for path, summary, responses in [
        ("/healthz", "Liveness: the process answers.", {200: "Status"}),
        (
            "/readyz",
            "Readiness: the contract is loaded and the engine differentiates.",
            {200: "Status", 503: "Status"},
        ),
        ("/openapi.yaml", "This contract, as YAML.", {200: ("application/yaml", {"type": "string"})}),
        ("/openapi.json", "This contract, as JSON.", {200: ("application/json", {"type": "object"})}),
        (
            "/metrics",
            "Prometheus metrics, all workers' together (text format 0.0.4).",
            {200: ("text/plain", {"type": "string"})},
        ),
    ]:
        descriptions = {200: summary, 503: "Not ready: the engine's check failed."}
        spec.path(
            path=path,
            operations={
                "get": {
                    "summary": summary,
                    "operationId": path.strip("/").replace(".", "_"),
                    "responses": {
                        **{
                            status: {"description": descriptions[status], "content": media_type(content)}
                            for status, content in responses.items()
                        },
                        **any_route,
                    },
                }
            },
        )
    add_pages(spec, any_route)
    add_options(spec)
    return spec


def add_expression_and_render(spec):
    """POST /v1/expression and POST /v1/render (service/contract/expression.py, service/contract/render.py)."""
    for name, schema in [
        ("ExpressionRequest", ExpressionRequestSchema),
        ("ExpressionEvaluation", ExpressionEvaluationSchema),
        ("ExpressionProblem", ExpressionProblemSchema),
    ]:
        spec.components.schema(name, schema=schema)
    any_route = {
        status: problem_response(description, status=status)
        for status, (name, description) in ANY_ROUTE_PROBLEMS.items()
    }
    expression_problems = {
        **{status: problem_response(text, status=status) for status, text in EVALUATE_PROBLEMS.items()},
        422: {
            "description": "The request or the expression is not valid (`/problems/invalid-expression`: each "
            "error gives the `column` and the `text` there), or its value leaves the finite doubles "
            "(`/problems/numeric-error`).",
            "content": {"application/problem+json": {"schema": "ExpressionProblem"}},
        },
    }
    spec.path(
        path="/v1/expression",
        operations={
            "post": {
                "summary": "Differentiate a formula: its value, each input's grad, and every node it builds.",
                "operationId": "expression",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "ExpressionRequest", "example": EXPRESSION_EXAMPLE}},
                },
                "responses": {
                    200: {
                        "description": "The output's data, every input's grad, and every node built, as by /v1/evaluate.",
                        "content": {
                            "application/json": {
                                "schema": "ExpressionEvaluation",
                                "example": _example_expression(EXPRESSION_EXAMPLE),
                            }
                        },
                    },
                    **expression_problems,
                    **any_route,
                },
            }
        },
    )
    spec.components.schema("Picture", schema=PictureSchema)
    picture_examples = {
        media_type: {"schema": {"type": "string"}, "example": _example_picture(format)}
        for format, media_type in render.MEDIA_TYPES.items()
        if format in ("mermaid", "dot")
    }
    spec.path(
        path="/v1/render",
        operations={
            "post": {
                "summary": "Draw an evaluated graph: Mermaid, Graphviz dot, SVG, or the picture's content as JSON.",
                "description": "Each node shows its name (its `label`, else its id), how it is computed, its data and "
                "its grad; leaves (inputs), parameters (leaves with a label), ops and recorded nodes are drawn "
                "differently, and the output with a thick border. Arrows point from a child to the node that uses "
                "it; each edge is labelled with backward quantities: the local gradient d(node)/d(child) and the "
                "gradient the backward pass sent back along it (a child's add up to its grad). A legend says so. "
                f"At most VALUEGRAPH_MAX_RENDER_NODES nodes (default {MAX_RENDER_NODES.default}) and "
                f"VALUEGRAPH_MAX_RENDER_EDGES edges (default {MAX_RENDER_EDGES.default}); over them, 422 "
                "`/problems/graph-too-large-to-draw`, as is a Mermaid picture Mermaid itself would refuse (over 500 "
                "edges or 50000 characters).",
                "operationId": "render",
                "parameters": [{"in": "query", "schema": RenderQuerySchema}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": "GraphRequest", "example": EXAMPLE_GRAPH}},
                },
                "responses": {
                    200: {
                        "description": "The picture, in the format asked: Mermaid or dot text, Graphviz's SVG, or "
                        "its content as JSON.",
                        "content": {
                            **picture_examples,
                            render.MEDIA_TYPES["svg"]: {"schema": {"type": "string"}},
                            render.MEDIA_TYPES["json"]: {
                                "schema": "Picture",
                                "example": render.as_json(_example_drawing()),
                            },
                        },
                    },
                    **{
                        status: problem_response(text, status=status)
                        for status, text in {
                            **EVALUATE_PROBLEMS,
                            400: EVALUATE_PROBLEMS[400]
                            + " Or `format` or `precision` is not one the query allows (`/problems/invalid-parameter`).",
                            406: "format=svg where Graphviz is not installed (`/problems/format-unavailable`); the "
                            "other formats are.",
                            422: EVALUATE_PROBLEMS[422]
                            + " Or the graph has more nodes or edges than a picture is drawn of, Mermaid would "
                            "refuse its picture, or Graphviz did not draw it within VALUEGRAPH_GRAPHVIZ_SECONDS or "
                            "VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES (`/problems/graph-too-large-to-draw`).",
                            503: EVALUATE_PROBLEMS[503]
                            + " Or Graphviz failed to draw the picture (`/problems/drawing-failed`).",
                        }.items()
                    },
                    **any_route,
                },
            }
        },
    )


def _example_expression(request):
    return expression.evaluate(request["expression"], request["inputs"], 10_000, 10_000)


def _example_drawing():
    output, values = graphs.evaluate(EXAMPLE_GRAPH["nodes"])
    return render.picture(EXAMPLE_GRAPH["nodes"], output, values)


def _example_picture(format):
    write = {"mermaid": mermaid, "dot": dot}[format]
    return write(_example_drawing(), render.DEFAULT_PRECISION)


def add_grading_paths(spec: APISpec, any_route: dict) -> None:
    """POST /v1/grade, /v1/evaluate/batch and /v1/grade/batch."""
    invalid_item = {"nodes": [{"id": "x", "op": "log", "children": ["y"]}]}
    for path, operation_id, summary, request, example, answer, answer_text, problems in [
        (
            "/v1/grade",
            "grade",
            "Grade a submission node by node against the reference, and name the root causes of its mismatches.",
            "GradeRequest",
            GRADE_EXAMPLE,
            "Grade",
            "Every node with its reference values and verdicts, the score, and the root causes, children first.",
            GRADE_PROBLEMS,
        ),
        (
            "/v1/evaluate/batch",
            "evaluateBatch",
            "Evaluate many graphs, each on its own, as /v1/evaluate would.",
            "BatchRequest",
            {"graphs": [EXAMPLE_GRAPH, invalid_item]},
            "EvaluateBatch",
            "One result per graph, in request order: its status and its evaluation or problem.",
            BATCH_PROBLEMS,
        ),
        (
            "/v1/grade/batch",
            "gradeBatch",
            "Grade many submissions, each on its own, as /v1/grade would.",
            "BatchRequest",
            {"graphs": [GRADE_EXAMPLE, {**invalid_item, "submitted": []}]},
            "GradeBatch",
            "One result per grade request, in request order: its status and its grade or problem.",
            BATCH_PROBLEMS,
        ),
    ]:
        content = {"schema": answer, **({"example": graded_example()} if path == "/v1/grade" else {})}
        spec.path(
            path=path,
            operations={
                "post": {
                    "summary": summary,
                    "operationId": operation_id,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request, "example": example}},
                    },
                    "responses": {
                        200: {"description": answer_text, "content": {"application/json": content}},
                        **{status: problem_response(text, status=status) for status, text in problems.items()},
                        **any_route,
                    },
                }
            },
        )


def add_options(spec):
    """OPTIONS on every path: 204 with the methods allowed there in `Allow`, no body."""
    for path, operations in list(spec._paths.items()):
        methods = sorted(
            {method.upper() for method in operations} | {"OPTIONS"} | ({"HEAD"} if "get" in operations else set())
        )
        # OPTIONS answers for any value of a path's parameters, whatever the path's other methods take.
        path_parameters = {
            parameter["name"]: {**parameter, "schema": {"type": "string"}}
            for operation in operations.values()
            for parameter in operation.get("parameters", ())
            if isinstance(parameter, dict) and parameter.get("in") == "path"
        }
        name = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "index"
        spec.path(
            path=path,
            operations={
                "options": {
                    "summary": f"The methods allowed on {path}: {', '.join(methods)}.",
                    "operationId": f"options_{name}",
                    **({"parameters": list(path_parameters.values())} if path_parameters else {}),
                    "responses": {
                        204: {
                            "description": "No body; `Allow` lists the methods allowed here.",
                            "headers": {
                                "Allow": {"description": "The methods allowed here.", "schema": {"type": "string"}}
                            },
                        },
                        500: problem_response(ANY_ROUTE_PROBLEMS[500][1], status=500),
                    },
                }
            },
        )


def graded_example() -> dict:
    """What the service answers to GRADE_EXAMPLE, computed by the engine and the grader themselves."""
    nodes = GRADE_EXAMPLE["nodes"]
    output, values = graphs.evaluate(nodes)
    return grade(nodes, output, values, GRADE_EXAMPLE["submitted"])


if __name__ == "__main__":
    print(build_spec().to_yaml(), end="")
