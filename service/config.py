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

FAST_PATH = Setting(
    "VALUEGRAPH_FAST_PATH",
    "FAST_PATH",
    True,
    on_off,
    "1: answer through the compiled fast path when it is built; 0: always the reference path",
)

SETTINGS: tuple[Setting, ...] = (MAX_BODY_BYTES, MAX_NODES, FAST_PATH)


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The app's settings, read from the environment."""
    return {setting.key: setting.read(environ) for setting in SETTINGS}
