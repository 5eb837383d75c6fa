"""Settings, each from an environment variable with a documented default, in one table.

The app (`from_environment`), gunicorn.conf.py, the spec's text and the README read this table; a bad
value stops the process at start with a message that names the variable, never a traceback.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class ConfigError(SystemExit):
    """A setting's value is unusable; exits the process with the message."""


def positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


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

SETTINGS: tuple[Setting, ...] = (MAX_BODY_BYTES, MAX_NODES, MAX_BATCH_GRAPHS, MAX_BATCH_NODES)


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The app's settings, read from the environment."""
    return {setting.key: setting.read(environ) for setting in SETTINGS}
