"""Known answers through the library's own training path: the trainer scales proximity by
alpha and transport by beta (not swapped, none ignored), zero costs train on the task loss
alone, and the torch cost path trains an epoch like the numba one."""

from __future__ import annotations

import torch

from spatialsearch import costs
from spatialsearch.config import trial_config_from_dict
from spatialsearch.evaluation import task_loss
from spatialsearch.train import Trainer
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
