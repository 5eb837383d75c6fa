"""Settings, each from an environment variable with a documented default, in one table.

The app (`from_environment`), gunicorn.conf.py, the spec's text and the README read this table; a bad
value stops the process at start with a message that names the variable, never a traceback.
"""

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


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
    "bearer tokens, comma-separated; when any is set (here or in the file), every route but the health probes "
    "and the contract needs `Authorization: Bearer TOKEN`, else 401",
)
API_TOKENS_FILE = Setting(
    "VALUEGRAPH_TOKENS_FILE",
    "API_TOKENS_FROM_FILE",
    (),
    tokens_file,
    "a file of bearer tokens, one a line, read at start; added to VALUEGRAPH_TOKENS",
)

SETTINGS: tuple[Setting, ...] = (MAX_BODY_BYTES, MAX_NODES, API_TOKENS, API_TOKENS_FILE)


def from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The app's settings, read from the environment."""
    return {setting.key: setting.read(environ) for setting in SETTINGS}
