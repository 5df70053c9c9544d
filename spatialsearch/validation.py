"""Validators of YAML values: each returns the value in its canonical type or raises one
ConfigError naming the key path, the rule and the bad value."""

from __future__ import annotations

import math
from typing import Any, Mapping, get_args
from urllib.parse import urlsplit

from spatialsearch.errors import ConfigError


def mapping(raw: Any, path: str) -> Mapping[str, Any]:
    """A mapping; a missing section (None) is an empty one."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {raw!r}")
    return raw


def integer(raw: Any, path: str, low: int, high: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise ConfigError(f"{path}: must be an integer >= {low}, got {raw!r}")
    if high is not None and raw > high:
        raise ConfigError(f"{path}: at most {high}, got {raw!r}")
    return raw


def number(raw: Any, path: str, low: float) -> float:
    ok = not isinstance(raw, bool) and isinstance(raw, (int, float)) and math.isfinite(raw)
    if not ok or raw < low:
        raise ConfigError(f"{path}: must be a number >= {low:g}, got {raw!r}")
    return float(raw)


def text(raw: Any, path: str, *, empty: bool = False) -> str:
    if not isinstance(raw, str) or (not raw and not empty):
        raise ConfigError(f"{path}: must be a {'' if empty else 'non-empty '}string, got {raw!r}")
    return raw


def literal(raw: Any, path: str, kind: Any) -> str:
    """One of the values of the Literal type `kind`."""
    allowed = get_args(kind)
    if raw not in allowed:
        raise ConfigError(f"{path}: must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


#: MLflow tracking URI schemes a search logs to
TRACKING_SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")


def tracking_uri(raw: Any, path: str) -> str:
    """"" (the search folder's SQLite store) or a URI MLflow can track to: http(s)://host...,
    sqlite:///file, a database URL, databricks."""
    uri = text(raw, path, empty=True)
    if not uri:
        return uri
    if any(not c.isprintable() or c.isspace() for c in uri):
        raise ConfigError(f"{path}: must not contain spaces or control characters, got {uri!r}")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise ConfigError(f"{path}: malformed URI {uri!r}: {error}") from error
    scheme = parts.scheme.split("+")[0]  # postgresql+psycopg2://...
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(f"{path}: unsupported scheme {parts.scheme or '(none)'!r} in {uri!r}; "
                          f"allowed: {', '.join(TRACKING_SCHEMES)} (or \"\" for the search "
                          f"folder's SQLite store)")
    if scheme in ("http", "https") and not parts.hostname:
        raise ConfigError(f"{path}: {uri!r} names no host; e.g. http://127.0.0.1:5000")
    if scheme == "sqlite" and (not uri.startswith("sqlite:///") or len(uri) <= len("sqlite:///")):
        raise ConfigError(f"{path}: {uri!r} is not sqlite:///<path of the database file>")
    return uri
