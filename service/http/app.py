"""The app factory, as in Flask's tutorial: `create_app(config)`.

It is the one place where the web layer meets the runtime (service/runtime): it reads the settings,
makes the worker's memory budget, and wires in the GC pause, the lifecycle's stop signal, the request
log and the metrics; the routes reach them only through the app's config and extensions.
"""

from flask import Flask

from service.contract.batch import BatchRequestSchema
from service.contract.grade import GradeRequestSchema
from service.contract.graph import GraphRequestSchema
from service.http import allowed_methods, auth, cors, problems
from service.http.routes import assets, evaluate, expression, grade, meta, pages, render
from service.runtime import lifecycle, metrics, observe
from service.runtime.config import from_environment
from service.runtime.gcpause import cyclic_gc_paused
from service.runtime.memory import MemoryBudget, OverBudget


def create_app(config: dict | None = None) -> Flask:
    """The app: settings from the environment, overridden by `config`."""
    app = Flask(__name__, static_folder=None)  # no /static: only the routes the contract documents
    # werkzeug's routing never redirects: it would answer `/v1//evaluate`, or a path without a rule's
    # trailing slash, with a 308 to a URL built from the client's Host header (an open redirect). Repeated
    # slashes are a 404; a trailing slash is optional, the same route.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.redirect_defaults = False
    app.config.from_mapping(from_environment())
    if config:
        app.config.from_mapping(config)
    # Made once per app: making a schema deep-copies its fields, which costs more than loading a small graph.
    app.extensions["valuegraph.request_schema"] = GraphRequestSchema(max_nodes=app.config["MAX_NODES"])
    app.extensions["valuegraph.render_schema"] = GraphRequestSchema(max_nodes=app.config["MAX_RENDER_NODES"])
    app.extensions["valuegraph.grade_schema"] = GradeRequestSchema(max_nodes=app.config["MAX_NODES"])
    app.extensions["valuegraph.batch_schema"] = BatchRequestSchema(
        max_graphs=app.config["MAX_BATCH_GRAPHS"], max_nodes=app.config["MAX_BATCH_NODES"]
    )
    app.extensions["valuegraph.memory_budget"] = MemoryBudget(
        app.config["MEMORY_BUDGET_BYTES"], app.config["ADMISSION_WAIT_SECONDS"]
    )
    app.extensions["valuegraph.gc_pause"] = cyclic_gc_paused
    app.extensions["valuegraph.stopping"] = lifecycle.stopping
    problems.register(app)
    app.register_error_handler(
        OverBudget,
        lambda error: problems.problem_response(problems.over_memory_budget(error.needed, error.budget, error.ever)),
    )
    allowed_methods.register(app)
    for route in (evaluate, grade, expression, render, meta, pages, assets):
        app.register_blueprint(route.bp)
    metrics.register(app)
    cors.register(app)  # before auth: a browser's preflight carries no credentials
    auth.register(app)
    observe.register(app)
    return app
