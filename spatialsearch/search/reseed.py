"""Reseeding, a run beside the search's own Tune run: each front trial (one objective: the
best trial) trained again with K further seeds, as Ray trials of a second Tune experiment
(<name>-reseed) logged as MLflow children of the search.

A trial's objectives are then summarised over its K + 1 runs (the search's and the K new
ones) as mean and sample standard deviation; a front member `survives` when its mean vector
is still non-dominated among the members' means (outcome.ranking.survivors).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
from ray import tune
from ray.tune.search import Searcher

from spatialsearch.config import RunConfig
from spatialsearch.search.engine.session import environment, file_loggers, tune_settings
from spatialsearch.search.engine.tune_space import trial_constants, trial_folder
from spatialsearch.search.outcome.files import RESEED_TAG
from spatialsearch.search.outcome.ranking import Spread, survivors
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.places.place import tune_storage
from spatialsearch.search.places.ray_folder import RAY_FOLDER
from spatialsearch.search.places.saved_state import SavedAttributes
from spatialsearch.search.run_context import RunContext
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.tracking.callback import MlflowCallback
from spatialsearch.search.tracking.runs import SearchTracking

_logger = logging.getLogger(__name__)


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
    return survivors(config.objectives, result)


def reseed_front(context: RunContext, members: Sequence[TrialRow],
                 trainable: Any) -> list[Spread]:
    """Train the members again with config.reseed further seeds each (the <name>-reseed
    experiment, its runs tagged RESEED_TAG under the search's parent run); their spreads.
    Nothing without `reseed` or members."""
    config, tracking = context.config, context.tracking
    if not config.reseed or not members:
        return []
    planned = reseed_configs(config, [(r.trial_id, r.params) for r in members])
    _logger.info("reseeding %d trials with %d further seeds each (%d trials)", len(members),
                 config.reseed, len(planned))
    reseeds = SearchTracking(tracking.store, config.name, config.source_hash, config.folder)
    callback = MlflowCallback(reseeds)
    try:
        with environment(tune_settings(bool(config.storage.uri))):
            found = run_reseeds(config, trainable, planned, [callback, *file_loggers()],
                                tune_storage(context.place.child(RAY_FOLDER)))
    finally:
        callback.close()
    for (origin, _), last in found.items():
        reseeds.tag_trial(str(last.get("trial_id")), RESEED_TAG, origin)
    tracking.unlogged.extend(reseeds.unlogged)
    return spreads(config, [(r.trial_id, r.params, r.objectives) for r in members], found)
