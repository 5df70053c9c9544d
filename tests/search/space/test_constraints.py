"""Constraints (issue 19 item 5): validated once, met or violated by a trial's last epoch, and
the Pareto answer drawn from the feasible trials only."""

from __future__ import annotations

import math

import pytest

from spatialsearch.search.outcome.ranking import TrialOutcome, pareto_front
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.space.constraints import Constraint, feasible
from spatialsearch.search.space.objectives import Objective
from tests.refusals import assert_refused

BOTH = [{"metric": "val_accuracy", "mode": "max"}, {"metric": "segregation", "mode": "max"}]
BASE = {"objectives": BOTH, "scheduler": {"type": "moasha"},
        "fixed": {"datasets": ["digits"], "labels": 5, "epochs": 4},
        "space": {"transport": {"loguniform": [0.1, 100]}}}


def test_a_constraint_is_parsed_into_bounds_and_violations():
    config = search_config_from_dict({**BASE, "constraints": [
        {"metric": "val_accuracy", "min": 0.85}, {"metric": "transport", "max": 40}]})
    accuracy, transport = config.constraints
    assert accuracy == Constraint("val_accuracy", low=0.85)
    assert transport == Constraint("transport", high=40.0)
    assert accuracy.violation(0.80) == pytest.approx(0.05)
    assert accuracy.violation(0.90) == pytest.approx(-0.05)
    assert accuracy.violation(float("nan")) == math.inf and accuracy.violation(None) == math.inf
    assert accuracy.describe() == "val_accuracy >= 0.85"
    assert feasible(config.constraints, {"val_accuracy": 0.9, "transport": 40.0})
    assert not feasible(config.constraints, {"val_accuracy": 0.9, "transport": 41.0})
    assert not feasible(config.constraints, {"transport": 1.0})


@pytest.mark.parametrize("constraints, message", [
    ({"metric": "val_acc", "min": 0.8}, r"constraints\[0\]\.metric: must be one of"),
    ({"metric": "val_accuracy", "min": 1.5},
     r"constraints\[0\]\.min: val_accuracy lies in \[0, 1\], got 1\.5"),
    ({"metric": "transport", "max": -1}, r"constraints\[0\]\.max: transport lies in \[0, inf\]"),
    ({"metric": "segregation", "min": 0.9, "max": 0.6},
     r"constraints\[0\]: min 0\.9 > max 0\.6: no trial can meet it"),
    ({"metric": "val_accuracy"}, r"constraints\[0\]: neither min nor max"),
    ({"metric": "val_accuracy", "min": "high"}, r"constraints\[0\]\.min: must be a number"),
    ({"metric": "val_accuracy", "above": 0.8}, r"constraints\[0\]: unknown key 'above'"),
    ({"metric": "segregation_layer7", "min": 0.6},
     r"constraints\[0\]\.metric: segregation_layer7 names hidden layer 7"),
])
def test_bad_constraints_are_refused_in_one_line_with_nothing_written(tmp_path, capsys,
                                                                      constraints, message):
    assert_refused(tmp_path, capsys, {**BASE, "constraints": [constraints]}, message)


def test_a_constraint_on_segregation_needs_two_tasks(tmp_path, capsys):
    doc = {"metric": "val_accuracy", "fixed": {"datasets": ["digits"], "labels": 10},
           "space": BASE["space"], "constraints": [{"metric": "segregation", "min": 0.6}]}
    assert_refused(tmp_path, capsys, doc, r"constraints\[0\]\.metric: segregation needs >= 2")


def test_the_feasible_front_leaves_out_trials_that_fail_a_constraint():
    """a dominates b on nothing; with accuracy >= 0.85 a is infeasible, so b alone is the
    front and the hypervolume is b's."""
    objectives = (Objective("val_accuracy", "max"), Objective("segregation", "max"))
    outcomes = [TrialOutcome("a", True, (0.80, 0.95), 1.0, feasible=False),
                TrialOutcome("b", True, (0.90, 0.70), 2.0),
                TrialOutcome("c", False, (0.95, 0.99), 3.0)]  # stopped early: never on it
    front = pareto_front(objectives, outcomes, labels=5, num_tasks=2, started_at=0.0)
    assert front.members == ("b",) and front.infeasible == ("a",)
    assert front.hypervolume == pytest.approx((0.90 - 0.2) * (0.70 - 0.5))


def test_a_search_where_no_trial_is_feasible_still_ranks_its_trials():
    """Every trial fails the constraint (a tiny README search): the feasible group is empty,
    the infeasible trials follow, and nothing raises."""
    from spatialsearch.search.outcome.ranking import TrialRow, rank

    config = search_config_from_dict({**BASE, "constraints": [
        {"metric": "val_accuracy", "min": 0.95}]})
    rows = [TrialRow(f"t{i}", "TERMINATED", {}, 0.2 + i / 10, epochs, "", (), (0.2 + i / 10,
             0.5), feasible=False) for i, epochs in enumerate((4, 1, 4))]
    assert [r.trial_id for r in rank(config, rows)] == ["t2", "t0", "t1"]
    assert rank(config, []) == []
