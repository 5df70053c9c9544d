"""Validators of YAML values: each returns the value in its canonical type or raises one
ConfigError naming the key path, the rule and the bad value."""

from __future__ import annotations

import math
from difflib import get_close_matches
from typing import Any, Mapping, get_args
from urllib.parse import urlsplit

from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked


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
    if not uri or uri == "databricks":  # MLflow's bare form: the default Databricks profile
        return uri
    if any(not c.isprintable() or c.isspace() for c in uri):
        raise ConfigError(f"{path}: must not contain spaces or control characters, got "
                          f"{masked(uri)!r}")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise ConfigError(f"{path}: malformed URI {masked(uri)!r}: {error}") from error
    scheme = parts.scheme.split("+")[0]  # postgresql+psycopg2://...
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(f"{path}: unsupported scheme {parts.scheme or '(none)'!r} in "
                          f"{masked(uri)!r}; allowed: {', '.join(TRACKING_SCHEMES)} (or \"\" "
                          f"for the search folder's SQLite store)")
    if scheme in ("http", "https") and not parts.hostname:
        raise ConfigError(f"{path}: {masked(uri)!r} names no host; e.g. http://127.0.0.1:5000")
    if scheme == "sqlite" and uri.removeprefix("sqlite:///") in ("", uri):
        raise ConfigError(f"{path}: {masked(uri)!r} is not sqlite:///<path of the database file>")
    return uri


def suggest(key: str, allowed: Any) -> str:
    """' (did you mean X?)' for a near miss among allowed keys, else ''."""
    by_case = [name for name in allowed if name.lower() == key.lower()]
    close = by_case or get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(raw: Mapping[str, Any], allowed: Any, prefix: str) -> None:
    """Raise on the first key of raw not in allowed, with a did-you-mean."""
    for key in raw:
        if key not in allowed:
            shown = key if isinstance(key, str) and key.isidentifier() else repr(key)
            raise ConfigError(
                f"{prefix}{shown}: unknown key{suggest(str(key), allowed)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )


def typed_number(value: Any, path: str, *, integer: bool) -> float | int:
    kind = "an integer" if integer else "a number"
    ok_types = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_types):
        raise ConfigError(f"{path}: must be {kind}, got {value!r}")
    if not integer and not math.isfinite(value):
        raise ConfigError(f"{path}: must be a finite number, got {value!r}")
    return int(value) if integer else float(value)


def bounded(value: Any, path: str, *, integer: bool, low: float, high: float = math.inf,
             low_open: bool = False) -> Any:
    number = typed_number(value, path, integer=integer)
    too_low = number <= low if low_open else number < low
    if too_low or number > high:
        left = "(" if low_open else "["
        right = "]" if math.isfinite(high) else ")"
        raise ConfigError(f"{path}: must be in {left}{low:g}, {high:g}{right}, got {value!r}")
    return number


def choice(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        hint = suggest(value, allowed) if isinstance(value, str) else ""
        raise ConfigError(f"{path}: must be one of {', '.join(allowed)}, got {value!r}{hint}")
    return value


def boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: must be true or false, got {value!r}")
    return value


def int_list(value: Any, path: str, *, low: int, allow_empty: bool) -> tuple[int, ...]:
    items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(items, (list, tuple)) or (not items and not allow_empty):
        raise ConfigError(f"{path}: must be a non-empty list of integers, got {value!r}")
    return tuple(
        bounded(item, f"{path}[{i}]", integer=True, low=low) for i, item in enumerate(items)
    )

