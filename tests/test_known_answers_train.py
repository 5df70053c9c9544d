"""Known answers through the library's own training path, MLflow core and checkpoint writer:
what the fast suite missed before (alpha and beta swapped, a cost ignored, resumed epochs
logged twice, a checkpoint written in place)."""

from __future__ import annotations

import os

import pytest
import torch
from mlflow.tracking import MlflowClient

from spatialsearch import checkpoint, costs
from spatialsearch.config import trial_config_from_dict
from spatialsearch.search.mlflow_store import Store
from spatialsearch.search.tracking import SearchTracking, TrialRun
from spatialsearch.train import Trainer, task_loss
from tests import reference

ONE_STEP = {"datasets": ["digits"], "labels": 5, "layers": [6], "batch": 4096,
            "optimizer": "SGD", "lr": 0.5, "norm": "l2", "seed": 3}


def _parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().double() for k, v in trainer.model.named_parameters()}


def _step(alpha: float, beta: float, **extra) -> tuple[dict, dict]:
    """Parameters before and after one epoch (= one SGD step: the batch holds every sample)."""
    trainer = Trainer(trial_config_from_dict({**ONE_STEP, **extra, "proximity": alpha,
                                              "transport": beta}))
    before = _parameters(trainer)
    trainer.train_epoch()
    return before, _parameters(trainer)


def _cost_gradients(before: dict) -> tuple[dict, dict]:
    """d Proximity / d theta and d Transport / d theta at `before`, float64 reference loops."""
    config = trial_config_from_dict(ONE_STEP)
    trainer = Trainer(config)
    model = trainer.model.double()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(before[name])
    names = [n for n, _ in model.named_parameters()]
    params = list(model.parameters())
    prox, trans = reference.network_costs(model.spatial_layers, list(config.cost_layers), "l2")
    grads = []
    for value in (prox, trans):
        found = torch.autograd.grad(value, params, allow_unused=True)
        grads.append({n: torch.zeros_like(p) if g is None else g
                      for n, p, g in zip(names, params, found)})
    return grads[0], grads[1]


def test_trainer_scales_proximity_by_alpha_and_transport_by_beta():
    alpha, beta, lr = 0.7, 3.0, ONE_STEP["lr"]
    before, plain = _step(0.0, 0.0)
    _, with_alpha = _step(alpha, 0.0)
    _, with_beta = _step(0.0, beta)
    grad_p, grad_t = _cost_gradients(before)
    for name in before:
        # same seed, same batch: the task's part of the step cancels in the difference
        torch.testing.assert_close(with_alpha[name] - plain[name], -lr * alpha * grad_p[name],
                                   rtol=2e-4, atol=2e-6)
        torch.testing.assert_close(with_beta[name] - plain[name], -lr * beta * grad_t[name],
                                   rtol=2e-4, atol=2e-6)
    assert any(grad_p[n].abs().max() > 1e-3 for n in grad_p)  # both costs move something
    assert any(grad_t[n].abs().max() > 1e-3 for n in grad_t)


def test_zero_coefficients_train_on_exactly_the_task_loss():
    """The library's epoch with alpha = beta = 0 against one plain SGD step on the same batch
    (a second trainer of the same seed draws the same batch)."""
    before, after = _step(0.0, 0.0)
    twin = Trainer(trial_config_from_dict({**ONE_STEP, "proximity": 0.0, "transport": 0.0}))
    batch = next(iter(twin.train_batches.epoch()))
    loss = task_loss(twin.model(batch.inputs), batch.targets)
    grads = dict(zip([n for n, _ in twin.model.named_parameters()],
                     torch.autograd.grad(loss, list(twin.model.parameters()),
                                         allow_unused=True)))
    for name in before:
        grad = grads[name]
        expected = before[name] - ONE_STEP["lr"] * (0 if grad is None else grad.double())
        torch.testing.assert_close(after[name], expected, rtol=1e-5, atol=1e-6)
    positions = [n for n in before if n.endswith("positions")]
    assert positions and all(torch.equal(after[n], before[n]) for n in positions)


def test_torch_cost_path_trains_a_whole_epoch_like_the_numba_path(monkeypatch):
    """The path CUDA takes, run on the CPU, against the numba kernels: one epoch of several
    steps (batch 64) with both costs; float32, so within 1e-5 relative."""
    config = {**ONE_STEP, "batch": 64, "optimizer": "Adam", "lr": 0.01}
    _, numba_path = _step(1.0, 10.0, **config)
    monkeypatch.setattr(costs, "_fused", lambda *tensors: False)
    _, torch_path = _step(1.0, 10.0, **config)
    for name in numba_path:
        torch.testing.assert_close(torch_path[name], numba_path[name], rtol=1e-5, atol=1e-6)


def test_resumed_epochs_are_logged_once(tmp_path, monkeypatch):
    """A restored trial re-reports the epochs after its last checkpoint: the MLflow core
    (opened afresh, as after a driver crash) skips every epoch the run already holds."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}", "dedupe")
    trial = TrialRun("t1", {"lr": 0.1})
    first = SearchTracking(store, "s", "", tmp_path)
    first.open()
    first.log_epochs(trial, [(e, {"epoch": e, "val_accuracy": e / 10}) for e in (1, 2, 3)])
    again = SearchTracking(store, "s", "", tmp_path)
    again.open()
    assert again.runs == first.runs and again.logged_steps == {first.runs["t1"]: 3}
    again.log_epochs(trial, [(e, {"epoch": e, "val_accuracy": e / 10}) for e in (2, 3, 4, 5)])
    history = MlflowClient(store.uri).get_metric_history(first.runs["t1"], "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    assert again.unlogged == []


def test_a_resume_replays_epochs_the_dead_driver_never_wrote(tmp_path, monkeypatch):
    """The driver died with epochs 4-6 queued for MLflow; the snapshot it left held them
    (and a checkpoint at 6), so the restored trial reports from 7 on. MlflowCallback.replay
    of the recorded results fills 4-6 first: no gap, nothing twice."""
    from spatialsearch.search.ray_folder import RecordedTrial
    from spatialsearch.search.tracking_callback import MlflowCallback

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}", "replay")
    trial = TrialRun("t1", {"lr": 0.1})
    first = SearchTracking(store, "s", "", tmp_path)
    first.open()
    first.log_epochs(trial, [(e, {"epoch": e, "val_accuracy": e / 10}) for e in (1, 2, 3)])
    callback = MlflowCallback(SearchTracking(store, "s", "", tmp_path), interval=0.01)
    recorded = [{"trial_id": "t1", "epoch": e, "val_accuracy": e / 10} for e in range(1, 7)]
    callback.replay([RecordedTrial("t1", {"lr": 0.1}, recorded, None, "")])
    callback._put(("epoch", trial, (7, {"epoch": 7, "val_accuracy": 0.7})))  # the trial again
    callback.close()
    history = MlflowClient(store.uri).get_metric_history(first.runs["t1"], "val_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(e, e / 10) for e in range(1, 8)]


def test_settle_ends_runs_a_dead_driver_left_running(tmp_path, monkeypatch):
    """Trial t1 ended before the driver died, its end never written: settle ends it with its
    checkpoint; t2, not ended, stays RUNNING."""
    from spatialsearch.search.places import locate
    from spatialsearch.search.storage import StorageConfig

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}", "settle", tmp_path / "artifacts")
    tracking = SearchTracking(store, "s", "", tmp_path)
    tracking.open()
    for trial_id in ("t1", "t2"):
        tracking.start_trial(TrialRun(trial_id, {"lr": 0.1}))
    best = tmp_path / "best.pt"
    best.write_bytes(b"weights")
    settled = tracking.settle({"t1": ("FINISHED", locate(str(best), StorageConfig())),
                               "t3": ("FAILED", None)})
    client = MlflowClient(store.uri)
    assert settled == ["t1"]
    assert client.get_run(tracking.runs["t1"]).info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(tracking.runs["t1"], "checkpoint")] == [
        "checkpoint/best.pt"]
    assert client.get_run(tracking.runs["t2"]).info.status == "RUNNING"
    assert tracking.settle({"t1": ("FINISHED", None)}) == []  # nothing left to settle


def test_a_writer_that_dies_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "best.pt"
    checkpoint.atomic_save({"epoch": 1, "w": torch.ones(3)}, target)
    real_save = torch.save

    def dies_half_way(obj, file):
        real_save(obj, file)
        file.truncate(file.tell() // 2)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.atomic_save({"epoch": 2, "w": torch.zeros(1000)}, target)
    monkeypatch.undo()
    loaded = torch.load(target, weights_only=True)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["best.pt"]  # no temporary file left behind
