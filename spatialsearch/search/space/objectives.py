"""What a search optimises: one objective (metric + mode) or several (a Pareto search).

    metric: val_accuracy          # single-objective form
    mode: max
    objectives:                   # multi-objective form (instead of metric/mode)
      - {metric: val_accuracy, mode: max}
      - {metric: segregation, mode: max}

    objectives:                   # a reference of your own (the hypervolume's corner)
      - {metric: val_loss, mode: min, reference: 2.5}

Reference point of the hypervolume (reference_value), per objective, the first that applies:
  1. the objective's own `reference:`;
  2. its chance level, when it lies on the worse side, i.e. the objective is maximised:
     1/C for accuracies (C = labels per task), 1/T for segregation (T tasks: a k-NN guess of
     a neuron's task from its position is right 1/T of the time at random), 0 for
     modularity (Barber's bipartite Q of a partition no better than a random one), for the
     positions split (regions of space no better for their task than for the others) and
     for selectivity (no neuron prefers a task);
  3. a tenth of the range beyond the worst value of the full feasible trials
     (outcome.ranking.beyond_worst), so that every front member adds volume.
A minimised accuracy never takes its chance level: it would lie on the better side and give
every trial zero volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Literal, Sequence

from spatialsearch import metrics as m
from spatialsearch.errors import ConfigError
from spatialsearch.validation import literal, mapping, text

if TYPE_CHECKING:
    from spatialsearch.config import TrialConfig

Mode = Literal["max", "min"]
#: metrics a search may optimise (per-task and per-layer names are accepted too).
METRICS = (m.VAL_ACCURACY, m.VAL_LOSS, m.TRAIN_LOSS, m.POSITIONS_SPLIT, m.SELECTIVITY,
           m.SEGREGATION, m.MODULARITY, m.PROXIMITY, m.TRANSPORT)
_PREFIXES = (m.TASK_ACCURACY_PREFIX, m.LAYER_SEGREGATION_PREFIX, m.MODULARITY_PREFIX,
             m.SELECTIVITY_PREFIX)
#: metrics whose chance level is 0 (their null), by prefix
_ZERO_AT_CHANCE = (m.MODULARITY, m.POSITIONS_SPLIT, m.SELECTIVITY)


@dataclass(frozen=True)
class Objective:
    metric: str        # a reported metric (METRICS, val_accuracy_taskN, segregation_layerN)
    mode: Mode         # max or min
    reference: float | None = None  # the hypervolume's reference, if the user gives one

    def chance_level(self, labels: int, num_tasks: int) -> float | None:
        """The metric's value at chance, None where it has none."""
        if self.metric.startswith(m.VAL_ACCURACY):
            return 1.0 / labels
        if self.metric.startswith(m.SEGREGATION):
            return 1.0 / num_tasks
        if self.metric.startswith(_ZERO_AT_CHANCE):
            return 0.0
        return None

    def reference_value(self, labels: int, num_tasks: int, otherwise: float) -> float:
        """The hypervolume's reference for this objective: the user's, else the chance level
        where it lies on the worse side (mode max), else `otherwise` (beyond the worst)."""
        if self.reference is not None:
            return self.reference
        chance = self.chance_level(labels, num_tasks)
        return chance if chance is not None and self.mode == "max" else otherwise


def parse_metric(raw: Any, path: str) -> str:
    metric = text(raw, path)
    if metric not in METRICS and not any(metric.startswith(p) and metric[len(p):].isdigit()
                                         for p in _PREFIXES):
        raise ConfigError(f"{path}: must be one of {', '.join(METRICS)} (or val_accuracy_taskN, "
                          f"segregation_layerN, modularity_layerN, selectivity_layerN), "
                          f"got {raw!r}")
    return metric


def parse_objectives(raw: dict[str, Any]) -> tuple[Objective, ...]:
    """The objectives of a search document: its `objectives` list, else metric/mode.

    Raises:
        ConfigError: both forms given, an empty or non-list `objectives`, an entry that is not
            {metric, mode}, an unknown metric, a mode other than max/min, a duplicate metric.
    """
    if "objectives" not in raw:
        return (Objective(parse_metric(raw.get("metric", m.VAL_ACCURACY), "metric"),
                          literal(raw.get("mode", "max"), "mode", Mode)),)
    both = sorted({"metric", "mode"} & raw.keys())
    if both:
        raise ConfigError(f"{both[0]}: give either objectives or metric/mode, not both")
    entries = raw["objectives"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"objectives: must be a non-empty list of {{metric, mode}}, "
                          f"got {entries!r}")
    found: list[Objective] = []
    for index, entry in enumerate(entries):
        path = f"objectives[{index}]"
        entry = mapping(entry, path)
        unknown = sorted(set(entry) - {"metric", "mode", "reference"}, key=str)
        if unknown or "metric" not in entry:
            bad = f"unknown key {unknown[0]!r}" if unknown else "no metric"
            raise ConfigError(f"{path}: {bad}; an objective is {{metric: NAME, mode: max|min}} "
                              f"with an optional reference: NUMBER")
        objective = Objective(parse_metric(entry["metric"], f"{path}.metric"),
                              literal(entry.get("mode", "max"), f"{path}.mode", Mode),
                              _reference(entry.get("reference"), f"{path}.reference"))
        if any(o.metric == objective.metric for o in found):
            raise ConfigError(f"{path}.metric: {objective.metric!r} is already an objective")
        found.append(objective)
    return tuple(found)


def _reference(raw: Any, path: str) -> float | None:
    """An objective's own reference: a finite number, or absent."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ConfigError(f"{path}: must be a finite number (the hypervolume's reference for "
                          f"this objective), got {raw!r}")
    return float(raw)


def check_objectives(objectives: Sequence[Objective], scheduler: str, algorithm: str,
                     sampler: str) -> None:
    """The scheduler and sampler must handle this many objectives."""
    count = len(objectives)
    if scheduler == "moasha" and count < 2:
        raise ConfigError("scheduler.type: moasha ranks several objectives, this search has "
                          f"one ({objectives[0].metric}); use asha, or list objectives")
    if scheduler == "asha" and count > 1:
        raise ConfigError(f"scheduler.type: asha ranks one metric, this search has {count} "
                          f"objectives; use moasha or fifo")
    if count > 1 and algorithm == "optuna" and sampler == "cmaes":
        raise ConfigError("search.sampler: cmaes optimises one objective; use tpe, nsga2 or "
                          "random for several")


def check_meaningful(objectives: Sequence[Objective], paths: Sequence[str],
                     trials: Iterable[TrialConfig]) -> None:
    """Each objective must mean something for every trial the space can make: segregation
    (and segregation_layerN) needs T >= 2 tasks, val_accuracy_taskN a task N < T,
    segregation_layerN a hidden layer N < L.

    Raises:
        ConfigError: at the objective's key path, with the trial's tasks or layers.
    """
    for trial in trials:
        tasks, hidden = trial.data.num_tasks, len(trial.model.layers)
        made = (f"datasets {list(trial.data.datasets)} with labels {trial.data.labels} make "
                f"{tasks} task{'s' * (tasks != 1)} (ceil(classes / labels) per dataset)")
        for objective, path in zip(objectives, paths):
            metric = objective.metric
            if metric.startswith((m.SEGREGATION, m.MODULARITY)) and tasks < 2:
                raise ConfigError(f"{path}: {metric} needs >= 2 tasks; {made}; lower labels "
                                  f"or add a dataset")
            index = metric.rpartition("task" if metric.startswith(m.TASK_ACCURACY_PREFIX)
                                      else "layer")[2]
            if metric.startswith(m.TASK_ACCURACY_PREFIX) and int(index) >= tasks:
                raise ConfigError(f"{path}: {metric} names task {index}; {made} "
                                  f"(0..{tasks - 1})")
            if metric.startswith((m.LAYER_SEGREGATION_PREFIX, m.MODULARITY_PREFIX)) \
                    and int(index) >= hidden:
                raise ConfigError(f"{path}: {metric} names hidden layer {index}; layers "
                                  f"{list(trial.model.layers)} have {hidden} (0..{hidden - 1})")


def modes(objectives: Sequence[Objective]) -> list[str]:
    return [o.mode for o in objectives]


def names(objectives: Sequence[Objective]) -> list[str]:
    return [o.metric for o in objectives]
