"""The search's trainable on a real local Ray: several epochs per round trip, checkpoints
alone (ray_compat.buffered_trainable), and the plan's checkpoints."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ray import tune

from spatialsearch.search.engine.trainable import TrialPlan, spatial_trainable


class _Arrivals(tune.Callback):
    """Which epochs reached the driver in the same controller step (one actor call)."""

    def __init__(self) -> None:
        self.steps: dict[int, list[int]] = defaultdict(list)
        self.saved: list[int] = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.steps[iteration].append(result["training_iteration"])

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.saved.append(trial.last_result["training_iteration"])


def test_epochs_arrive_in_groups_and_every_checkpoint_on_its_own(ray_session, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("TUNE_RESULT_BUFFER_LENGTH", "2")  # what session.TUNE_SETTINGS sets
    arrivals = _Arrivals()
    config = {"datasets": ["digits"], "layers": [8], "epochs": 7, "batch": 256}
    trainable = spatial_trainable(TrialPlan(checkpoint_every=3))
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}), param_space=config,
        run_config=tune.RunConfig(name="buffered", storage_path=str(tmp_path), verbose=0,
                                  callbacks=[arrivals]))
    result = tuner.fit()[0]
    assert result.error is None
    groups = sorted(arrivals.steps.values())
    assert [epoch for group in groups for epoch in group] == list(range(1, 8))
    assert arrivals.saved == [3, 6, 7]
    for epoch in arrivals.saved:  # Tune saves before the trial trains on (ASHA decides there)
        assert [epoch] in groups
    assert any(len(group) > 1 for group in groups)
    reported = [json.loads(line)["training_iteration"]
                for line in Path(result.path, "result.json").read_text().splitlines()]
    assert reported == list(range(1, 8))
