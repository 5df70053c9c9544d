"""The names of the split methods (split.py), importable without torch: the command line
lists them in its help on every call."""

from __future__ import annotations

from typing import Literal, get_args

from spatialsearch.errors import ConfigError

Method = Literal["greedy", "probability", "rescale", "activations", "positions"]
METHODS: tuple[str, ...] = get_args(Method)


def check_method(method: str) -> Method:
    if method not in METHODS:
        raise ConfigError(f"method: must be one of {', '.join(METHODS)}, got {method!r}")
    return method  # type: ignore[return-value]
