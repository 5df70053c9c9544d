"""Each workaround of spatialsearch.search.engine.ray_compat, tested against the installed Ray:
these fail when Ray's behaviour changes, which is when the workaround must be revisited."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from spatialsearch.errors import ConfigError
from spatialsearch.search.engine.ray_compat import PruneAwareOptunaSearch, check_ray_version
from spatialsearch.search.engine.rung_tpe import RungBook, RungMatchedTPESampler
from spatialsearch.search.engine.tune_space import DefineByRun
from spatialsearch.search.space.config import search_config_from_dict

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


def _stopped_stream(book: RungBook | None) -> OptunaSearch:
    """Six trials, full length 8, MO-ASHA rungs at epochs 2 and 4 (as decided elsewhere): the
    lower-numbered trials are the worst at their rungs, t4 and t5 reach the second rung."""
    sampler = (RungMatchedTPESampler(book, seed=0) if book is not None
               else optuna.samplers.TPESampler(seed=0))
    searcher = PruneAwareOptunaSearch(
        space=DefineByRun(CONFIG.space, {}), metric=["val_accuracy", "segregation"],
        mode=["max", "max"], full_epochs=8, book=book, sampler=sampler)
    vectors = {"t0": (0.50, 0.50), "t1": (0.55, 0.52), "t2": (0.70, 0.55), "t3": (0.80, 0.60),
               "t4": (0.85, 0.70), "t5": (0.90, 0.75)}
    for trial_id, (accuracy, segregation) in vectors.items():
        searcher.suggest(trial_id)
        last = 4 if trial_id in ("t4", "t5") else 2
        for epoch in (1, 2, 3, 4)[:last]:
            searcher.on_trial_result(trial_id, {"epoch": epoch, "val_accuracy": accuracy,
                                                "segregation": segregation + epoch / 100})
        searcher.on_trial_complete(trial_id, {"epoch": last, "val_accuracy": accuracy,
                                              "segregation": segregation + last / 100})
    return searcher


def test_stopped_trials_reach_tpe_through_their_values_at_the_rungs():
    """Optuna 5's multi-objective TPE ranks every PRUNED trial alike: its good group is the
    lowest-numbered. The searcher writes each trial's values at the judged epochs in the
    sampler's book, by Optuna trial number, and the good group holds the trials best at the
    rungs; all stay PRUNED."""
    from optuna.samplers._tpe.sampler import _split_trials

    plain = _stopped_stream(None)
    trials = plain._ot_study.get_trials(deepcopy=False)
    assert {t.number for t in _split_trials(plain._ot_study, trials, 3)[0]} == {0, 1, 2}
    searcher = _stopped_stream(RungBook(("max", "max"), (2, 4, 8)))
    assert all(t.state == TrialState.PRUNED for t in searcher._ot_study.trials)
    assert searcher.book.values[0] == {2: (0.50, pytest.approx(0.52))}
    assert set(searcher.book.values[5]) == {2, 4}
    assert searcher._sampler.good_numbers(searcher._ot_study) == {5}  # ceil(0.1 * 6) = 1
    assert searcher.book.good_group(range(6), [0.0] * 6, 3) == {3, 4, 5}


def test_constraints_reach_optuna_as_violations_of_the_last_epoch():
    from spatialsearch.search.space.constraints import Constraint

    searcher = PruneAwareOptunaSearch(
        space=DefineByRun(CONFIG.space, {}), metric=["val_accuracy", "segregation"],
        mode=["max", "max"], full_epochs=10,
        constraints=(Constraint("val_accuracy", low=0.85),))
    for trial_id, accuracy in (("t0", 0.80), ("t1", 0.90)):
        searcher.suggest(trial_id)
        searcher.on_trial_complete(trial_id, {"epoch": 10, "val_accuracy": accuracy,
                                              "segregation": 0.7})
    violations = [t.constraints["val_accuracy"] for t in searcher._ot_study.trials]
    assert violations == pytest.approx([0.05, -0.05])
    assert [t.state for t in searcher._ot_study.trials] == [TrialState.COMPLETE] * 2


def test_a_trial_stopped_at_a_rung_for_an_invalid_objective_is_fail_as_documented():
    """docs/search.md: an invalid trial enters Optuna as FAIL. MO-ASHA stops it at the rung
    (epoch 4 < 10), which used to make it PRUNED; a valid stopped trial stays PRUNED."""
    searcher = PruneAwareOptunaSearch(space=DefineByRun(CONFIG.space, {}),
                                      metric=["val_accuracy", "segregation"],
                                      mode=["max", "max"], full_epochs=10)
    for index, segregation in enumerate((float("nan"), 0.7)):
        searcher.suggest(f"t{index}")
        searcher.on_trial_complete(f"t{index}", {"epoch": 4, "val_accuracy": 0.9,
                                                 "segregation": segregation})
    assert [t.state for t in searcher._ot_study.trials] == [TrialState.FAIL,
                                                            TrialState.PRUNED]
