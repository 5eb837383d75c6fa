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

errorlog = "-"
loglevel = _setting("GUNICORN_LOGLEVEL", "info")


# --- Visible (service/observe.py, service/metrics.py) ------------------------------------------------

# The app writes the access log itself, one JSON line per request on stdout, with the graph's size, the
# body bytes read and the request id, which gunicorn's access_log_format atoms cannot give.
accesslog = None

_earlier_on_starting = globals().get("on_starting", lambda server: None)
_earlier_child_exit = globals().get("child_exit", lambda server, worker: None)
_earlier_on_exit = globals().get("on_exit", lambda server: None)


def on_starting(server):
    """Give the workers a fresh, empty PROMETHEUS_MULTIPROC_DIR before any of them starts: a temporary
    directory of the master's own when the variable is unset, else the one given with its files of an
    earlier run removed. Set here, in the master, it is in every worker's environment before the app,
    and so prometheus_client, is imported (which is why the app must not be preloaded)."""
    import tempfile
    from pathlib import Path

    _earlier_on_starting(server)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="valuegraph-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = server.metrics_directory_made = directory
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    """A dead worker's live gauges (in-flight requests, its request count) must not count any more."""
    _earlier_child_exit(server, worker)
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    import shutil

    _earlier_on_exit(server)
    made = getattr(server, "metrics_directory_made", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
