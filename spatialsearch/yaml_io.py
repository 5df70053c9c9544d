"""YAML as users write it, and nothing else: PyYAML's safe loader (no Python objects), plus
floats in exponent notation without a dot (`lr: 1e-3`, `--transport 1e6`), which YAML 1.1
reads as strings. A document that is too large, too deeply nested or that expands too far
(an alias bomb: aliases are counted as the copies they stand for) is refused in one line."""

from __future__ import annotations

import re
from typing import Any

import yaml

from spatialsearch.errors import ConfigError

MAX_CHARACTERS = 1 << 16  # 64 KiB: a search space or run config is a few hundred characters
MAX_DEPTH = 32            # nesting levels (the schema needs 4)
MAX_NODES = 100_000       # values, with every alias expanded


class _Loader(yaml.SafeLoader):
    """SafeLoader that also resolves 1e-3, -2E5, .5e3 as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def load_yaml(text: str, what: str = "YAML") -> Any:
    """Parse YAML text safely.

    Raises:
        yaml.YAMLError: not YAML.
        ConfigError: naming `what`, for a document over MAX_CHARACTERS, nested over
            MAX_DEPTH levels or expanding to over MAX_NODES values.
    """
    if len(text) > MAX_CHARACTERS:
        raise ConfigError(f"{what}: {len(text)} characters; at most {MAX_CHARACTERS} are read")
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError as error:
        raise ConfigError(f"{what}: nested too deeply to parse; at most {MAX_DEPTH} levels "
                          f"are allowed") from error
    _check_shape(data, what)
    return data


def _check_shape(data: Any, what: str) -> None:
    """Depth and expanded size, walked without recursion (stops at the first limit)."""
    stack, nodes = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ConfigError(f"{what}: expands to over {MAX_NODES} values (aliases count as "
                              f"their copies); a search space holds a few dozen")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{what}: nested over {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1) for item in value)
