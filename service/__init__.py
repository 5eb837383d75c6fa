"""valuegraph: POST a computation graph, get every node's data and grad."""

from flask import Flask


def create_app(config: dict | None = None) -> Flask:
    """The app factory: settings from the environment, overridden by `config`.

    The blueprints are imported here, as in Flask's tutorial, so that importing the engine or the op
    registry (`service.engine`, `service.ops`) never loads the web layer.
    """
    from service import api, errors, meta, options
    from service.config import from_environment

    app = Flask(__name__)
    app.config.from_mapping(from_environment())
    if config:
        app.config.from_mapping(config)
    errors.register(app)
    options.register(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(meta.bp)
    return app
