"""Seed spread of a Pareto set: each front trial trained again with K further seeds, as Ray
trials of a second Tune experiment (<name>-reseed) logged as MLflow children of the search.

A trial's objectives are then summarised over its K + 1 runs (the search's and the K new
ones) as mean and sample standard deviation; a front member `survives` when its mean vector
is still non-dominated among the members' means. A front that does not survive reseeding is
noise, not a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from ray import tune
from ray.tune.search import Searcher

from spatialsearch.config import RunConfig
from spatialsearch.pareto import oriented, pareto_indices
from spatialsearch.search.config import SearchConfig
from spatialsearch.search.saved_state import SavedAttributes
from spatialsearch.search.tune_space import trial_constants, trial_folder

RESEED_TAG = "spatialsearch.reseed_of"


class ListedConfigs(SavedAttributes, Searcher):
    """A searcher that hands out the given configs in order, then FINISHED; `given` records
    which Tune trial got which config (by index), so equal configs stay apart."""

    def __init__(self, configs: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.configs = [dict(c) for c in configs]
        self.given: dict[str, int] = {}  # Tune trial id -> index into configs

    @property
    def handed(self) -> int:
        return len(self.given)

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        if self.handed >= len(self.configs):
            return Searcher.FINISHED
        self.given[trial_id] = self.handed
        return dict(self.configs[self.given[trial_id]])

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Nothing to learn: the configs are fixed."""


@dataclass(frozen=True)
class Spread:
    """One front trial over its K + 1 seeds."""

    trial_id: str
    seeds: tuple[int, ...]               # the search's seed first
    values: tuple[tuple[float, ...], ...]  # per seed, each objective at the last epoch
    survives: bool = True

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(float(v) for v in np.nanmean(np.array(self.values), axis=0))

    @property
    def std(self) -> tuple[float, ...]:
        """Sample standard deviation (ddof 1); 0 for a single run."""
        values = np.array(self.values)
        if len(values) < 2:
            return tuple(0.0 for _ in values[0])
        return tuple(float(v) for v in np.nanstd(values, axis=0, ddof=1))


def seed_of(params: dict[str, Any], config: SearchConfig) -> int:
    """The seed a trial ran with: searched, fixed, or RunConfig's default."""
    return int(params.get("seed", dict(config.fixed).get("seed", RunConfig().seed)))


def reseed_configs(config: SearchConfig, members: Sequence[tuple[str, dict[str, Any]]]
                   ) -> list[tuple[str, int, dict[str, Any]]]:
    """(origin trial id, seed, the trial's searched values with that seed) for seeds
    s + 1 .. s + K of each member (s: the member's own seed)."""
    planned = []
    for trial_id, params in members:
        base = seed_of(params, config)
        for offset in range(1, config.reseed + 1):
            planned.append((trial_id, base + offset, {**params, "seed": base + offset}))
    return planned


def run_reseeds(config: SearchConfig, trainable: Any, planned: list[tuple[str, int, dict]],
                callbacks: list, storage: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Train every planned config once (FIFO, no early stopping); returns (origin, seed) ->
    the trial's last result (its Tune trial id under "trial_id"), matched by the Tune trial
    each planned config was handed to (two front trials of equal params and seed stay
    apart). storage: RunConfig's storage keys (places.tune_storage)."""
    listed = ListedConfigs([c for _, _, c in planned])
    tuner = tune.Tuner(
        trainable, param_space=trial_constants(config),
        tune_config=tune.TuneConfig(search_alg=listed,
                                    num_samples=len(planned),
                                    max_concurrent_trials=config.max_concurrent_trials,
                                    reuse_actors=True, trial_dirname_creator=trial_folder),
        run_config=tune.RunConfig(name=f"{config.name}-reseed", **storage,
                                  failure_config=tune.FailureConfig(
                                      max_failures=config.max_failures),
                                  callbacks=callbacks, verbose=0))
    return planned_results(planned, listed.given, [(r.metrics or {}, r.error)
                                                   for r in tuner.fit()])


def planned_results(planned: Sequence[tuple[str, int, dict]], given: dict[str, int],
                    results: Sequence[tuple[dict[str, Any], Any]]
                    ) -> dict[tuple[str, int], dict[str, Any]]:
    """(origin, seed) -> last result of the Tune trial that planned[i] was given to (given:
    Tune trial id -> i); results are (metrics with "trial_id", error), failed ones left out."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for metrics, error in results:
        index = given.get(metrics.get("trial_id", ""))
        if index is not None and error is None:
            origin, seed, _ = planned[index]
            found[(origin, seed)] = dict(metrics)
    return found


def spreads(config: SearchConfig, members: Sequence[tuple[str, dict[str, Any], tuple]],
            found: dict[tuple[str, int], dict[str, Any]]) -> list[Spread]:
    """members: (trial id, params, its objective values). Then which means survive."""
    result = []
    for trial_id, params, values in members:
        base = seed_of(params, config)
        seeds, rows = [base], [tuple(values)]
        for offset in range(1, config.reseed + 1):
            last = found.get((trial_id, base + offset))
            if last is not None:
                seeds.append(base + offset)
                rows.append(tuple(float(last.get(o.metric, np.nan)) for o in config.objectives))
        result.append(Spread(trial_id, tuple(seeds), tuple(rows)))
    means = oriented(np.array([s.mean for s in result]).reshape(len(result), -1),
                     [o.mode for o in config.objectives])
    kept = set(pareto_indices(means))
    return [Spread(s.trial_id, s.seeds, s.values, i in kept) for i, s in enumerate(result)]
