"""gunicorn settings for valuegraph, the same for `make run`, the tests, the benchmark and the image.

Every setting comes from an environment variable declared in service/runtime/config.py's table
(docs/configuration.md lists them); a bad value stops gunicorn with a one-line message naming the
variable. An empty WEB_CONCURRENCY is the exception: gunicorn itself reads it, as a number, before this
file, and fails with a traceback; `make run` unsets an empty one.

The worker is service/runtime/worker.py's `PacedThreadWorker`; why gthread, and how it holds slow
clients, is in docs/operations.md ("The HTTP server"). The workers share the master's listening socket
(no SO_REUSEPORT): with a socket per worker, a second `make run` on a busy port started silently and
took half the connections, and the connections queued on a killed worker's socket were lost with it.
"""

import errno
import os
import socket

from service.runtime.config import ConfigError, from_environment, server_from_environment

_settings = server_from_environment()
from_environment()  # the app's own settings, checked here too, so that a bad one stops the start in one line

wsgi_app = "service.http.app:create_app()"

bind = f"{_settings['host']}:{_settings['port']}"
reuse_port = False

workers = _settings["workers"]
worker_class = "service.runtime.worker.PacedThreadWorker"
threads = _settings["threads"]
keepalive = _settings["keepalive"]

# A 1,000,000-node graph takes seconds; a worker that stops checking in for longer than this is restarted.
timeout = _settings["timeout"]
graceful_timeout = _settings["graceful_timeout"]

# gunicorn's runtime control socket is not used; without it the service needs no writable home.
control_socket_disable = True

# Request headers that look like CGI variables (SCRIPT_NAME: /x, PATH_INFO, REMOTE_USER: any name with an
# underscore) are dropped, from every client and every forwarder alike, as nginx drops them: gunicorn
# would otherwise take SCRIPT_NAME and PATH_INFO from a trusted forwarder (loopback, by default) and let a
# header change the routing, or fail the request with a 500.
forwarder_headers = ""
header_map = "drop"

# Every byte goes through the worker's event loop; sendfile() would write from a thread.
sendfile = False

errorlog = "-"
loglevel = _settings["loglevel"]


def on_starting(server):
    refuse_a_busy_port()


def refuse_a_busy_port():
    """Refuse to start on an address something already listens on, at once and in one line (gunicorn
    alone retries for 5 seconds and logs the attempts). Not when gunicorn inherits its sockets (a
    re-exec on SIGUSR2, or systemd socket activation): then they are meant to be in use."""
    if os.environ.get("GUNICORN_FD") or os.environ.get("LISTEN_FDS"):
        return
    host, port = _settings["host"].strip("[]"), _settings["port"]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        addresses = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConfigError(f"HOST {host!r} is not an address this machine can listen on: {error}") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addresses[0][4])
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"{bind} is already in use: another server (perhaps another `make run`) listens there; "
                    "stop it or choose another PORT"
                ) from None
            raise ConfigError(f"cannot listen on {bind}: {error.strerror}") from None


# --- Visible (service/runtime/observe.py, service/runtime/metrics.py) --------------------------------

# The app writes the access log itself, one JSON line per request on stdout, with the graph's size, the
# body bytes read and the request id, which gunicorn's access_log_format atoms cannot give.
accesslog = None


def prepare_metrics_directory():
    """Give the workers a fresh, empty PROMETHEUS_MULTIPROC_DIR: a temporary directory of the master's
    own when the variable is unset (returned, to be removed at exit), else the one given with its files
    of an earlier run removed. Done as this file is read, before gunicorn loads the worker class, whose
    imports reach prometheus_client: set any later, the workers would keep their metrics in memory and
    /metrics would read an empty directory. (So the app must not be preloaded either.)"""
    import tempfile
    from pathlib import Path

    made = None
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = made = tempfile.mkdtemp(prefix="valuegraph-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    return made


_metrics_directory_made = prepare_metrics_directory()


def child_exit(server, worker):
    """A dead worker's live gauges (in-flight requests, its request count) must not count any more."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    import shutil

    if _metrics_directory_made:
        shutil.rmtree(_metrics_directory_made, ignore_errors=True)
