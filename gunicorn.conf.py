"""gunicorn settings for valuegraph, the same for `make run`, the tests, the benchmark and the image.

Every setting can be changed from the environment; README's Configuration lists them.
"""

import os


def _setting(name, default):
    """An environment variable's value, the default when it is unset or empty."""
    return os.environ.get(name) or default


wsgi_app = "service:create_app()"

bind = f"{_setting('HOST', '127.0.0.1')}:{_setting('PORT', '8000')}"

# Evaluation is CPU-bound Python, so one worker process per core; threads only let a worker hold
# several keep-alive connections while it computes for one of them.
workers = int(_setting("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "gthread"
threads = int(_setting("GUNICORN_THREADS", "4"))
# Each worker listens on a socket of its own (SO_REUSEPORT), so the kernel spreads new connections
# over the workers; on one shared socket, one worker could take all of a client's keep-alive
# connections and leave the other idle.
reuse_port = True
keepalive = int(_setting("GUNICORN_KEEPALIVE", "5"))

# A 1,000,000-node graph takes several seconds; a worker silent for longer than this is restarted.
timeout = int(_setting("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(_setting("GUNICORN_GRACEFUL_TIMEOUT", "30"))

# gunicorn's runtime control socket is not used; without it the service needs no writable home.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
loglevel = _setting("GUNICORN_LOGLEVEL", "info")
