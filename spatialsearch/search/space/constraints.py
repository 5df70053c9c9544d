"""Bounds a trial must meet to count: the feasible front ("how strong may the costs be while
accuracy stays >= X").

    constraints:
      - {metric: val_accuracy, min: 0.85}    # and/or max:
      - {metric: transport, max: 40}

A trial is feasible when every constrained metric, at its last epoch, lies within its bounds.
Optuna gets each constraint as a violation (Trial.set_constraint: <= 0 feasible), so its
samplers prefer feasible regions; the Pareto answer is the front of the feasible trials, the
infeasible ones are listed apart. A missing or NaN value violates (+inf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from spatialsearch import metrics as m
from spatialsearch.errors import ConfigError
from spatialsearch.search.space.objectives import parse_metric
from spatialsearch.validation import mapping


def metric_range(metric: str) -> tuple[float, float]:
    """[low, high] of a reported metric (metrics.value_range): bounds outside it can never
    bind or never be met."""
    return m.value_range(metric)


@dataclass(frozen=True)
class Constraint:
    metric: str
    low: float = -math.inf   # `min:` in YAML
    high: float = math.inf   # `max:`

    def violation(self, value: Any) -> float:
        """How far value is outside [low, high] (<= 0: within); +inf when not a number."""
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            return math.inf
        return max(self.low - value, value - self.high)

    def describe(self) -> str:
        parts = ([f">= {self.low:g}"] if math.isfinite(self.low) else []) + \
            ([f"<= {self.high:g}"] if math.isfinite(self.high) else [])
        return f"{self.metric} {' and '.join(parts)}"


def parse_constraints(raw: Mapping[str, Any]) -> tuple[Constraint, ...]:
    """The search document's `constraints` list (absent: none).

    Raises:
        ConfigError: not a list; an entry that is not {metric, min and/or max}; an unknown
            metric; a bound that is not a number, lies outside the metric's range, or min > max;
            a metric constrained twice.
    """
    entries = raw.get("constraints", [])
    if not isinstance(entries, list):
        raise ConfigError(f"constraints: must be a list of {{metric, min, max}}, got {entries!r}")
    found: list[Constraint] = []
    for index, entry in enumerate(entries):
        path = f"constraints[{index}]"
        entry = mapping(entry, path)
        unknown = sorted(set(entry) - {"metric", "min", "max"}, key=str)
        if unknown or "metric" not in entry or not {"min", "max"} & entry.keys():
            bad = (f"unknown key {unknown[0]!r}" if unknown else
                   "no metric" if "metric" not in entry else "neither min nor max")
            raise ConfigError(f"{path}: {bad}; a constraint is {{metric: NAME, min: X}} and/or "
                              f"max: Y")
        metric = parse_metric(entry["metric"], f"{path}.metric")
        low, high = metric_range(metric)
        bounds = {}
        for side in ("min", "max"):
            if side not in entry:
                continue
            value = entry[side]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or \
                    not math.isfinite(value):
                raise ConfigError(f"{path}.{side}: must be a number, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"{path}.{side}: {metric} lies in [{low:g}, {high:g}], "
                                  f"got {value!r}")
            bounds[side] = float(value)
        if bounds.get("min", -math.inf) > bounds.get("max", math.inf):
            raise ConfigError(f"{path}: min {bounds['min']:g} > max {bounds['max']:g}: no "
                              f"trial can meet it")
        if any(c.metric == metric for c in found):
            raise ConfigError(f"{path}.metric: {metric!r} is already constrained; give min "
                              f"and max in one entry")
        found.append(Constraint(metric, bounds.get("min", -math.inf),
                                bounds.get("max", math.inf)))
    return tuple(found)


def feasible(constraints: tuple[Constraint, ...], result: Mapping[str, Any]) -> bool:
    """Every constraint met by a result (a trial's last epoch)."""
    return all(c.violation(result.get(c.metric)) <= 0 for c in constraints)
