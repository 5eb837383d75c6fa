"""valuegraph's endpoints as methods, on one `requests.Session` (kept-alive connections)."""

import email.utils
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import requests

from valuegraph.grading import GradeReport, for_service, grade_class
from valuegraph.graph import cyclic_gc_paused, serialize
from valuegraph.isolation import MEMORY_LIMIT, TIMEOUT_PER_GRAPH, grade_isolated
from valuegraph.problems import ProblemError
from valuegraph.transport import AnswerAwareAdapter, nothing_arrived

__all__ = [
    "BATCH_GRAPHS",
    "BATCH_NODES",
    "BATCH_SECONDS_PER_GRAPH",
    "DEFAULT_URL",
    "Client",
    "ProblemError",
    "batches",
    "retry_after",
]

DEFAULT_URL = "http://127.0.0.1:8000"
#: The graphs and nodes the client sends in one batch request at most. The service's own limits
#: (VALUEGRAPH_MAX_BATCH_GRAPHS, VALUEGRAPH_MAX_BATCH_NODES) are 10,000 and 1,000,000 by default.
BATCH_GRAPHS = 1_000
BATCH_NODES = 1_000_000
#: A batch request waits the client's `timeout` plus this many seconds per graph it carries (a
#: 1,000-graph batch 70 s by default): past the service's own deadline (60 s by default), so that
#: its 504 arrives, and the batch is sent again in halves.
BATCH_SECONDS_PER_GRAPH = 0.01


class Client:
    """A client of the valuegraph service at `base_url`, on one kept-alive `requests.Session`.

    A request is sent again, up to `retries` times, only when no byte of its answer arrived: the
    connection was refused, the connect timed out, or the connection was closed or reset before the
    status line (waiting `backoff` seconds, then twice that, and so on); and after a 503 that carries
    Retry-After, once the time it asks for has passed (when that is at most `max_wait` seconds). An
    answer that began to arrive is never asked for again, nor is a 4xx. Any 4xx or 5xx raises
    ProblemError; a failure to connect or to read the answer raises `requests`' own exception
    (`valuegraph.transport.describe` says it in a few words).

    `batch_graphs` and `batch_nodes` cap what one batch request carries: `evaluate_batch`,
    `grade_batch` and `grade_class` send longer lists as several requests. A batch request waits
    `timeout` plus BATCH_SECONDS_PER_GRAPH per graph; one the service stops at its deadline (504) is
    sent again as two halves, down to single graphs, whose 504 is that graph's result.

    A graph's nodes may carry grading's `"constant": true` (a plain number of a student's program, as
    `valuegraph.suite` writes some leaves): every method that sends a graph strips the mark, which the
    service does not know, and the service takes the number as the leaf it is (`Value(2.0)`).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        timeout: float = 60.0,
        retries: int = 3,
        token: str | None = None,
        *,
        backoff: float = 0.2,
        max_wait: float = 30.0,
        batch_graphs: int = BATCH_GRAPHS,
        batch_nodes: int = BATCH_NODES,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if batch_graphs < 1 or batch_nodes < 1:
            raise ValueError("batch_graphs and batch_nodes must be at least 1.")
        self.base_url = base_url.rstrip("/")
        self.timeout, self.retries, self.backoff, self.max_wait = timeout, retries, backoff, max_wait
        self.batch_graphs, self.batch_nodes = batch_graphs, batch_nodes
        if session is None:
            session = requests.Session()
            adapter = AnswerAwareAdapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = session
        self.session.headers["Accept"] = "application/json, application/problem+json, text/*"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._sleep = sleep

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the session's kept-alive connections."""
        self.session.close()

    # The endpoints, one to one.

    def evaluate(self, body: Mapping) -> dict:
        """POST /v1/evaluate: {"output": id, "nodes": [{"id", "data", "grad"}, ...]}."""
        return self.post("/v1/evaluate", for_service(body)).json()

    def evaluate_batch(self, bodies: Iterable[Mapping]) -> dict:
        """POST /v1/evaluate/batch: {"results": [{"status": 200, "evaluation": ...} | {"status", "problem"}]},
        one result per graph in order; more graphs than one batch carries go as several requests."""
        return {"results": self._batched("/v1/evaluate/batch", bodies)}

    def grade(
        self,
        body: Mapping,
        submitted: list | None = None,
        tolerance: Mapping | None = None,
        required: Sequence[str] | None = None,
    ) -> dict:
        """POST /v1/grade: a graph request plus what a submission computed (`submitted`, one entry per
        node: {"id", "data", "grad", "local_grads"}); the verdicts and root causes. `tolerance`
        ({"rtol", "atol"}) and `required` (fields every node must have, e.g. ["data", "grad"]) are
        sent when given."""
        request = dict(for_service(body))
        if submitted is not None:
            request["submitted"] = submitted
        if tolerance is not None:
            request["tolerance"] = dict(tolerance)
        if required is not None:
            request["required"] = list(required)
        return self.post("/v1/grade", request).json()

    def grade_batch(self, bodies: Iterable[Mapping]) -> dict:
        """POST /v1/grade/batch: {"results": [{"status": 200, "grade": ...} | {"status", "problem"}]}, one
        grade request per item, answered each on its own, in order; sent in several requests when long."""
        return {"results": self._batched("/v1/grade/batch", bodies)}

    def expression(self, expression: str, inputs: Mapping[str, float] | None = None, **named: float) -> dict:
        """POST /v1/expression: `client.expression("log((a + b) * a)", a=2, b=3)`."""
        return self.post("/v1/expression", {"expression": expression, "inputs": {**(inputs or {}), **named}}).json()

    def render(self, body: Mapping, format: str = "mermaid") -> str:
        """POST /v1/render: the evaluated graph as Mermaid (`flowchart BT`) or Graphviz dot text."""
        return self.post("/v1/render", for_service(body), params={"format": format}).text

    # Value graphs.

    def backward(self, root: Any) -> float:
        """Differentiate `root` on the service and write every Value's `.grad`, as `root.backward()`
        does on grads that start at zero; returns `root.data` as the service computed it."""
        with cyclic_gc_paused():
            nodes, values = serialize(root)
            answer = self.evaluate({"nodes": nodes, "output": len(nodes) - 1})
            del nodes
            results = answer["nodes"]
            if len(results) != len(values):
                raise ValueError(f"The service answered {len(results)} nodes for {len(values)}.")
            for value, result in zip(values, results):
                value.grad = result["grad"]
            return results[-1]["data"]

    def grade_class(
        self,
        value_class: type,
        graphs: Mapping[str, Mapping] | Iterable[Mapping],
        mode: str = "full",
        tolerance: Mapping | None = None,
        required: Sequence[str] | None = None,
    ) -> GradeReport:
        """Grade a student's Value class on `graphs` in this process: valuegraph.grading.grade_class."""
        return grade_class(self, value_class, graphs, mode=mode, tolerance=tolerance, required=required)

    def grade_isolated(
        self,
        class_spec: str,
        graphs: Mapping[str, Mapping] | Iterable[Mapping],
        mode: str = "full",
        tolerance: Mapping | None = None,
        required: Sequence[str] | None = None,
        *,
        timeout_per_graph: float = TIMEOUT_PER_GRAPH,
        timeout_total: float | None = None,
        memory_limit: int | None = MEMORY_LIMIT,
    ) -> GradeReport:
        """Grade the class `class_spec` names ("student.py:Value") in a child process, within time and
        memory limits: valuegraph.isolation.grade_isolated with this client."""
        return grade_isolated(
            self,
            class_spec,
            graphs,
            mode=mode,
            tolerance=tolerance,
            required=required,
            timeout_per_graph=timeout_per_graph,
            timeout_total=timeout_total,
            memory_limit=memory_limit,
        )

    # The transport.

    def post(
        self, path: str, body: Any, params: Mapping | None = None, timeout: float | None = None
    ) -> requests.Response:
        """POST JSON to `path`, waiting `timeout` seconds (the client's when None); retried as the class
        says; a 4xx or 5xx raises ProblemError."""
        data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        url = self.base_url + path
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.post(
                    url,
                    data=data,
                    params=params,
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout if timeout is None else timeout,
                )
            except requests.RequestException as error:
                if last or not nothing_arrived(error):
                    raise
                self._sleep(self.backoff * 2**attempt)
                continue
            if response.status_code == 503 and not last:
                wait = retry_after(response.headers.get("Retry-After"))
                if wait is not None and wait <= self.max_wait:
                    self._sleep(wait)
                    continue
            if response.status_code >= 400:
                raise ProblemError.from_response(response)
            return response
        raise AssertionError("unreachable")

    def _batched(self, path: str, bodies: Iterable[Mapping]) -> list[dict]:
        results: list[dict] = []
        for batch in batches(map(for_service, bodies), self.batch_graphs, self.batch_nodes):
            results.extend(self._batch(path, batch))
        return results

    def _batch(self, path: str, batch: list[Mapping]) -> list[dict]:
        """One batch's results; a batch the service stopped at its deadline, as its two halves'."""
        try:
            response = self.post(path, {"graphs": batch}, timeout=self.timeout + BATCH_SECONDS_PER_GRAPH * len(batch))
        except ProblemError as problem:
            if problem.status != 504:
                raise
            if len(batch) == 1:
                details = {"status": 504, "title": problem.title, "detail": problem.detail}
                return [{"status": 504, "problem": problem.body if isinstance(problem.body, dict) else details}]
            half = len(batch) // 2
            return self._batch(path, batch[:half]) + self._batch(path, batch[half:])
        answer = response.json()
        if len(answer["results"]) != len(batch):
            raise ValueError(f"The service answered {len(answer['results'])} results for {len(batch)} graphs.")
        return answer["results"]


def batches(bodies: Iterable[Mapping], max_graphs: int, max_nodes: int) -> Iterator[list[Mapping]]:
    """The bodies in order, in consecutive groups of at most `max_graphs` bodies and `max_nodes` nodes
    (a body bigger than `max_nodes` alone goes in a group of its own)."""
    batch: list[Mapping] = []
    nodes = 0
    for body in bodies:
        nodes_of_body = body.get("nodes") if isinstance(body, Mapping) else None
        size = len(nodes_of_body) if isinstance(nodes_of_body, list) else 0
        if batch and (len(batch) == max_graphs or nodes + size > max_nodes):
            yield batch
            batch, nodes = [], 0
        batch.append(body)
        nodes += size
    if batch:
        yield batch


def retry_after(header: str | None) -> float | None:
    """Retry-After's seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if header is None:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
