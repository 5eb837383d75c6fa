"""The soak's traffic (`python -m bench.soak`): a fixed mix of valid, invalid and hostile requests to every
endpoint, each with the answer it must get, and how one is sent and checked.

What each request must get is known before the soak starts (`expect`). The service's answers come from
this tree's app, made in this process (`create_app`, the same code the image runs) and asked through
Flask's test client: a 200 must come back byte for byte, a problem with the same status, type, detail
and entries (all but its request id). The answers nginx gives itself (413, 501, 414, 431, a 400 for what
it cannot read, 404 for /metrics), and SVG pictures (Graphviz measures text with the fonts of the
machine it runs on), are taken from the stack once, before the soak, checked for their status and
media type; every later answer must equal that one.
"""

import contextlib
import http.client
import io
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import orjson
import requests

from bench.slow_clients import large_graph
from bench.workloads import chain, random_dag, small_graph
from service.contract.examples import EXAMPLE_GRAPH, EXPRESSION_EXAMPLE, GRADE_EXAMPLE
from service.http.app import create_app
from service.runtime.config import MAX_BATCH_GRAPHS, MAX_EXPRESSION_LENGTH, MAX_RENDER_NODES, from_environment

JSON = (("Content-Type", "application/json"),)
PROBLEM = "application/problem+json"
#: Seconds to connect, and to wait for an answer: past the service's deadline (60 s) and nginx's margin.
TIMEOUTS = (5, 120)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Exchange:
    """One request of the mix. It is sent with requests (`body`, or `stream()` for a body made as it is
    sent, chunked), or as the bytes `raw(request_id)` on a connection of its own, for what no HTTP
    library would send (nginx answers all of those). `status` is the status it must get; its whole
    answer is the app's in this process (`from_app`) or the stack's first. `kind` groups it in the
    report; `category` is valid, invalid or hostile."""

    method: str = "POST"
    path: str = "/v1/evaluate"
    body: bytes | None = None
    headers: tuple = JSON
    status: int = 200
    stream: Callable[[], Iterator[bytes]] | None = None
    raw: Callable[[str], bytes] | None = None
    from_app: bool = True
    kind: str = ""
    category: str = ""


@dataclass
class Kind:
    """A kind of request: its variants, how often it is sent relative to the others, and once `expect`
    has run, the answer each variant must get."""

    weight: float
    exchanges: list[Exchange]
    answers: list[Answer] = field(default_factory=list)


def send(session: requests.Session, base: str, exchange: Exchange, request_id: str) -> Answer:
    """The answer to one exchange; an exception (requests', or OSError) when there is none."""
    if exchange.raw is not None:
        return send_raw(base, exchange.raw(request_id))
    response = session.request(
        exchange.method,
        base + exchange.path,
        data=exchange.stream() if exchange.stream else exchange.body,
        headers={**dict(exchange.headers), "X-Request-ID": request_id},
        timeout=TIMEOUTS,
    )
    return Answer(response.status_code, response.headers.get("Content-Type", ""), response.content)


def send_raw(base: str, data: bytes) -> Answer:
    """`data` written as it is on a new connection; the answer read by http.client, even when the server
    answered and closed before taking all of `data`."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUTS[1]) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return Answer(response.status, response.getheader("Content-Type", ""), response.read())


def same(answer: Answer, expected: Answer) -> bool:
    """The same status, media type and body; a problem's body compared as JSON without its request id."""
    if (answer.status, answer.content_type) != (expected.status, expected.content_type):
        return False
    if answer.content_type == PROBLEM:
        try:
            return without_request_id(answer.body) == without_request_id(expected.body)
        except orjson.JSONDecodeError:
            return False
    return answer.body == expected.body


def wrong_answer(answer: Answer, expected: Answer) -> str | None:
    """The kind of failure an answer is, as the report counts them; None when it is the expected one."""
    if same(answer, expected):
        return None
    if answer.status != expected.status:
        return "5xx" if answer.status >= 500 else "another status"
    if answer.content_type != expected.content_type:
        return "another media type"
    return "another body"


def no_answer(error: Exception) -> str:
    """The kind of failure a request that got no whole answer is: a timeout, an answer cut off in its
    body, or none at all (refused, reset or closed before the status line)."""
    if isinstance(error, (requests.Timeout, TimeoutError)):
        return "timeout"
    if isinstance(error, (requests.exceptions.ChunkedEncodingError, http.client.IncompleteRead)):
        return "cut answer"
    return "no answer"


def without_request_id(body: bytes) -> dict:
    problem = orjson.loads(body)
    problem.pop("request_id", None)
    return problem


def expect(kinds: dict[str, "Kind"], app: "InProcess", base: str) -> list[str]:
    """Fills in every kind's answers; returns what is wrong: a stack whose answer is not this tree's app's,
    or an exchange that does not get its status (the mix itself would be wrong)."""
    wrong = []
    with requests.Session() as session:
        for kind in kinds.values():
            for number, exchange in enumerate(kind.exchanges):
                got = send(session, base, exchange, f"soak-expect-{number}")
                expected = app.answer(exchange) if exchange.from_app else got
                if (error := mismatch(exchange, expected, got)) is not None:
                    wrong.append(f"{exchange.kind} #{number}: {error}")
                kind.answers.append(expected)
    return wrong


def mismatch(exchange: Exchange, expected: Answer, got: Answer) -> str | None:
    """What is wrong with an exchange's expected answer (not its status, or a refusal that is no problem),
    or with the stack's answer to it (not the expected one); None when nothing is."""
    if expected.status != exchange.status or (exchange.status != 200 and expected.content_type != PROBLEM):
        return f"expected {exchange.status}, got {shown(expected)}"
    if not same(got, expected):
        return f"the stack answers {shown(got)}, this tree {shown(expected)}"
    return None


def shown(answer: Answer) -> str:
    return f"{answer.status} {answer.content_type} {answer.body[:300]!r}"


class InProcess:
    """This tree's app in this process, with the stack's settings: the answers the service must give."""

    def __init__(self, max_body_bytes: int):
        self.app = create_app({**from_environment({}), "MAX_CONTENT_LENGTH": max_body_bytes})
        self.client = self.app.test_client()

    def answer(self, exchange: Exchange) -> Answer:
        with contextlib.redirect_stdout(io.TextIOWrapper(io.BytesIO())):  # its request log, written on close
            response = self.client.open(
                exchange.path, method=exchange.method, data=exchange.body, headers=dict(exchange.headers)
            )
            answer = Answer(response.status_code, response.headers.get("Content-Type", ""), response.get_data())
            response.close()
        return answer

    def post(self, path: str, document: object) -> dict:
        return orjson.loads(self.answer(post(path, document)).body)


def mix(app: InProcess, max_body_bytes: int, seed: int = 20240601) -> dict[str, Kind]:
    """Every kind of request the soak sends, by name, with its variants: the same for a seed."""
    rng = random.Random(seed)
    kinds: dict[str, Kind] = {}

    def add(kind: str, category: str, weight: float, *exchanges: Exchange) -> None:
        kinds[kind] = Kind(weight, [replace(exchange, kind=kind, category=category) for exchange in exchanges])

    small = [{"nodes": random_dag(rng.randint(3, 60), rng)} for _ in range(24)]
    small += [EXAMPLE_GRAPH, {"nodes": small_graph()}, {"nodes": small_graph(), "output": "g"}, {"nodes": chain(200)}]
    add("/v1/evaluate, small graphs", "valid", 30, *(post("/v1/evaluate", graph) for graph in small))
    add(
        "/v1/evaluate, 2,000 nodes",
        "valid",
        4,
        *(post("/v1/evaluate", {"nodes": random_dag(2000, rng)}) for _ in range(3)),
        post("/v1/evaluate", {"nodes": chain(2000)}),
    )
    add("/v1/evaluate, 50,000 nodes", "valid", 0.4, Exchange(body=large_graph(50_000)))
    invalid_item = {"nodes": [{"id": "x", "data": -1.0}, {"id": "y", "op": "log", "children": ["x"]}]}
    add(
        "/v1/evaluate/batch",
        "valid",
        6,
        *(
            post("/v1/evaluate/batch", {"graphs": rng.sample(small, rng.randint(2, 12)) + [invalid_item] * (k % 2)})
            for k in range(8)
        ),
    )
    graded = [GRADE_EXAMPLE] + [submission(app, graph, rng) for graph in small[:16]]
    add("/v1/grade", "valid", 10, *(post("/v1/grade", item) for item in graded))
    add(
        "/v1/grade/batch",
        "valid",
        4,
        *(post("/v1/grade/batch", {"graphs": rng.sample(graded, rng.randint(2, 8))}) for _ in range(5)),
    )
    formulas = [
        EXPRESSION_EXAMPLE,
        {"expression": "relu(a * b - c) ** 2 / (exp(a) + 1)", "inputs": {"a": 0.5, "b": 3.0, "c": -1.25}},
        {"expression": "-(x ** 3) + 2 * x - log(y)", "inputs": {"x": 1.5, "y": 7.0}},
        {"expression": "exp(-x) * (x + 1) ** 0.5", "inputs": {"x": 0.25}},
        {"expression": " + ".join(f"x * {k}" for k in range(200)), "inputs": {"x": 1.1}},
        {"expression": "(" * 3000 + "a / b" + ")" * 3000, "inputs": {"a": 3.0, "b": -2.0}},
    ]
    add("/v1/expression", "valid", 8, *(post("/v1/expression", formula) for formula in formulas))
    drawn = [*small[:6], EXAMPLE_GRAPH]
    for picture_format, weight in (("mermaid", 3), ("dot", 3), ("json", 3), ("svg", 1.5)):
        add(
            f"/v1/render?format={picture_format}",
            "valid",
            weight,
            *(
                replace(
                    post(f"/v1/render?format={picture_format}" + ("&precision=4" if k % 2 else ""), graph),
                    from_app=picture_format != "svg",
                )
                for k, graph in enumerate(drawn)
            ),
        )
    pages = ("/", "/docs", "/playground", "/problems", "/problems/invalid-json", "/openapi.yaml", "/openapi.json")
    add("pages and the contract", "valid", 4, *(get(path) for path in pages))
    add("/healthz, /readyz", "valid", 4, get("/healthz"), get("/readyz"))

    add(
        "/v1/evaluate, invalid graphs",
        "invalid",
        4,
        post("/v1/evaluate", invalid_item, 422),
        post(
            "/v1/evaluate", {"nodes": [{"id": "a", "data": 1.0}, {"id": "b", "op": "add", "children": ["a", "z"]}]}, 422
        ),
        post(
            "/v1/evaluate",
            {"nodes": [{"id": "a", "op": "neg", "children": ["b"]}, {"id": "b", "op": "neg", "children": ["a"]}]},
            422,
        ),
        post("/v1/evaluate", {"nodes": [{"id": "a", "data": 1.0}, {"id": "a", "data": 2.0}]}, 422),
        post("/v1/evaluate", {"nodes": [{"id": "a", "data": 1.0}, {"id": "b", "op": "tanh", "children": ["a"]}]}, 422),
        post("/v1/evaluate", {"nodes": [{"id": "a", "data": "two"}, {"id": 1.5, "data": 1}]}, 422),
        post("/v1/evaluate", {"nodes": []}, 422),
        post("/v1/evaluate", {"graph": EXAMPLE_GRAPH}, 422),
        post(
            "/v1/evaluate",
            {"nodes": [{"id": "a", "data": 1e308}, {"id": "b", "op": "mul", "children": ["a", "a"]}]},
            422,
        ),
    )
    add(
        "/v1/evaluate/batch, invalid envelope",
        "invalid",
        1,
        post("/v1/evaluate/batch", {"graphs": EXAMPLE_GRAPH}, 422),
        post("/v1/evaluate/batch", {"graphs": []}, 422),
    )
    add(
        "/v1/grade, invalid submission",
        "invalid",
        1.5,
        post("/v1/grade", {**EXAMPLE_GRAPH, "submitted": [{"id": "nobody", "grad": 1.0}]}, 422),
        post(
            "/v1/grade", {**EXAMPLE_GRAPH, "submitted": [{"id": "a", "grad": "high"}], "tolerance": {"rtol": -1}}, 422
        ),
    )
    add(
        "/v1/expression, invalid",
        "invalid",
        1.5,
        post("/v1/expression", {"expression": "a +", "inputs": {"a": 1}}, 422),
        post("/v1/expression", {"expression": "__import__('os')", "inputs": {}}, 422),
        post("/v1/expression", {"expression": "log(a)", "inputs": {"a": -1.0}}, 422),
        post("/v1/expression", {"expression": "a * b", "inputs": {"a": 1.0}}, 422),
    )
    add(
        "/v1/render, invalid",
        "invalid",
        1.5,
        post("/v1/render?format=png", EXAMPLE_GRAPH, 400),
        post("/v1/render?format=dot&precision=-3", EXAMPLE_GRAPH, 400),
        post("/v1/render?format=mermaid", {"nodes": random_dag(MAX_RENDER_NODES.default + 10, rng)}, 422),
    )
    example = orjson.dumps(EXAMPLE_GRAPH)
    add(
        "wrong media type",
        "invalid",
        1,
        Exchange(body=example, headers=(("Content-Type", "text/plain"),), status=415),
        Exchange(body=example, headers=(*JSON, ("Content-Encoding", "gzip")), status=415),
        Exchange(body=example, headers=(("Content-Type", "application/json; charset=latin-1"),), status=415),
    )
    add(
        "unknown path or method",
        "invalid",
        1,
        get("/v1/evaluate", 405),
        get("/v2/evaluate", 404),
        Exchange(method="DELETE", path="/v1/grade", headers=(), status=405),
    )

    add(
        "bad JSON",
        "hostile",
        1.5,
        Exchange(body=b'{"nodes": [{"id": "a", "data": 1.0}', status=400),
        Exchange(body=b'{"nodes": []} trailing', status=400),
        Exchange(body=b'{"nodes": [{"id": "\xff\xfe", "data": 1.0}]}', status=400),
        Exchange(body=b'{"nodes": [{"id": "a", "data": NaN}]}', status=400),
        Exchange(path="/v1/expression", body=b"\x00" * 100, status=400),
    )
    add(
        "deep nesting",
        "hostile",
        1,
        Exchange(body=b'{"nodes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", status=400),
        Exchange(body=b'{"nodes": [{"id": "a", "data": ' + b'{"x": ' * 5000 + b"1" + b"}" * 5000 + b"}]}", status=400),
        post("/v1/expression", {"expression": "-" * 5000 + "a", "inputs": {"a": 1.0}}, 422),
    )
    add(
        "costly bodies refused cheaply",
        "hostile",
        0.5,
        post(
            "/v1/evaluate/batch",
            {"graphs": [{"nodes": [{"id": "a", "data": 1.0}]}] * (MAX_BATCH_GRAPHS.default + 1)},
            422,
        ),
        post(
            "/v1/expression", {"expression": "a+" * (MAX_EXPRESSION_LENGTH.default // 2) + "a", "inputs": {"a": 1}}, 422
        ),
        post(
            "/v1/render?format=dot",
            {"nodes": [{"id": "a", "data": 1.0}, {"id": "b", "op": "add", "children": ["a"] * 5000}]},
            422,
        ),
    )
    by_nginx = {"from_app": False}
    add(
        "oversize body, announced",
        "hostile",
        1,
        Exchange(
            raw=lambda rid: head(rid, f"Content-Length: {max_body_bytes + 1}") + b"[" * 1000, status=413, **by_nginx
        ),
    )
    add(
        "oversize body, chunked",
        "hostile",
        0.1,
        Exchange(stream=lambda: oversize_chunks(max_body_bytes), status=413, **by_nginx),
    )
    chunked = b"2\r\n{}\r\n0\r\n\r\n"
    add(
        "bad Transfer-Encoding",
        "hostile",
        1,
        Exchange(raw=lambda rid: head(rid, "Transfer-Encoding: gzip, chunked") + chunked, status=501, **by_nginx),
        Exchange(raw=lambda rid: head(rid, "Transfer-Encoding: xchunked") + chunked, status=501, **by_nginx),
        Exchange(
            raw=lambda rid: head(rid, "Transfer-Encoding: chunked", "Content-Length: 11") + chunked,
            status=400,
            **by_nginx,
        ),
    )
    add(
        "bad chunked framing",
        "hostile",
        0.5,
        Exchange(
            raw=lambda rid: head(rid, "Transfer-Encoding: chunked") + b"zz\r\n{}\r\n0\r\n\r\n", status=400, **by_nginx
        ),
    )
    add(
        "head too large",
        "hostile",
        0.5,
        replace(get("/" + "x" * 9000, 414), **by_nginx),
        Exchange(method="GET", path="/healthz", headers=(("X-Large", "x" * 9000),), status=431, **by_nginx),
    )
    add("not HTTP", "hostile", 0.3, Exchange(raw=lambda rid: b"NOT HTTP\r\n\r\n", status=400, **by_nginx))
    add(
        "paths the service does not serve",
        "hostile",
        0.5,
        Exchange(path="/v1//evaluate", body=b"{}", headers=(*JSON, ("Host", "evil.example")), status=404),
        get("/static/app.js", 404),
        replace(get("/metrics", 404), **by_nginx),
    )
    add(
        "CGI-like headers, dropped",
        "hostile",
        0.5,
        Exchange(body=example, headers=(*JSON, ("SCRIPT_NAME", "/x"), ("PATH_INFO", "/v1/grade"))),
    )
    return kinds


def get(path: str, status: int = 200) -> Exchange:
    return Exchange(method="GET", path=path, headers=(), status=status)


def post(path: str, document: object, status: int = 200) -> Exchange:
    return Exchange(path=path, body=orjson.dumps(document), status=status)


def head(request_id: str, *headers: str) -> bytes:
    """A POST /v1/evaluate's head as written, with the request id and `headers`."""
    lines = [
        "POST /v1/evaluate HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"X-Request-ID: {request_id}",
    ]
    return ("\r\n".join([*lines, *headers, "Connection: close"]) + "\r\n\r\n").encode()


def oversize_chunks(max_body_bytes: int) -> Iterator[bytes]:
    """One byte more than the limit, a mebibyte a chunk."""
    left = max_body_bytes + 1
    while left > 0:
        size = min(left, 2**20)
        yield b" " * size
        left -= size


def submission(app: InProcess, graph: dict, rng: random.Random) -> dict:
    """A grade request for `graph`: the reference's numbers for a few nodes, one of them wrong by 25 %."""
    answer = app.post("/v1/evaluate", graph)["nodes"]
    picked = rng.sample(answer, min(4, len(answer)))
    submitted = [{"id": node["id"], "data": node["data"], "grad": node["grad"]} for node in picked]
    submitted[0]["grad"] = submitted[0]["grad"] * 1.25 + 0.5
    return {**graph, "submitted": submitted}
