"""The answer is right on every input: the hypervolume's reference for metrics without a
chance level, the single-objective tie rule under mode min and NaN standard errors, reseeds
matched to their front trial by trial id, and the keys that set the budget or a chance level
refused when searched. Each case failed before (worked out by hand in its docstring)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialsearch.errors import ConfigError
from spatialsearch.pareto import hypervolume, oriented
from spatialsearch.search.outcome.ranking import (
    Candidate,
    TrialOutcome,
    beyond_worst,
    pareto_front,
    rank_single,
)
from spatialsearch.search.reseed import ListedConfigs, planned_results, spreads
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.space.objectives import Objective


def test_every_front_member_adds_volume_without_a_chance_level():
    """(val_accuracy max, transport min), a = (0.90, 5), b = (0.95, 9), 5 labels: the
    reference was (0.2, 9), the worst transport seen, so b lay on the boundary and the volume
    was a's alone, 0.7 x 4 = 2.8. Now transport's reference is 9 + 0.1 x (9 - 5) = 9.4:
    a's box 0.7 x 4.4 = 3.08, plus b's slab (0.95 - 0.9) x (9.4 - 9) = 0.02."""
    objectives = (Objective("val_accuracy", "max"), Objective("transport", "min"))
    outcomes = [TrialOutcome("a", True, (0.90, 5.0), 1.0),
                TrialOutcome("b", True, (0.95, 9.0), 2.0)]
    front = pareto_front(objectives, outcomes, labels=5, num_tasks=2, started_at=0.0)
    assert front.reference == pytest.approx((0.2, 9.4))
    assert front.members == ("b", "a") and front.hypervolume == pytest.approx(3.10)
    points = oriented(np.array([o.values for o in outcomes]), ["max", "min"])
    reference = oriented(np.array([front.reference]), ["max", "min"])[0]
    for left_out in range(2):
        rest = np.delete(points, left_out, axis=0)
        assert hypervolume(rest, reference) < front.hypervolume


@pytest.mark.parametrize("values, mode, expected", [
    ([5.0, 9.0], "min", 9.4), ([0.2, 0.6], "max", 0.16), ([3.0, 3.0], "min", 3.3),
    ([-2.0], "max", -2.2), ([0.0], "min", 0.1), ([math.nan, 1.0, math.inf], "min", 1.1),
    ([], "max", 0.0),
])
def test_beyond_worst_known_answers(values, mode, expected):
    assert beyond_worst(values, mode) == pytest.approx(expected)


def test_the_tie_rule_follows_mode_min():
    """val_accuracy under mode min (the worst accuracy first): the top is the lowest; a trial
    0.3 above it is not within 0.01 of it. Before, top.best - c.best <= se held for every
    trial (negative), so all tied and the lowest loss won."""
    candidates = [Candidate("low", 0.50, val_loss=0.9, accuracy_se=0.01),
                  Candidate("high", 0.80, val_loss=0.1, accuracy_se=0.01),
                  Candidate("near", 0.505, val_loss=0.5, accuracy_se=0.01)]
    assert rank_single("val_accuracy", "min", candidates) == ["near", "low", "high"]


def test_a_nan_standard_error_counts_as_zero_not_as_no_ties():
    """max(nan, 0.02) was nan or 0.02 by argument order, and d <= nan is False: ties were off.
    Now a NaN SE is 0 and the other's SE still widens the tie."""
    candidates = [Candidate("top", 0.99, val_loss=0.5, accuracy_se=math.nan),
                  Candidate("close", 0.98, val_loss=0.1, accuracy_se=0.02),
                  Candidate("far", 0.90, val_loss=0.01, accuracy_se=math.nan)]
    assert rank_single("val_accuracy", "max", candidates) == ["close", "top", "far"]
    both_nan = [Candidate("a", 0.99, 0.5, math.nan), Candidate("b", 0.98, 0.1, math.nan)]
    assert rank_single("val_accuracy", "max", both_nan) == ["a", "b"]
    nan_best = [Candidate("nan", math.nan, 0.0, 0.0), Candidate("x", 0.5, 1.0, 0.0)]
    assert rank_single("val_accuracy", "max", nan_best) == ["x", "nan"]


def test_reseeds_are_matched_by_trial_id_not_by_config():
    """Two front trials with equal params and seed: their reseeds have equal configs. Matched
    by config, one front trial got both runs and the other none (std 0). Matched by the Tune
    trial each planned config was handed to, each gets its own."""
    params = {"lr": 0.01, "seed": 0}
    planned = [("front_a", 1, {**params, "seed": 1}), ("front_b", 1, {**params, "seed": 1})]
    listed = ListedConfigs([c for _, _, c in planned])
    assert listed.suggest("tune_1") == listed.suggest("tune_2") == {"lr": 0.01, "seed": 1}
    assert listed.suggest("tune_3") == "FINISHED" and listed.handed == 2
    found = planned_results(planned, listed.given, [
        ({"trial_id": "tune_2", "val_accuracy": 0.7}, None),
        ({"trial_id": "tune_1", "val_accuracy": 0.9}, None),
        ({"trial_id": "tune_9", "val_accuracy": 0.1}, None)])  # not ours: ignored
    assert found == {("front_a", 1): {"trial_id": "tune_1", "val_accuracy": 0.9},
                     ("front_b", 1): {"trial_id": "tune_2", "val_accuracy": 0.7}}
    config = search_config_from_dict({
        "reseed": 1, "objectives": [{"metric": "val_accuracy", "mode": "max"},
                                    {"metric": "segregation", "mode": "max"}],
        "scheduler": {"type": "moasha"}, "fixed": {"epochs": 4},
        "space": {"lr": {"loguniform": [0.001, 0.1]}}})
    found[("front_a", 1)]["segregation"] = found[("front_b", 1)]["segregation"] = 0.8
    result = spreads(config, [("front_a", params, (0.8, 0.8)), ("front_b", params, (0.8, 0.8))],
                     found)
    assert [s.values for s in result] == [((0.8, 0.8), (0.9, 0.8)), ((0.8, 0.8), (0.7, 0.8))]
    assert [s.std[0] for s in result] == pytest.approx([0.0707107, 0.0707107])


@pytest.mark.parametrize("space, message", [
    ({"epochs": {"choice": [5, 10]}}, r"^space\.epochs: cannot be searched: it sets every "
                                      r"trial's length and the scheduler's max_t; give it "
                                      r"under fixed, one search per value$"),
    ({"labels": {"choice": [2, 5]}}, r"^space\.labels: cannot be searched: it sets the tasks "
                                     r"and the chance level of accuracy"),
    ({"datasets": {"choice": [["digits"], ["digits", "digits"]]}},
     r"^space\.datasets: choices must make the same number of tasks \(segregation's chance "
     r"level 1/T comes from it\), got \['digits'\]: 2, \['digits', 'digits'\]: 4$"),
])
def test_keys_that_set_the_budget_or_a_chance_level_are_refused_when_searched(space, message):
    with pytest.raises(ConfigError, match=message):
        search_config_from_dict({"fixed": {"epochs": 4} if "epochs" not in space else {},
                                 "space": {"lr": {"loguniform": [0.001, 0.1]}, **space}})


def test_datasets_of_one_task_count_may_be_searched():
    config = search_config_from_dict({"fixed": {"epochs": 4}, "space": {
        "datasets": {"choice": [["digits"], ["MNIST"]]}}})
    assert config.dataset_choices == [("digits",), ("MNIST",)]


def test_the_knee_is_the_member_closest_to_the_ideal_point():
    """Front (accuracy, segregation), reference (0.2, 0.5): best (0.95, 0.95), spans 0.75 and
    0.45. a = (0.95, 0.60): z = (1, 0.222), distance 0.778; b = (0.90, 0.90): z = (0.933,
    0.889), distance 0.130; c = (0.50, 0.95): z = (0.4, 1), distance 0.6. The knee is b."""
    from spatialsearch.search.outcome.ranking import knee_index

    objectives = (Objective("val_accuracy", "max"), Objective("segregation", "max"))
    outcomes = [TrialOutcome("a", True, (0.95, 0.60), 1.0),
                TrialOutcome("b", True, (0.90, 0.90), 2.0),
                TrialOutcome("c", True, (0.50, 0.95), 3.0),
                TrialOutcome("d", True, (0.40, 0.55), 4.0)]  # dominated
    front = pareto_front(objectives, outcomes, labels=5, num_tasks=2, started_at=0.0)
    assert front.members == ("a", "b", "c") and front.knee == "b"
    assert knee_index(np.zeros((0, 2)), np.zeros(2)) is None
    # a front with no spread above the reference in a column scales it to 1
    assert knee_index(np.array([[0.3, 0.1], [0.2, 0.1]]), np.array([0.0, 0.1])) == 0
