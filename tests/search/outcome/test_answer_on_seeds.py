"""The answer decided on every seed, with known answers (issue: an answer worth acting on).

Each case failed on the code before it: the knee and the hypervolume came from the search
seed's values after reseeding; "best" was the first front member in row order; a minimised
accuracy took its chance level as reference (hypervolume 0); a trial stopped at its first
rung moved the reference and flipped the knee; MO-ASHA ignored the constraints; a NaN seed was
averaged away; identical vectors at a rung scored differently.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from spatialsearch.cli.tables import format_pareto
from spatialsearch.errors import ConfigError
from spatialsearch.pareto import crowding_distance, non_dominated_fronts, oriented
from spatialsearch.search.engine.moasha import MultiObjectiveASHA, rung_scores
from spatialsearch.search.outcome.files import front_summary
from spatialsearch.search.outcome.ranking import (
    Spread,
    TrialOutcome,
    on_seed_means,
    pareto_front,
    rank,
    survivors,
)
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.space.constraints import Constraint
from spatialsearch.search.space.objectives import Objective
from tests.search.outcome.test_answer import CONFIG  # two objectives, 4 epochs, reseed 2

TWO = (Objective("val_accuracy", "max"), Objective("segregation", "max"))
def _row(trial_id, objectives, epochs=4):
    return TrialRow(trial_id=trial_id, status="TERMINATED", params={"lr": 0.01},
                    best_metric=objectives[0], epochs=epochs, checkpoint="",
                    values=(objectives[0],) * epochs, objectives=objectives)


SINGLE = {"a": (0.99, 0.80), "b": (0.95, 0.95), "c": (0.90, 0.99)}
SEEDS = {"a": ((0.99, 0.80), (0.98, 0.81), (0.99, 0.79)),
         "b": ((0.95, 0.95), (0.85, 0.60), (0.86, 0.61)),   # lucky on the search's seed
         "c": ((0.90, 0.99), (0.91, 0.97), (0.89, 0.98))}


def _front():
    outcomes = [TrialOutcome(t, True, v, float(i)) for i, (t, v) in enumerate(SINGLE.items())]
    return pareto_front(TWO, outcomes, labels=5, num_tasks=2, started_at=0.0)


def _spreads():
    return survivors(TWO, [Spread(t, (7, 8, 9), SEEDS[t]) for t in SINGLE])


def test_front_hypervolume_and_knee_are_decided_on_the_seed_means():
    front = _front()
    # single seed: b scales to (0.949, 0.918), distance 0.096 to the ideal: the knee
    assert front.knee == "b" and front.members == ("a", "b", "c")
    settled = on_seed_means(front, _spreads())
    # means a (0.9867, 0.80), b (0.8867, 0.72), c (0.90, 0.98): a dominates b
    assert settled.members == ("a", "c") and settled.candidates == ("a", "b", "c")
    # c scales to (0.8898, 1): 0.110 from the ideal, a to (1, 0.625): 0.375
    assert settled.knee == "c"
    assert settled.hypervolume == pytest.approx((0.98667 - 0.2) * 0.30 + 0.70 * 0.18, abs=1e-4)
    assert settled.single_seed_hypervolume == front.hypervolume
    assert settled.basis == "mean of 3 seeds, last epoch" and front.basis.startswith("last")


def test_best_is_the_knee_of_the_front_the_answer_used():
    rows = [_row(t, v) for t, v in SINGLE.items()]
    assert rank(CONFIG, rows)[0].trial_id == "a"  # the front's first end in row order
    assert rank(CONFIG, rows, _front())[0].trial_id == "b"
    settled = on_seed_means(_front(), _spreads())
    assert [r.trial_id for r in rank(CONFIG, rows, settled)] == ["c", "a", "b"]


def test_the_summary_and_the_printed_lines_say_which_values_they_use():
    settled = on_seed_means(_front(), _spreads())
    pareto = front_summary(settled, {t: _row(t, v) for t, v in SINGLE.items()}, _spreads())
    assert pareto["front"] == ["a", "c"] and pareto["knee"] == "c"
    assert [m["trial_id"] for m in pareto["members"]] == ["a", "c", "b"]
    assert pareto["reference_rule"] == {"val_accuracy": "chance level",
                                        "segregation": "chance level"}
    text = format_pareto(pareto)
    assert "Pareto front (mean of 3 seeds, last epoch): 2 of 3 reseeded trials" in text
    assert "before reseeding (last epoch, search seed)" in text
    assert "recommended (knee, mean of 3 seeds, last epoch): c" in text
    line_b = next(line for line in text.splitlines() if line.startswith("b "))
    assert "dominated after reseeding" in line_b


def test_a_nan_in_any_seed_makes_the_member_invalid_and_it_is_shown():
    nan_seed = ((0.99, 0.99), (math.nan, 0.99), (0.99, 0.99))  # would dominate by nanmean
    spreads = survivors(TWO, [Spread("a", (7, 8, 9), nan_seed),
                              Spread("c", (7, 8, 9), SEEDS["c"])])
    assert spreads[0].invalid_seeds == (8,) and math.isnan(spreads[0].mean[0])
    assert [s.survives for s in spreads] == [False, True]
    settled = on_seed_means(_front(), spreads)
    assert settled.members == ("c",) and settled.knee == "c"
    pareto = front_summary(settled, {t: _row(t, v) for t, v in SINGLE.items()}, spreads)
    assert "(invalid: NaN at seed 8)" in format_pareto(pareto)
    nothing = on_seed_means(_front(), survivors(TWO, [Spread("a", (7, 8), nan_seed[:2])]))
    assert nothing.members == () and nothing.knee is None and nothing.hypervolume == 0.0


def test_a_minimised_accuracy_is_referred_beyond_its_worst_not_to_chance():
    objectives = (Objective("val_accuracy", "min"), Objective("segregation", "max"))
    outcomes = [TrialOutcome("a", True, (0.3, 0.90), 1.0),
                TrialOutcome("b", True, (0.5, 0.95), 2.0)]
    front = pareto_front(objectives, outcomes, labels=5, num_tasks=2, started_at=0.0)
    # chance 0.2 would lie on the better side: beyond the worst (0.5) by a tenth of 0.2
    assert front.reference == pytest.approx((0.52, 0.5))
    assert front.hypervolume == pytest.approx(0.22 * 0.40 + 0.02 * 0.05)
    # a scales to (1, 0.889), b to (0.091, 1): the knee is a, not the worst accuracy b
    assert front.knee == "a"


def test_a_trial_stopped_at_its_first_rung_does_not_move_the_reference():
    objectives = (Objective("val_accuracy", "max"), Objective("transport", "min"))
    outcomes = [TrialOutcome("a", True, (0.95, 40.0), 1.0),
                TrialOutcome("b", True, (0.90, 20.0), 2.0),
                TrialOutcome("stopped", False, (0.5, 400.0), 3.0),
                TrialOutcome("infeasible", True, (0.6, 900.0), 4.0, feasible=False)]
    front = pareto_front(objectives, outcomes, labels=5, num_tasks=2, started_at=0.0)
    assert front.reference == pytest.approx((0.2, 42.0))  # 40 + 0.1 x (40 - 20)
    # with 438 (from the stopped trial) the knee was a; beyond the full trials it is b
    assert front.knee == "b"


def test_a_reference_of_ones_own_is_used_and_checked():
    plain = {"scheduler": {"type": "fifo"}, "search": {"algorithm": "random"}}
    config = search_config_from_dict({**plain, "objectives": [
        {"metric": "val_accuracy", "mode": "max"},
        {"metric": "val_loss", "mode": "min", "reference": 2.5}]})
    assert config.objectives[1].reference == 2.5
    assert config.objectives[1].reference_value(5, 2, otherwise=9.0) == 2.5
    assert config.objectives[0].reference_value(5, 2, otherwise=9.0) == 0.2
    with pytest.raises(ConfigError, match=r"objectives\[1\]\.reference: must be a finite "
                                          r"number .* got 'high'"):
        search_config_from_dict({**plain, "objectives": [
            {"metric": "val_accuracy", "mode": "max"},
            {"metric": "val_loss", "mode": "min", "reference": "high"}]})


def _moasha(constraints=()):
    return MultiObjectiveASHA(["val_accuracy", "segregation"], ["max", "max"], max_t=50,
                              grace_period=5, reduction_factor=2, constraints=constraints)


def _arrive(scheduler, trial, accuracy, segregation, transport):
    return scheduler.decide(trial, {"epoch": 5, "val_accuracy": accuracy,
                                    "segregation": segregation, "transport": transport})


def test_moasha_ranks_a_rung_by_constrained_dominance():
    arrivals = [("big0", 0.99, 0.99, 400.0), ("big1", 0.98, 0.98, 300.0),
                ("feasible", 0.80, 0.70, 20.0)]
    blind, bounded = _moasha(), _moasha((Constraint("transport", high=40.0),))
    assert [_arrive(blind, *a) for a in arrivals][-1] == "STOP"  # the only feasible trial
    assert [_arrive(bounded, *a) for a in arrivals] == ["CONTINUE", "CONTINUE", "CONTINUE"]
    # infeasible ones rank by violation, less first, below every feasible one
    scores = rung_scores(oriented(np.array([[0.99, 0.99], [0.98, 0.98], [0.8, 0.7]]),
                                  ["max", "max"]), np.array([360.0, 260.0, 0.0]))
    assert scores[2] > scores[1] > scores[0]
    assert _arrive(bounded, "worse", 0.99, 0.99, math.nan) == "STOP"  # no value: unbounded


def test_identical_vectors_score_the_same():
    front = np.array([[0.0, 4.0], [1.0, 3.0], [1.0, 3.0], [2.0, 2.0], [4.0, 0.0]])
    distance = crowding_distance(front)
    assert distance[1] == distance[2]
    rng = np.random.default_rng(0)
    points = rng.integers(0, 6, size=(400, 2)).astype(float)  # many twins
    scores = rung_scores(points)
    for row in np.unique(points, axis=0):
        twins = np.flatnonzero((points == row).all(axis=1))
        assert np.ptp(scores[twins]) == 0.0
    assert len(non_dominated_fronts(points)) > 1
