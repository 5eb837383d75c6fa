"""Prometheus metrics, and GET /metrics that exposes them.

Under gunicorn each worker is a process of its own, so each keeps its metrics in files of
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode) and /metrics, whichever worker answers
it, adds up every worker's files. gunicorn.conf.py makes that directory fresh at start and forgets a dead
worker's live gauges. Without the variable (the Flask test client, one process) the metrics live in
memory. Which mode applies is fixed when prometheus_client is first imported: the variable must be set
before the app is loaded.
"""

import functools
import os

from flask import Blueprint, Flask, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

bp = Blueprint("metrics", __name__)

# The `_created` series are not kept in multiprocess mode; without them in memory too, both modes say the same.
disable_created_metrics()

#: The registry of the metrics below; in multiprocess mode /metrics reads the files instead.
REGISTRY = CollectorRegistry()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
NODES_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)

REQUESTS = Counter(
    "valuegraph_requests",
    "Requests answered, by route (the URL rule; `unmatched` for no route), method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "valuegraph_request_duration_seconds",
    "Time from the request reaching the app to the last byte of its answer handed to the server, by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
GRAPH_NODES = Histogram(
    "valuegraph_graph_nodes",
    "Nodes in each graph that passed validation.",
    buckets=NODES_BUCKETS,
    registry=REGISTRY,
)
REFUSALS = Counter(
    "valuegraph_refusals",
    "Problem-details answers, by problem type and status.",
    ["type", "status"],
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "valuegraph_in_flight_requests",
    "Requests the app is serving now, over all live workers.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
ADMITTED_BODY_BYTES = Counter(
    "valuegraph_admitted_body_bytes",
    "Request body bytes read and taken on (those of bodies refused as too large are not counted).",
    registry=REGISTRY,
)
WORKER_REQUESTS = Gauge(
    "valuegraph_worker_requests",
    "Requests answered by each live worker process since it started (label pid): how the load spreads over workers.",
    multiprocess_mode="liveall",
    registry=REGISTRY,
)


@functools.cache
def requests(route: str, method: str, status: int) -> Counter:
    """REQUESTS' child for these labels: found once, not on every request."""
    return REQUESTS.labels(route, method, str(status))


@functools.cache
def latency(route: str) -> Histogram:
    return LATENCY.labels(route)


def multiprocess_directory() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """Every metric in Prometheus text format 0.0.4: all workers' together in multiprocess mode."""
    directory = multiprocess_directory()
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


@bp.get("/metrics")
def metrics() -> Response:
    return Response(exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def register(app: Flask) -> None:
    app.register_blueprint(bp)
