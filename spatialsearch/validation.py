"""Validators of YAML values: each returns the value in its canonical type or raises one
ConfigError naming the key path, the rule and the bad value."""

from __future__ import annotations

import math
from typing import Any, Mapping, get_args

from spatialsearch.errors import ConfigError


def mapping(raw: Any, path: str) -> Mapping[str, Any]:
    """A mapping; a missing section (None) is an empty one."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {raw!r}")
    return raw


def integer(raw: Any, path: str, low: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise ConfigError(f"{path}: must be an integer >= {low}, got {raw!r}")
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
