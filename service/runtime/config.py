"""Settings, each from an environment variable with a documented default, in one table.

The app (`from_environment`), gunicorn.conf.py, the spec's text and the README read this table; a bad
value stops the process at start with a message that names the variable, never a traceback.
"""

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from service.runtime.cpus import default_workers
from service.runtime.memory import default_memory_budget


class ConfigError(SystemExit):
    """A setting's value is unusable; exits the process with the message."""


def finite_number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, not {raw!r}")
    return value


def positive_number(name: str, raw: str) -> float:
    value = finite_number(name, raw)
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {raw!r}")
    return value


def non_negative_number(name: str, raw: str) -> float:
    value = finite_number(name, raw)
    if value < 0:
        raise ConfigError(f"{name} must be zero or more, not {raw!r}")
    return value


def positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


def non_negative_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, not {value}")
    return value


def port(name: str, raw: str) -> int:
    value = positive_int(name, raw)
    if value > 65535:
        raise ConfigError(f"{name} must be a TCP port, 1 to 65535, not {value}")
    return value


def host(name: str, raw: str) -> str:
    if any(character.isspace() or character == "/" for character in raw):
        raise ConfigError(f"{name} must be a host name or an IP address, not {raw!r}")
    if ":" in raw and not (raw.startswith("[") and raw.endswith("]")):
        raise ConfigError(
            f"{name} must be an address without a port (PORT sets it; an IPv6 address goes in brackets), not {raw!r}"
        )
    return raw


def log_level(name: str, raw: str) -> str:
    levels = ("debug", "info", "warning", "error", "critical")
    if raw.lower() not in levels:
        raise ConfigError(f"{name} must be one of {', '.join(levels)}, not {raw!r}")
    return raw.lower()


def on_off(name: str, raw: str) -> bool:
    if raw.lower() in ("1", "on", "true", "yes"):
        return True
    if raw.lower() in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, not {raw!r}")


@dataclass(frozen=True)
class Setting:
    """One environment variable: the app config key it sets, its default and what it means."""

    variable: str
    key: str
    default: object
    parse: Callable[[str, str], object]
    doc: str

    def read(self, environ: Mapping[str, str]) -> object:
        """The variable's value, or the default when it is unset or empty."""
        raw = environ.get(self.variable, "")
        return self.default if raw == "" else self.parse(self.variable, raw)


MAX_BODY_BYTES = Setting(
    "VALUEGRAPH_MAX_BODY_BYTES",
    "MAX_CONTENT_LENGTH",
    256 * 1024 * 1024,
    positive_int,
    "the largest request body; over it, 413",
)
MAX_NODES = Setting(
    "VALUEGRAPH_MAX_NODES", "MAX_NODES", 1_000_000, positive_int, "the most nodes in one graph; over it, 422"
)

DEADLINE_SECONDS = Setting(
    "VALUEGRAPH_DEADLINE_SECONDS",
    "DEADLINE_SECONDS",
    60.0,
    positive_number,
    "the most time one evaluation may take; past it, 504 and the worker goes on serving",
)
MEMORY_BUDGET_BYTES = Setting(
    "VALUEGRAPH_MEMORY_BUDGET_BYTES",
    "MEMORY_BUDGET_BYTES",
    None,
    positive_int,
    "the memory one worker's requests may hold at once; default: 80 % of the cgroup memory limit "
    "(or of the machine's memory) split over WEB_CONCURRENCY workers, less 64 MiB each",
)
ADMISSION_WAIT_SECONDS = Setting(
    "VALUEGRAPH_ADMISSION_WAIT_SECONDS",
    "ADMISSION_WAIT_SECONDS",
    2.0,
    non_negative_number,
    "how long a request that does not fit the memory budget waits for others to finish before its 503",
)
MAX_EXPRESSION_LENGTH = Setting(
    "VALUEGRAPH_MAX_EXPRESSION_LENGTH",
    "MAX_EXPRESSION_LENGTH",
    10_000,
    positive_int,
    "the most characters in one expression (POST /v1/expression); over it, 422",
)
MAX_EXPRESSION_NODES = Setting(
    "VALUEGRAPH_MAX_EXPRESSION_NODES",
    "MAX_EXPRESSION_NODES",
    10_000,
    positive_int,
    "the most nodes one expression may build; over it, 422",
)
MAX_RENDER_NODES = Setting(
    "VALUEGRAPH_MAX_RENDER_NODES",
    "MAX_RENDER_NODES",
    500,
    positive_int,
    "the most nodes in a graph drawn by POST /v1/render; over it, 422",
)
MAX_RENDER_EDGES = Setting(
    "VALUEGRAPH_MAX_RENDER_EDGES",
    "MAX_RENDER_EDGES",
    1000,
    positive_int,
    "the most edges (children listed, over all nodes) in a graph drawn by POST /v1/render; over it, 422",
)
GRAPHVIZ_SECONDS = Setting(
    "VALUEGRAPH_GRAPHVIZ_SECONDS",
    "GRAPHVIZ_SECONDS",
    10.0,
    positive_number,
    "the most time Graphviz's dot may take to draw one SVG picture (within VALUEGRAPH_DEADLINE_SECONDS); "
    "past it, dot is stopped and the answer is 422",
)
GRAPHVIZ_MEMORY_BYTES = Setting(
    "VALUEGRAPH_GRAPHVIZ_MEMORY_BYTES",
    "GRAPHVIZ_MEMORY_BYTES",
    128 * 1024 * 1024,
    positive_int,
    "the most memory Graphviz's dot may allocate to draw one SVG picture (its data limit), held in the worker's "
    "memory budget while it runs; over it, dot stops and the answer is 422",
)

MAX_BATCH_GRAPHS = Setting(
    "VALUEGRAPH_MAX_BATCH_GRAPHS",
    "MAX_BATCH_GRAPHS",
    10_000,
    positive_int,
    "the most graphs in one batch (/v1/evaluate/batch, /v1/grade/batch); over it, 422",
)
MAX_BATCH_NODES = Setting(
    "VALUEGRAPH_MAX_BATCH_NODES",
    "MAX_BATCH_NODES",
    1_000_000,
    positive_int,
    "the most nodes in all the graphs of one batch; over it, 422",
)

TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")


def tokens(name: str, raw: str) -> tuple[str, ...]:
    """Bearer tokens separated by commas; each must be an RFC 6750 token (no spaces, no quotes)."""
    return _checked_tokens(name, raw.split(","))


def tokens_file(name: str, raw: str) -> tuple[str, ...]:
    """Bearer tokens read from the file named, one a line; blank lines and lines starting with # are skipped."""
    try:
        lines = Path(raw).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{name}: cannot read the tokens file {raw!r}: {error}") from None
    return _checked_tokens(name, [line for line in lines if not line.lstrip().startswith("#")])


def _checked_tokens(name: str, candidates: list[str]) -> tuple[str, ...]:
    found = tuple(token for token in (candidate.strip() for candidate in candidates) if token)
    for position, token in enumerate(found, 1):
        if not TOKEN.fullmatch(token):
            raise ConfigError(f"{name}: token {position} has characters a bearer token cannot have")
    if not found:
        raise ConfigError(f"{name} is set but holds no token")
    return found


API_TOKENS = Setting(
    "VALUEGRAPH_TOKENS",
    "API_TOKENS",
    (),
    tokens,
    "bearer tokens, comma-separated; when any is set (here or in the file), every route but the health probes, "
    "the contract and the pages for people needs `Authorization: Bearer TOKEN`, else 401",
)
API_TOKENS_FILE = Setting(
    "VALUEGRAPH_TOKENS_FILE",
    "API_TOKENS_FROM_FILE",
    (),
    tokens_file,
    "a file of bearer tokens, one a line, read at start; added to VALUEGRAPH_TOKENS",
)

ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def origins(name: str, raw: str) -> tuple[str, ...]:
    """`*`, or exact origins separated by commas (`https://app.example`, `http://localhost:3000`): a browser
    sends its page's origin as scheme://host[:port], lower case, with no path."""
    found = tuple(origin.strip().lower() for origin in raw.split(",") if origin.strip())
    if found == ("*",):
        return found
    for origin in found:
        if not ORIGIN.fullmatch(origin):
            raise ConfigError(
                f"{name} must be * or origins like https://app.example:8443 (scheme://host[:port], "
                f"no path, no trailing slash), separated by commas; not {origin!r}"
            )
    if not found:
        raise ConfigError(f"{name} is set but names no origin")
    return found


CORS_ORIGINS = Setting(
    "VALUEGRAPH_CORS_ORIGINS",
    "CORS_ORIGINS",
    (),
    origins,
    "the origins whose web pages may call the service from a browser (CORS), comma-separated, or *; "
    "unset: none (a browser refuses other origins' pages the answers)",
)

FAST_PATH = Setting(
    "VALUEGRAPH_FAST_PATH",
    "FAST_PATH",
    True,
    on_off,
    "1: answer through the compiled fast path when it is built; 0: always the reference path",
)

SETTINGS: tuple[Setting, ...] = (
    FAST_PATH,
    MAX_BODY_BYTES,
    MAX_NODES,
    DEADLINE_SECONDS,
    MEMORY_BUDGET_BYTES,
    ADMISSION_WAIT_SECONDS,
    MAX_BATCH_GRAPHS,
    MAX_BATCH_NODES,
    API_TOKENS,
    API_TOKENS_FILE,
    CORS_ORIGINS,
    MAX_EXPRESSION_LENGTH,
    MAX_EXPRESSION_NODES,
    MAX_RENDER_NODES,
    MAX_RENDER_EDGES,
    GRAPHVIZ_SECONDS,
    GRAPHVIZ_MEMORY_BYTES,
)

# The HTTP server's settings: gunicorn.conf.py and the worker (service/runtime/worker.py) read them, the app does not.
HOST = Setting("HOST", "host", "127.0.0.1", host, "the address gunicorn listens on (0.0.0.0 in the image)")
PORT = Setting("PORT", "port", 8000, port, "the TCP port gunicorn listens on")
WEB_CONCURRENCY = Setting(
    "WEB_CONCURRENCY",
    "workers",
    default_workers(),
    positive_int,
    "gunicorn worker processes: evaluation is CPU-bound, so one per core (default: the cgroup's CPU quota, "
    "rounded up, where one is set, else the cores this process may run on)",
)
THREADS = Setting(
    "GUNICORN_THREADS",
    "threads",
    8,
    positive_int,
    "threads per worker: requests a worker computes at once (the worker's event loop reads and writes them)",
)
KEEPALIVE = Setting(
    "GUNICORN_KEEPALIVE", "keepalive", 5, non_negative_int, "seconds an idle keep-alive connection stays open"
)
KEEPALIVE_REQUESTS = Setting(
    "GUNICORN_KEEPALIVE_REQUESTS",
    "keepalive_requests",
    100,
    positive_int,
    "requests on one connection before the server closes it, so clients reconnect and spread over the workers",
)
TIMEOUT = Setting(
    "GUNICORN_TIMEOUT", "timeout", 120, positive_int, "seconds a worker may fail to check in before it is restarted"
)
GRACEFUL_TIMEOUT = Setting(
    "GUNICORN_GRACEFUL_TIMEOUT",
    "graceful_timeout",
    30,
    positive_int,
    "seconds in-flight requests have to finish after SIGTERM",
)
CLIENT_GRACE_SECONDS = Setting(
    "VALUEGRAPH_CLIENT_GRACE_SECONDS",
    "client_grace_seconds",
    10,
    positive_int,
    "seconds a client has to send a request's headers, and the longest a body or the reading of an answer may "
    "stall (or fall behind the minimum rate); past it, the connection is closed (408 if nothing was answered yet)",
)
CLIENT_MIN_RATE = Setting(
    "VALUEGRAPH_CLIENT_MIN_BYTES_PER_SECOND",
    "client_min_bytes_per_second",
    65536,
    positive_int,
    "the slowest rate at which a client may send a body or read an answer, with up to the grace saved up "
    "by going faster",
)
MAX_HEAD_BYTES = Setting(
    "VALUEGRAPH_MAX_HEAD_BYTES",
    "max_head_bytes",
    65536,
    positive_int,
    "the largest request head (request line and headers) the server reads; over it, 431",
)
LOG_LEVEL = Setting(
    "GUNICORN_LOGLEVEL", "loglevel", "info", log_level, "the error log's level; the request log goes to stdout"
)

SERVER_SETTINGS: tuple[Setting, ...] = (
    HOST,
    PORT,
    WEB_CONCURRENCY,
    THREADS,
    KEEPALIVE,
    KEEPALIVE_REQUESTS,
    TIMEOUT,
    GRACEFUL_TIMEOUT,
    CLIENT_GRACE_SECONDS,
    CLIENT_MIN_RATE,
    MAX_HEAD_BYTES,
    LOG_LEVEL,
)


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The app's settings, read from the environment."""
    settings = {setting.key: setting.read(environ) for setting in SETTINGS}
    if settings["MEMORY_BUDGET_BYTES"] is None:
        settings["MEMORY_BUDGET_BYTES"] = default_memory_budget(WEB_CONCURRENCY.read(environ))
    return settings


def server_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The HTTP server's settings, read from the environment."""
    return {setting.key: setting.read(environ) for setting in SERVER_SETTINGS}
