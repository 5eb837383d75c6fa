"""valuegraph's server, by layer; each folder says what its modules may import (pyproject.toml's
import-linter contracts keep it so):

- core: the engine and everything computed from a graph; no Flask, no HTTP, no I/O;
- contract: the marshmallow schemas of the requests and answers; imports core's op registry;
- http: the Flask app, its routes, the one answer path, problem details;
- runtime: what only a running server needs: settings, limits, the gunicorn worker, observability.
"""
