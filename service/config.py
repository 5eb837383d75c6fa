"""Settings, each from an environment variable with a documented default (see README, Configuration)."""

import os


def _int_from_env(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise SystemExit(f"{name} must be positive, not {value}")
    return value


def from_environment():
    """The app's limits: the largest request body, in bytes, and the most nodes in one graph."""
    return {
        "MAX_CONTENT_LENGTH": _int_from_env("VALUEGRAPH_MAX_BODY_BYTES", 256 * 1024 * 1024),
        "MAX_NODES": _int_from_env("VALUEGRAPH_MAX_NODES", 1_000_000),
    }
