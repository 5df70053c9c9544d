"""MO-ASHA on a real Ray Tune: a scripted stream of results, one trial at a time in a fixed
order, and the stop/continue decisions worked out by hand (grace 1, reduction factor 2,
4 epochs: rungs at epochs 1 and 2). A newcomer continues iff its score (-front +
c / (2 (1 + c)), c its crowding, +inf -> 0.5) is >= the median score of the vectors recorded
at the rung before it."""

from __future__ import annotations

import pytest
from ray import tune

from spatialsearch.search.engine.moasha import MultiObjectiveASHA
from spatialsearch.search.reseed import ListedConfigs

pytestmark = pytest.mark.slow

# per trial: (a, b) reported at every epoch; both maximised
SCRIPT = {
    "t0": (0.5, 0.5),    # first at rung 1 and at rung 2: continues
    "t1": (0.9, 0.9),    # rung 1: dominates t0 (0.5 vs -0.5): continues
    "t2": (0.1, 0.1),    # rung 1: front 2 (-1.5) below the median of (-0.5, 0.5): STOP
    "t3": (1.0, 0.0),    # rung 1: front 0 with t1 (0.5); median of (-0.5, 0.5, -1.5) = -0.5
    "t4": (0.05, 0.95),  # rung 1: an end of front {t4, t1, t3} (0.5) >= median -0.083
}
# t3 at rung 2 reports (0.2, 0.2) instead: front 2 (-1.5) below median 0 of t0, t1 -> STOP
LATE = {"t3": (0.2, 0.2)}
EXPECTED_EPOCHS = {"t0": 4, "t1": 4, "t2": 1, "t3": 2, "t4": 4}


def scripted(config: dict) -> None:
    for epoch in range(1, 5):
        a, b = LATE.get(config["name"], SCRIPT[config["name"]]) if epoch >= 2 else SCRIPT[
            config["name"]]
        tune.report({"epoch": epoch, "a": a, "b": b})


def test_moasha_decisions_on_a_scripted_stream(ray_session, tmp_path):
    scheduler = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=4, grace_period=1,
                                   reduction_factor=2)
    tuner = tune.Tuner(
        scripted,
        tune_config=tune.TuneConfig(
            search_alg=ListedConfigs([{"name": name} for name in SCRIPT]), num_samples=5,
            scheduler=scheduler, max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="moasha", verbose=0))
    epochs = {r.config["name"]: r.metrics["epoch"] for r in tuner.fit()}
    assert epochs == EXPECTED_EPOCHS


def test_the_same_stream_without_ray_gives_the_same_decisions():
    scheduler = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=4, grace_period=1,
                                   reduction_factor=2)
    decisions = {}
    for name, first in SCRIPT.items():
        for epoch in range(1, 5):
            a, b = LATE.get(name, first) if epoch >= 2 else first
            if scheduler.decide(name, {"epoch": epoch, "a": a, "b": b}) == "STOP":
                break
        decisions[name] = epoch
    assert decisions == EXPECTED_EPOCHS
    assert scheduler.stopped == 2
    # a result at a rung without an objective is invalid: it stops and is recorded
    assert scheduler.decide("t9", {"epoch": 1, "a": 0.0}) == "STOP"
    assert "t9" in scheduler.rungs[1] and scheduler.stopped == 3
