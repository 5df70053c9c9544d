"""One training loop: (TrialConfig, data) -> per-epoch metrics, best weights, resumable state.

What it does: docs/reference.md, model 5.
Loss = task loss + alpha * Proximity + beta * Transport, the costs computed
once per step. Evaluation runs under torch.no_grad (the original kept gradients on). Per-task
accuracies read the (B, T) targets, so no label is ever mutated (the original's sequential
per-task accuracies were wrong for that reason). Seeds torch, numpy and random; deterministic
on the CPU for a seed and thread count.
"""

from __future__ import annotations

import inspect
import random
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spatialsearch import metrics as m
from spatialsearch.config import TrialConfig
from spatialsearch.costs import CostWorkspace, penalised_backward
from spatialsearch.data.modes import TaskBatches
from spatialsearch.data.sources import TaskData, TaskSet, load_task_data
from spatialsearch.errors import ConfigError, SpatialSearchError
from spatialsearch.evaluation import evaluate, task_loss
from spatialsearch.measures import task_measures
from spatialsearch.models import SpatialNetwork, build_model

# Optimizers with a fused CPU/CUDA kernel: one launch for all parameters instead of ~10 per
# parameter tensor. Chosen unless the user sets fused/foreach; same arithmetic.
_FUSED_CAPABLE = ("Adam", "AdamW", "SGD", "Adagrad")


class TrainingDiverged(SpatialSearchError):
    """The training loss became NaN or infinite: the input was valid, the run failed."""

    exit_code = 1  # the CLI's "training failed", not 2 ("bad input")


def resolve_device(name: str) -> torch.device:
    """auto -> cuda when present, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} asked for, but CUDA is not available here")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: SpatialNetwork, config: TrialConfig) -> torch.optim.Optimizer:
    """torch.optim.<optimizer>: weights and biases at lr, positions at positions_lr.

    One parameter group when the two rates are equal (the default), else two: each group is
    a separate fused-kernel call per step.

    Raises:
        ConfigError: optimizer_args the optimizer does not accept.
    """
    optim = config.optim
    cls = getattr(torch.optim, optim.optimizer)
    positions = [p for name, p in model.named_parameters() if name.endswith("positions")]
    weights = [p for name, p in model.named_parameters() if not name.endswith("positions")]
    groups = [{"params": weights}, {"params": positions, "lr": optim.effective_positions_lr}]
    if optim.effective_positions_lr == optim.lr:
        groups = [{"params": weights + positions}]
    kwargs: dict[str, Any] = dict(optim.optimizer_args)
    accepted = inspect.signature(cls).parameters
    if optim.optimizer in _FUSED_CAPABLE and not {"fused", "foreach"} & kwargs.keys():
        kwargs["fused"] = True
    for key in kwargs:
        if key not in accepted:
            allowed = ", ".join(k for k in accepted if k not in ("params", "lr"))
            raise ConfigError(f"optimizer_args.{key}: {optim.optimizer} does not take it; "
                              f"it takes {allowed}")
    try:
        return cls(groups, lr=optim.lr, **kwargs)
    except (ValueError, TypeError, RuntimeError) as error:
        raise ConfigError(f"optimizer_args: {optim.optimizer} rejected "
                          f"{dict(optim.optimizer_args)!r}: {error}") from error


class Trainer:
    """Owns the model, optimizer, data and best-so-far of one run; epochs advance it.

    Args:
        config: the validated run.
        data: preloaded splits (tests reuse them); loaded from config when omitted.
    """

    def __init__(self, config: TrialConfig, data: TaskData | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.run.device)
        seed_everything(config.run.seed)
        self.data = data or load_task_data(config.data, config.run.seed, self.device)
        self.model = build_model(config).to(self.device)
        self.optimizer = build_optimizer(self.model, config)
        self.cost_workspace = CostWorkspace()  # the CPU costs' arrays, reused every step
        self.generator = torch.Generator().manual_seed(config.run.seed)
        data_cfg = config.data
        self.train_batches = self._batches(self.data.train, data_cfg.batch)
        self.validation_batches = self._batches(self.data.validation, 4 * data_cfg.batch)
        self.epoch = 0
        self.best_accuracy = -1.0
        self.best_state: dict[str, Tensor] = {}
        self.best_metrics: dict[str, float] = {}

    def _batches(self, tasks: list[TaskSet], batch: int) -> TaskBatches:
        data = self.config.data
        return TaskBatches(tasks, data.input, data.sampler, batch, self.generator)

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training split; returns the epoch's training metrics."""
        cost = self.config.cost
        layers, where = self.model.spatial_layers, self.config.cost_layers
        fit_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        # penalty, proximity, transport: floats on the CPU, 0-d tensors on CUDA (no sync)
        penalty_sums = [0.0, 0.0, 0.0]
        steps = 0
        started = time.perf_counter()
        self.model.train()
        for batch in self.train_batches.epoch():
            self.optimizer.zero_grad(set_to_none=True)
            fit = task_loss(self.model(batch.inputs), batch.targets)
            penalty = penalised_backward(fit, layers, where, cost.norm, cost.proximity,
                                         cost.transport, self.cost_workspace)
            self.optimizer.step()
            fit_sum += fit.detach()
            for index, value in enumerate(penalty):
                penalty_sums[index] += value
            steps += 1
        fit_mean = float(fit_sum) / max(steps, 1)
        penalty_mean, prox_mean, trans_mean = (float(v) / max(steps, 1) for v in penalty_sums)
        means = [fit_mean + penalty_mean, fit_mean, prox_mean, trans_mean]
        if not all(np.isfinite(means)):
            raise TrainingDiverged(
                f"epoch {self.epoch + 1}: training loss is {means[0]} (task loss {means[1]}, "
                f"proximity {means[2]}, transport {means[3]}); lower lr or the cost scales"
            )
        return {m.TRAIN_LOSS: means[0], m.TRAIN_TASK_LOSS: means[1], m.PROXIMITY: means[2],
                m.TRANSPORT: means[3], m.EPOCH_SECONDS: time.perf_counter() - started}

    def run_epoch(self) -> dict[str, float]:
        """Train one epoch, evaluate on validation, keep the best weights; return all metrics."""
        results = self.train_epoch()
        self.epoch += 1
        validation = evaluate(self.model, self.validation_batches)
        results |= {m.EPOCH: self.epoch, m.VAL_LOSS: validation.loss,
                    m.VAL_ACCURACY: validation.accuracy,
                    m.VAL_ACCURACY_SE: validation.accuracy_se}
        results |= {m.val_task_accuracy(t): a for t, a in enumerate(validation.task_accuracy)}
        if validation.accuracy > self.best_accuracy:
            self.best_accuracy = validation.accuracy
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best_metrics = dict(results)
        return results

    def task_measures(self, model: SpatialNetwork | None = None) -> dict[str, float]:
        """task_measures of model (default: the current one) on the validation split."""
        return task_measures(model or self.model, self.config.data.num_tasks,
                             self.config.data.labels, self.validation_batches)

    def best_model(self) -> SpatialNetwork:
        """A copy of the network with the best validation weights."""
        model = build_model(self.config).to(self.device)
        model.load_state_dict(self.best_state)
        return model.eval()

    def test_metrics(self) -> dict[str, float]:
        """Test-split accuracy of the best checkpoint (overall and per task)."""
        test = self._batches(self.data.test, 4 * self.config.data.batch)
        result = evaluate(self.best_model(), test)
        return {m.TEST_ACCURACY: result.accuracy,
                **{m.test_task_accuracy(t): a for t, a in enumerate(result.task_accuracy)}}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (tensors and plain values only)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "generator": self.generator.get_state(),
                "best_accuracy": self.best_accuracy, "best_state": self.best_state,
                "best_metrics": self.best_metrics}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.generator.set_state(state["generator"])
        self.best_accuracy = float(state["best_accuracy"])
        self.best_state = state["best_state"]
        self.best_metrics = dict(state["best_metrics"])
