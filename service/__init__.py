"""valuegraph: POST a computation graph, get every node's data and grad."""

from flask import Flask

from service import api, errors, meta
from service.config import from_environment


def create_app(config=None):
    """The app factory: limits from the environment, overridden by `config`."""
    app = Flask(__name__)
    app.config.from_mapping(from_environment())
    if config:
        app.config.from_mapping(config)
    errors.register(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(meta.bp)
    return app
