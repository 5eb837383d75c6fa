"""The service about itself: liveness, readiness, and the contract it serves."""

import functools
from pathlib import Path

import yaml
from flask import Blueprint, Response, current_app, jsonify
from flask.typing import ResponseReturnValue

from service.core import fastpath, graphs

bp = Blueprint("meta", __name__)

SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.yaml"


@functools.cache
def spec_text():
    return SPEC_PATH.read_text(encoding="utf-8")


@functools.cache
def spec_document():
    return yaml.safe_load(spec_text())


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: the contract is loaded and the engine differentiates a product; 503 once the worker
    has been told to stop, so a load balancer drains it while its in-flight requests finish."""
    if current_app.extensions["valuegraph.stopping"].is_set():
        return jsonify(status="stopping"), 503
    spec_document()
    _, (x, y, product) = graphs.evaluate(
        [
            {"id": "x", "op": "value", "data": 2.0},
            {"id": "y", "op": "value", "data": 3.0},
            {"id": "xy", "op": "mul", "children": ["x", "y"]},
        ]
    )
    if (product.data, x.grad, y.grad) != (6.0, 3.0, 2.0):
        return jsonify(status="engine check failed"), 503
    return jsonify(status="ready", path=fastpath.path(current_app.config["FAST_PATH"]))


@bp.get("/openapi.yaml")
def openapi_yaml() -> Response:
    return current_app.response_class(spec_text(), mimetype="application/yaml")


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(spec_document())
