"""valuegraph: POST a computation graph, get every node's data and grad."""

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """The app factory: settings from the environment, overridden by `config`.

    The blueprints are imported here, as in Flask's tutorial, so that importing the engine or the op
    registry (`service.engine`, `service.ops`) never loads the web layer.
    """
    from schemas import GraphRequestSchema
    from schemas.batch import BatchRequestSchema
    from schemas.grade import GradeRequestSchema
    from service import api, auth, errors, grading_api, meta, metrics, observe, options, tools
    from service.config import from_environment
    from service.limits import MemoryBudget

    app = Flask(__name__)
    app.config.from_mapping(from_environment())
    if config:
        app.config.from_mapping(config)
    # Made once per app: making a schema deep-copies its fields, which costs more than loading a small graph.
    app.extensions["valuegraph.request_schema"] = GraphRequestSchema(max_nodes=app.config["MAX_NODES"])
    app.extensions["valuegraph.grade_schema"] = GradeRequestSchema(max_nodes=app.config["MAX_NODES"])
    app.extensions["valuegraph.batch_schema"] = BatchRequestSchema(
        max_graphs=app.config["MAX_BATCH_GRAPHS"], max_nodes=app.config["MAX_BATCH_NODES"]
    )
    app.extensions["valuegraph.memory_budget"] = MemoryBudget(
        app.config["MEMORY_BUDGET_BYTES"], app.config["ADMISSION_WAIT_SECONDS"]
    )
    errors.register(app)
    options.register(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(meta.bp)
    app.register_blueprint(grading_api.bp)
    app.register_blueprint(tools.bp)
    metrics.register(app)
    auth.register(app)
    observe.register(app)
    return app
