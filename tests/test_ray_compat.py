"""Each workaround of spatialsearch.search.ray_compat, tested against the installed Ray: these
fail when Ray's behaviour changes, which is when the workaround must be revisited."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from spatialsearch.errors import ConfigError
from spatialsearch.search.ray_compat import PruneAwareOptunaSearch, check_ray_version
from spatialsearch.search.tune_space import DefineByRun
from spatialsearch.search.config import search_config_from_dict

CONFIG = search_config_from_dict({"fixed": {"epochs": 10},
                                  "space": {"lr": {"loguniform": [0.001, 0.1]}}})


def _states(searcher: OptunaSearch) -> list[TrialState]:
    ends = [({"epoch": 4, "val_accuracy": 0.9}, False),   # stopped early by the scheduler
            ({"epoch": 10, "val_accuracy": 0.8}, False),  # ran every epoch
            (None, True),                                 # failed
            ({"epoch": 10, "val_accuracy": float("nan")}, False),  # unmeasurable
            ({"epoch": 10}, False)]                       # an objective missing
    for index, (result, error) in enumerate(ends):
        searcher.suggest(f"t{index}")
        searcher.on_trial_complete(f"t{index}", result, error=error)
    return [t.state for t in searcher._ot_study.trials]


def test_stock_optuna_search_counts_a_stopped_trial_complete():
    """Ray 2.60's behaviour that PruneAwareOptunaSearch exists for."""
    stock = OptunaSearch(space=DefineByRun(CONFIG.space, {}), metric="val_accuracy",
                         mode="max")
    # the NaN trial stays RUNNING: Optuna refuses NaN and Ray only logs it; a missing metric
    # is told PRUNED, as if the scheduler had stopped a full trial
    assert _states(stock) == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
                              TrialState.RUNNING, TrialState.PRUNED]


def test_stopped_trials_enter_optuna_as_pruned():
    ours = PruneAwareOptunaSearch(space=DefineByRun(CONFIG.space, {}), metric="val_accuracy",
                                  mode="max", full_epochs=10)
    assert _states(ours) == [TrialState.PRUNED, TrialState.COMPLETE, TrialState.FAIL,
                             TrialState.FAIL, TrialState.FAIL]
    assert ours._ot_study.trials[1].value == 0.8


def test_a_full_trial_missing_an_objective_is_fail_with_several_objectives():
    """Stock Ray tells Optuna [acc, None]: Optuna refuses it, Ray logs the error and the trial
    stays RUNNING in optuna.db. Ours tells FAIL."""
    kwargs = {"space": DefineByRun(CONFIG.space, {}), "metric": ["val_accuracy", "segregation"],
              "mode": ["max", "max"]}
    states = []
    for searcher in (OptunaSearch(**kwargs), PruneAwareOptunaSearch(**kwargs, full_epochs=10)):
        searcher.suggest("t0")
        searcher.on_trial_complete("t0", {"epoch": 10, "val_accuracy": 0.9})
        searcher.suggest("t1")
        searcher.on_trial_complete("t1", {"epoch": 10, "val_accuracy": 0.9,
                                          "segregation": float("inf")})
        states.append([t.state for t in searcher._ot_study.trials])
    assert states[0][0] == TrialState.RUNNING
    assert states[1] == [TrialState.FAIL, TrialState.FAIL]


def test_an_untested_ray_is_refused_in_one_line():
    check_ray_version()  # the installed one
    with pytest.raises(ConfigError, match=r"^ray: version 2\.61\.0 is installed, spatialsearch "
                                          r"is tested with 2\.60\.0; install that"):
        check_ray_version("2.61.0")
