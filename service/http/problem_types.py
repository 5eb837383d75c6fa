"""Every problem type the service answers, explained once: its title, when it happens, what to do, and
an example. The code that raises a problem takes its title from here; the page at each type's URI
(`/problems/<name>`, service/http/routes/pages.py) and the spec's description (tools/openapi.py) read
the rest. tests/test_problem_types.py keeps every `/problems/...` the service names in this table and
every example answering as printed.

The texts may mark code with backquotes, as the docs do; the pages show it as code.
"""

from dataclasses import dataclass, field

from service.contract.examples import EXAMPLE_GRAPH

#: The request id the examples send, so that their answers are printed whole.
EXAMPLE_REQUEST_ID = "example"


@dataclass(frozen=True)
class Example:
    """A request that meets the problem (POSTed with X-Request-ID: example, to a service started with
    `settings`, environment variables) and the service's answer to it; or, where no small request can
    meet it (`path` None), the answer alone."""

    path: str | None
    body: dict | str | None
    answer: dict
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ProblemType:
    name: str
    title: str
    statuses: tuple[int, ...]
    when: str
    what_to_do: str
    example: Example | None = None
    #: A title for one status that differs from `title`.
    titles: dict[int, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"/problems/{self.name}"


def _problem(name: str, title: str, status: int, detail: str, **extra) -> dict:
    """An example answer, as the service writes it."""
    return {
        "type": f"/problems/{name}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
        "request_id": EXAMPLE_REQUEST_ID,
    }


_MUL_GRAPH = {"nodes": [*EXAMPLE_GRAPH["nodes"][:2], {"id": "c", "op": "mul", "children": ["a", "b"]}]}

PROBLEM_TYPES: dict[str, ProblemType] = {
    problem.name: problem
    for problem in (
        ProblemType(
            "invalid-json",
            "The body is not valid JSON",
            (400,),
            "The body of a POST is not JSON the service can read: not UTF-8, a syntax error (a missing "
            "bracket, a trailing comma, single quotes), `NaN` or `Infinity`, a number too large for a double, "
            "or nesting deeper than 1024 levels. `detail` quotes the parser, with the line and column.",
            "Check the JSON at the place `detail` names; a JSON library (`json.dumps`, `JSON.stringify`) "
            "writes valid JSON, and so does `curl -d @file.json` of a file that one wrote.",
            Example(
                "/v1/evaluate",
                '{"nodes": [',
                _problem(
                    "invalid-json",
                    "The body is not valid JSON",
                    400,
                    "unexpected end of data: line 1 column 12 (char 11).",
                ),
            ),
        ),
        ProblemType(
            "invalid-graph",
            "The graph is not valid",
            (422,),
            "The JSON is not a graph the service can evaluate: a missing, unknown or ill-typed field, an "
            "unknown op, the wrong number of children, pow without its `exponent`, a duplicate id, a child "
            "that names no node, a cycle, no single output, or more nodes than `VALUEGRAPH_MAX_NODES`. "
            "For `POST /v1/grade`, also a submission that names no node or gives the wrong number of local "
            "gradients.",
            "Read `errors`: each entry names the `node` (its id), its `index` in `nodes`, the `field` and "
            "what is wrong with it. Fix those nodes and send the graph again; the first 100 invalid nodes are "
            "listed one by one, the rest counted.",
            Example(
                "/v1/evaluate",
                {"nodes": [{"id": "x", "op": "log", "children": ["y"]}]},
                _problem(
                    "invalid-graph",
                    "The graph is not valid",
                    422,
                    "A child names no node.",
                    errors=[{"node": "x", "index": 0, "field": "children[0]", "message": "No node has the id 'y'."}],
                ),
            ),
        ),
        ProblemType(
            "numeric-error",
            "The graph cannot be evaluated in finite numbers",
            (422,),
            "The graph is valid but a number leaves the finite doubles: log of a number ≤ 0, exp of a large "
            "number, 0 to a negative power, a negative number to a fractional power, division by zero, or a "
            "value or gradient that overflows. The reference `Value` class would compute an infinity or NaN, "
            "or raise; the service refuses instead.",
            "The entry in `errors` names the node, its `op` and the `inputs` it received: change the inputs "
            "(or the expression) so that the op is defined there.",
            Example(
                "/v1/evaluate",
                {"nodes": [{"id": "a", "data": 0.0}, {"id": "b", "op": "log", "children": ["a"]}]},
                _problem(
                    "numeric-error",
                    "The graph cannot be evaluated in finite numbers",
                    422,
                    "A node's value is not a finite number.",
                    errors=[
                        {
                            "node": "b",
                            "index": 1,
                            "field": None,
                            "message": "log(0.0): log is defined only for numbers > 0.",
                            "op": "log",
                            "inputs": [0.0],
                        }
                    ],
                ),
            ),
        ),
        ProblemType(
            "invalid-expression",
            "The expression is not valid",
            (422,),
            "`POST /v1/expression` got a formula it does not take: not Python's syntax, something outside "
            "numbers, the inputs' names, `+ - * / **`, unary `-` and `log`, `exp`, `relu` (attribute access, "
            "other calls, comparisons), a name with no value in `inputs`, or a formula longer than "
            "`VALUEGRAPH_MAX_EXPRESSION_LENGTH` or building more than `VALUEGRAPH_MAX_EXPRESSION_NODES` nodes.",
            "Each entry in `errors` gives the `column` (1-based) and the `text` at fault: rewrite that part, "
            "or give the missing input its value.",
            Example(
                "/v1/expression",
                {"expression": "log(a) + c", "inputs": {"a": 2.0}},
                _problem(
                    "invalid-expression",
                    "The expression is not valid",
                    422,
                    "'c' is not an input: give its value in inputs.",
                    errors=[
                        {
                            "field": "expression",
                            "message": "'c' is not an input: give its value in inputs.",
                            "column": 10,
                            "text": "c",
                        }
                    ],
                ),
            ),
        ),
        ProblemType(
            "invalid-parameter",
            "A query parameter is not valid",
            (400,),
            "A query parameter has a value the route does not take, such as a picture `format` that "
            "`POST /v1/render` does not draw.",
            "Use one of the values `errors` lists for that parameter (the contract, `/openapi.yaml`, lists them too).",
            Example(
                "/v1/render?format=gif",
                {"nodes": [EXAMPLE_GRAPH["nodes"][0]]},
                _problem(
                    "invalid-parameter",
                    "A query parameter is not valid",
                    400,
                    "Must be one of: mermaid, dot, svg, json.",
                    errors=[{"field": "format", "message": "Must be one of: mermaid, dot, svg, json."}],
                ),
            ),
        ),
        ProblemType(
            "graph-too-large-to-draw",
            "The graph is too large to draw",
            (422,),
            "`POST /v1/render` draws at most `VALUEGRAPH_MAX_RENDER_NODES` nodes and "
            "`VALUEGRAPH_MAX_RENDER_EDGES` edges: a picture of thousands of nodes helps nobody. A Mermaid "
            "picture is also refused past what Mermaid itself draws (500 edges, 50,000 characters), and an "
            "SVG one when Graphviz runs past `VALUEGRAPH_GRAPHVIZ_SECONDS` or "
            "`VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES`.",
            "Draw a part of the graph (the nodes around the one you care about), ask for `format=svg` or "
            "`format=dot` where Mermaid refuses, or evaluate it with `POST /v1/evaluate`, which takes far "
            "larger graphs.",
            Example(
                "/v1/render",
                _MUL_GRAPH,
                _problem(
                    "graph-too-large-to-draw",
                    "The graph is too large to draw",
                    422,
                    "A picture is drawn of at most 2 nodes (VALUEGRAPH_MAX_RENDER_NODES); this graph has 3.",
                    errors=[
                        {
                            "field": "nodes",
                            "message": "A picture is drawn of at most 2 nodes (VALUEGRAPH_MAX_RENDER_NODES); "
                            "this graph has 3.",
                        }
                    ],
                ),
                settings={"VALUEGRAPH_MAX_RENDER_NODES": 2},
            ),
        ),
        ProblemType(
            "format-unavailable",
            "This format is not available here",
            (406,),
            "`POST /v1/render?format=svg` asks Graphviz's `dot` to draw the picture, and `dot` is not "
            "installed where this service runs (the Docker image installs it).",
            "Ask for `format=dot` and draw it yourself (`dot -Tsvg`), or for `format=mermaid` or "
            "`format=json`; or ask the operator to install Graphviz.",
            Example(
                None,
                None,
                _problem(
                    "format-unavailable",
                    "This format is not available here",
                    406,
                    "SVG pictures are drawn by Graphviz's dot, which is not installed where this service runs. "
                    "format=mermaid and format=dot answer the picture as text (`dot -Tsvg` draws the latter); "
                    "format=json gives its content.",
                    errors=[
                        {
                            "field": "format",
                            "message": "SVG pictures are drawn by Graphviz's dot, which is not installed where "
                            "this service runs. format=mermaid and format=dot answer the picture as text "
                            "(`dot -Tsvg` draws the latter); format=json gives its content.",
                        }
                    ],
                ),
            ),
        ),
        ProblemType(
            "drawing-failed",
            "Graphviz could not draw the graph",
            (503,),
            "Graphviz's `dot` was installed but failed while drawing an SVG picture (it crashed or "
            "answered something that is not a picture).",
            "Ask for `format=dot` and draw it yourself, or try again; the service's log says why `dot` failed.",
            Example(
                None,
                None,
                _problem(
                    "drawing-failed",
                    "Graphviz could not draw the graph",
                    503,
                    "Graphviz's dot failed (dot exited with status 1); format=dot answers the picture's text.",
                ),
            ),
        ),
        ProblemType(
            "invalid-batch",
            "The batch is not valid",
            (422,),
            'A batch\'s envelope is wrong: not `{"graphs": [...]}`, no graphs, more than '
            "`VALUEGRAPH_MAX_BATCH_GRAPHS` graphs or `VALUEGRAPH_MAX_BATCH_NODES` nodes in all. An invalid "
            "graph inside a valid batch is not this problem: it is answered in its own result.",
            "Send one to `VALUEGRAPH_MAX_BATCH_GRAPHS` graphs in the `graphs` list, or split a large batch "
            "into several.",
            Example(
                "/v1/evaluate/batch",
                {"graphs": []},
                _problem(
                    "invalid-batch",
                    "The batch is not valid",
                    422,
                    "1 problem found; see errors.",
                    errors=[{"field": "graphs", "message": "Shorter than minimum length 1."}],
                ),
            ),
        ),
        ProblemType(
            "over-memory-budget",
            "The request needs more memory than a worker may use",
            (413, 503),
            "Each worker holds the requests in progress within a memory budget, "
            "`VALUEGRAPH_MEMORY_BUDGET_BYTES`. A body so large that evaluating it could never fit is "
            "refused with 413 before it is read. A body that fits, but not beside the requests in progress, "
            "is refused with 503 (title: The service is busy) and a `Retry-After` header.",
            "On 413, send a smaller graph (or ask the operator for a larger budget). On 503, wait the "
            "seconds `Retry-After` says and send it again, here or to another replica.",
            Example(
                "/v1/evaluate",
                _MUL_GRAPH,
                _problem(
                    "over-memory-budget",
                    "The request needs more memory than a worker may use",
                    413,
                    "A body this large may need up to 4,290 bytes of memory to evaluate; a worker's budget is "
                    "1,000 bytes (VALUEGRAPH_MEMORY_BUDGET_BYTES). Send a smaller graph.",
                ),
                settings={"VALUEGRAPH_MEMORY_BUDGET_BYTES": 1000},
            ),
            titles={503: "The service is busy"},
        ),
        ProblemType(
            "deadline-exceeded",
            "The evaluation took too long",
            (504,),
            "The evaluation ran past `VALUEGRAPH_DEADLINE_SECONDS` and was stopped; the "
            "worker goes on serving. It is a 504, not a 503: the same graph would take as long on another "
            "replica, so a proxy should not retry it.",
            "Send a smaller graph, or split the work (a batch answers each graph on its own); an operator "
            "can raise the deadline.",
            Example(
                None,
                None,
                _problem(
                    "deadline-exceeded",
                    "The evaluation took too long",
                    504,
                    "The evaluation ran past the deadline of 60 seconds (VALUEGRAPH_DEADLINE_SECONDS) and was stopped.",
                ),
            ),
        ),
    )
}


def title(name: str, status: int | None = None) -> str:
    """The title of the problem type `name` (answered with `status`): a problem's wording is made from this table."""
    problem = PROBLEM_TYPES[name]
    return problem.titles.get(status, problem.title)
