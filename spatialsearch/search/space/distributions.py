"""Searched keys: a distribution per key, optionally conditional on other keys' values.

    space:
      lr: {loguniform: [0.001, 0.02]}
      input: {choice: [concatenate, sequential]}
      sampler: {choice: [random, task], when: {input: sequential}}   # sampled only then

A conditional key that is not sampled is absent from the trial's config (the trial uses the
key's default) and from its MLflow params; Optuna's define-by-run space leaves it out of the
trial's parameters, so TPE models it only where it exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, get_args

from spatialsearch.config import FLAT_KEYS, parse_flat_value
from spatialsearch.errors import ConfigError
from spatialsearch.validation import check_keys

DistributionKind = Literal["uniform", "loguniform", "int", "choice", "grid"]


@dataclass(frozen=True)
class Distribution:
    kind: DistributionKind              # how a trial draws the key's value
    values: tuple[Any, ...]             # (low, high) for uniform/loguniform/int; options else
    when: tuple[tuple[str, Any], ...] = ()  # sampled only where these keys have these values

    def example_values(self) -> tuple[Any, ...]:
        """Values that span the domain (bounds or every option), for validation."""
        return self.values


def parse_distribution(key: str, raw: Any, path: str) -> Distribution:
    kinds = get_args(DistributionKind)
    condition = raw.get("when") if isinstance(raw, Mapping) else None
    body = {k: v for k, v in raw.items() if k != "when"} if isinstance(raw, Mapping) else raw
    if not isinstance(body, Mapping) or len(body) != 1:
        raise ConfigError(f"{path}: must be one mapping like {{loguniform: [0.1, 10]}} with one "
                          f"of {', '.join(kinds)} (and optionally when: {{key: value}}), "
                          f"got {raw!r}")
    (kind, values), = body.items()
    if kind not in kinds:
        raise ConfigError(f"{path}: unknown distribution {kind!r}; allowed: {', '.join(kinds)}")
    where = f"{path}.{kind}"
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: must be a non-empty list, got {values!r}")
    if kind in ("uniform", "loguniform", "int"):
        if len(values) != 2:
            raise ConfigError(f"{where}: must be [low, high], got {values!r}")
        low, high = values
        integer = kind == "int"
        for bound, name in ((low, "low"), (high, "high")):
            ok_type = isinstance(bound, int) if integer else isinstance(bound, (int, float))
            if isinstance(bound, bool) or not ok_type:
                kind_text = "an integer" if integer else "a number"
                raise ConfigError(f"{where}: {name} must be {kind_text}, got {bound!r}")
        if not low < high:
            raise ConfigError(f"{where}: `low < high` must hold, but got (low={low}, high={high})")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"{where}: loguniform needs low > 0, got low={low}")
    for index, value in enumerate(values):  # every bound or option must be a valid value
        parse_flat_value(key, value, prefix=f"{where}[{index}] -> ")
    return Distribution(kind, tuple(tuple(v) if isinstance(v, list) else v for v in values),
                        _condition(key, condition, f"{path}.when"))


def _condition(key: str, raw: Any, path: str) -> tuple[tuple[str, Any], ...]:
    """`when: {input: sequential}` -> (("input", "sequential"),); each value validated as
    the key's own value (a list of values means any of them)."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{path}: must be a mapping like {{input: sequential}}, got {raw!r}")
    check_keys(raw, FLAT_KEYS, f"{path}.")
    if key in raw:
        raise ConfigError(f"{path}.{key}: a key cannot be conditional on itself")
    for name, value in raw.items():
        parse_flat_value(name, value, prefix=f"{path}.")
    return tuple(sorted((k, freeze(v)) for k, v in raw.items()))


def condition_holds(dist: Distribution, values: Mapping[str, Any]) -> bool:
    """Whether a conditional key is sampled, given the other keys' values (as a trial has
    them: lists, not tuples)."""
    return all(values.get(key) == thaw(wanted) for key, wanted in dist.when)


def freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def thaw(value: Any) -> Any:
    """Frozen tuples back to the lists/dicts a trial config takes."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
                         for v in value):
            return {k: thaw(v) for k, v in value}
        return [thaw(v) for v in value]
    return value


def check_conditions(space: tuple[tuple[str, Distribution], ...],
                     fixed_values: dict[str, Any], algorithm: str) -> None:
    """A conditional key needs optuna (Ray's random and grid generators sample every key),
    and a condition on keys that exist and can hold."""
    searched = dict(space)
    fixed = {k: thaw(v) for k, v in fixed_values.items()}
    for key, dist in space:
        for name, wanted in dist.when:
            path = f"space.{key}.when.{name}"
            if algorithm != "optuna":
                raise ConfigError(f"{path}: conditional keys need search.algorithm: optuna "
                                  f"(sampler: random for a random search), got "
                                  f"{algorithm!r}")
            if name in searched:
                other = searched[name]
                if other.when or other.kind not in ("choice", "grid"):
                    raise ConfigError(f"{path}: must be a fixed key or an unconditional choice")
                if thaw(wanted) not in [thaw(v) for v in other.values]:
                    raise ConfigError(f"{path}: {thaw(wanted)!r} is not one of the choices "
                                      f"of space.{name}, so {key} would never be sampled")
            elif name in fixed and fixed[name] != thaw(wanted):
                raise ConfigError(f"{path}: fixed.{name} is {fixed[name]!r}, so {key} would "
                                  f"never be sampled; drop the condition or the key")
