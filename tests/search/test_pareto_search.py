"""A multi-objective search end to end on a real local Ray, MLflow store and Optuna storage:
the Pareto set, its reseeding, pareto.csv, MLflow tags and the hypervolume history."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from spatialsearch.pareto import hypervolume
from spatialsearch.search.outcome.files import HYPERVOLUME, PARETO_TAG, RESEED_TAG
from spatialsearch.search.run_context import tracking_uri
from spatialsearch.search.runner import run_search
from spatialsearch.search.space.config import search_config_from_dict

pytestmark = pytest.mark.slow


def test_pareto_search_with_reseeding(ray_session, tmp_path):
    config = search_config_from_dict({
        "name": "mo", "num_samples": 8, "max_concurrent_trials": 2, "output": str(tmp_path),
        "objectives": [{"metric": "val_accuracy", "mode": "max"},
                       {"metric": "segregation", "mode": "max"}],
        "scheduler": {"type": "moasha", "grace_period": 1, "reduction_factor": 2},
        "search": {"algorithm": "optuna", "sampler": "nsga2", "seed": 3}, "reseed": 1,
        "analyze": 0, "fixed": {"layers": [12, 8], "epochs": 4, "batch": 64},
        "space": {"transport": {"loguniform": [0.1, 100]}, "lr": {"loguniform": [3e-3, 3e-2]},
                  "proximity": {"loguniform": [0.01, 10]}}})
    environment = dict(os.environ)
    summary = run_search(config, quiet=True)
    assert dict(os.environ) == environment  # a search leaves the environment as it found it
    folder = tmp_path / "mo"
    pareto = summary.pareto
    members = [m["trial_id"] for m in pareto["members"]]
    full = [r for r in summary.table if r["epochs"] == 4]
    assert members and set(members) <= {r["trial_id"] for r in full}
    assert pareto["reference_point"] == {"val_accuracy": 0.2, "segregation": 0.5}
    assert len(pareto["history"]) == len(full)
    # the history is the search seed's; the answer is decided on the seed means
    assert pareto["history"][-1][HYPERVOLUME] == pareto["single_seed_hypervolume"]
    assert pareto["basis"] == "mean of 2 seeds, last epoch"
    front = pareto["front"]
    assert front and set(front) <= set(members) and pareto["knee"] in front
    means = np.array([[m["reseed"]["mean"]["val_accuracy"], m["reseed"]["mean"]["segregation"]]
                      for m in pareto["members"] if m["trial_id"] in front])
    assert pareto["hypervolume"] == pytest.approx(hypervolume(means, np.array([0.2, 0.5])))
    assert summary.best["trial_id"] == pareto["knee"]  # "best" is the knee
    assert summary.table[0]["trial_id"] == pareto["knee"]
    volumes = [h[HYPERVOLUME] for h in pareto["history"]]
    assert volumes == sorted(volumes)  # a front only grows
    for member in pareto["members"]:
        reseed = member["reseed"]
        assert reseed["seeds"] == [1, 2]
        assert set(reseed["mean"]) == {"val_accuracy", "segregation"}
    assert json.loads((folder / "summary.json").read_text())["pareto"] == json.loads(
        json.dumps(pareto))
    with open(folder / "pareto.csv") as file:
        rows = list(csv.DictReader(file))
    assert [r["trial"] for r in rows] == members and rows[0]["seeds"] == "1 2"

    client = MlflowClient(tracking_uri(config))
    runs = client.search_runs([client.get_experiment_by_name("spatialsearch").experiment_id],
                              max_results=100)
    trials = [r for r in runs if r.data.tags.get("spatialsearch.kind") == "trial"]
    reseeds = [r for r in trials if RESEED_TAG in r.data.tags]
    assert len(trials) == 8 + len(members) and len(reseeds) == len(members)
    assert sorted(r.data.tags[RESEED_TAG] for r in reseeds) == sorted(members)
    tagged = {r.data.tags["spatialsearch.trial_id"] for r in trials
              if r.data.tags.get(PARETO_TAG) == "true"}
    assert tagged == set(front)
    parent = summary.mlflow["parent_run_id"]
    history = client.get_metric_history(parent, HYPERVOLUME)
    assert sorted(m.step for m in history) == list(range(1, len(full) + 1))
    # segregation is measured at the checkpointed epochs: the rungs (1, 2) and the last
    some_full = next(r for r in trials if r.data.tags["spatialsearch.trial_id"] == members[0])
    steps = sorted(m.step for m in client.get_metric_history(some_full.info.run_id,
                                                             "segregation"))
    assert steps == [1, 2, 4]

    study = optuna.load_study(study_name="mo", storage=f"sqlite:///{folder / 'optuna.db'}")
    assert study.metric_names == ["val_accuracy", "segregation"]
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) == summary.stopped_early > 0
    measured = [m["trial_id"] for m in pareto["members"] if m["segregation"] == m["segregation"]]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.FAIL) == len(full)
    assert {t.user_attrs["trial_id"] for t in study.best_trials} == set(measured)
