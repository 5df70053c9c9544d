"""A multi-objective search's answer from known trial results: the study's states and values,
pareto.csv, the printed table, reseed spreads and which front members survive them."""

from __future__ import annotations

import csv
import math

import pytest

from spatialsearch.cli.tables import format_pareto
from spatialsearch.search.engine.study import build_study, study_record
from spatialsearch.search.outcome.files import front_summary, write_pareto_csv
from spatialsearch.search.outcome.ranking import Spread, TrialOutcome, pareto_front
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.reseed import reseed_configs, spreads
from spatialsearch.search.space.config import search_config_from_dict

CONFIG = search_config_from_dict({
    "name": "mo", "reseed": 2, "fixed": {"epochs": 4, "seed": 7},
    "objectives": [{"metric": "val_accuracy", "mode": "max"},
                   {"metric": "segregation", "mode": "max"}],
    "scheduler": {"type": "moasha", "grace_period": 1},
    "space": {"lr": {"loguniform": [1e-4, 1e-1]}}})


def _row(trial_id, epochs, objectives, status="TERMINATED", lr=0.01):
    return TrialRow(trial_id=trial_id, status=status, params={"lr": lr},
                    best_metric=objectives[0], epochs=epochs, checkpoint="",
                    values=(objectives[0],) * epochs, objectives=objectives)


ROWS = [_row("a", 4, (0.95, 0.70)), _row("b", 4, (0.90, 0.90), lr=0.02),
        _row("c", 4, (0.80, 0.60)), _row("d", 2, (0.99, 0.99)),
        _row("e", 4, (0.97, math.nan)), _row("f", 1, (0.2, 0.5), status="ERROR")]


def test_multi_objective_study_states_and_values():
    study = build_study(study_record(CONFIG, [r.__dict__ for r in ROWS]))
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED", "FAIL", "FAIL"]
    assert study.trials[1].values == [0.90, 0.90]
    assert study.metric_names == ["val_accuracy", "segregation"]
    assert {t.user_attrs["trial_id"] for t in study.best_trials} == {"a", "b"}


def test_reseed_plans_seeds_after_the_trials_own():
    planned = reseed_configs(CONFIG, [("a", {"lr": 0.01}), ("b", {"lr": 0.02, "seed": 3})])
    assert planned == [("a", 8, {"lr": 0.01, "seed": 8}), ("a", 9, {"lr": 0.01, "seed": 9}),
                       ("b", 4, {"lr": 0.02, "seed": 4}), ("b", 5, {"lr": 0.02, "seed": 5})]


def test_spreads_mean_std_and_which_members_survive():
    found = {("a", 8): {"val_accuracy": 0.93, "segregation": 0.50},
             ("a", 9): {"val_accuracy": 0.91, "segregation": 0.60},
             ("b", 8): {"val_accuracy": 0.92, "segregation": 0.88}}  # b's seed 9 failed
    result = spreads(CONFIG, [("a", {"lr": 0.01}, (0.95, 0.70)),
                              ("b", {"lr": 0.02}, (0.90, 0.90))], found)
    a, b = result
    assert a.seeds == (7, 8, 9) and b.seeds == (7, 8)
    assert a.mean == pytest.approx((0.93, 0.60)) and a.std == pytest.approx((0.02, 0.10))
    assert b.mean == pytest.approx((0.91, 0.89))
    assert b.std == pytest.approx((0.0141421356, 0.0141421356))
    assert a.survives and b.survives  # (0.93, 0.60) and (0.91, 0.89): neither dominates
    lost = spreads(CONFIG, [("a", {"lr": 0.01}, (0.95, 0.70)),
                            ("b", {"lr": 0.02}, (0.90, 0.90))],
                   {("a", 8): {"val_accuracy": 0.80, "segregation": 0.50}})
    assert [s.survives for s in lost] == [False, True]  # a's mean (0.875, 0.6) is dominated


def test_pareto_csv_and_table(tmp_path):
    outcomes = [TrialOutcome(r.trial_id, r.status != "ERROR" and r.epochs == 4, r.objectives,
                             float(i)) for i, r in enumerate(ROWS)]
    front = pareto_front(CONFIG.objectives, outcomes, labels=5, num_tasks=2, started_at=0.0)
    # e has the best accuracy but no segregation: invalid, so never on the front
    assert front.members == ("a", "b")
    spread = [Spread("a", (7, 8), ((0.95, 0.70), (0.93, 0.50)), survives=True)]
    pareto = front_summary(front, {r.trial_id: r for r in ROWS}, spread)
    assert pareto["hypervolume"] == pytest.approx((0.95 - 0.2) * (0.70 - 0.5) + (
        0.90 - 0.2) * (0.90 - 0.70))
    path = write_pareto_csv(tmp_path / "pareto.csv", pareto)
    with open(path) as file:
        rows = list(csv.DictReader(file))
    assert [r["trial"] for r in rows] == ["a", "b"]
    assert rows[0]["seeds"] == "7 8" and float(rows[0]["val_accuracy_mean"]) == 0.94
    assert rows[1]["seeds"] == "" and rows[1]["lr"] == "0.02"
    text = format_pareto(pareto)
    assert "0.9400 ± 0.0141" in text and "0.6000 ± 0.1414" in text
    assert text.splitlines()[-2].startswith(
        "Pareto front (last epoch, search seed): 2 trials; hypervolume 0.2900")
    # a = (0.95, 0.70), b = (0.90, 0.90) over (0.2, 0.5): z_a = (1, 0.5), z_b = (0.933, 1)
    assert pareto["knee"] == "b" and text.splitlines()[-1].startswith(
        "recommended (knee, last epoch, search seed): b,")
