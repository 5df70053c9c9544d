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
from torch import Tensor, nn

from spatialsearch import metrics as m
from spatialsearch.config import TrialConfig
from spatialsearch.costs import CostWorkspace, penalised_backward
from spatialsearch.data.modes import TaskBatches
from spatialsearch.data.sources import TaskData, TaskSet, load_task_data
from spatialsearch.errors import ConfigError, SpatialSearchError
from spatialsearch.models import SpatialNetwork, build_model
from spatialsearch.modularity import modularity
from spatialsearch.positions_split import positions_split
from spatialsearch.segregation import segregation
from spatialsearch.selectivity import selectivity

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


def task_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean CE over labelled (sample, task) pairs. logits (B, T, C); targets (B, T), -1 none."""
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1
    )


class Evaluation:
    """Loss and per-task accuracy of a model on one split (task_samples: n_t per task)."""

    def __init__(self, loss: float, task_accuracy: list[float],
                 task_samples: list[float]) -> None:
        self.loss = loss
        self.task_accuracy = task_accuracy
        self.task_samples = task_samples

    @property
    def accuracy(self) -> float:
        """Mean over tasks of each task's accuracy."""
        return float(np.mean(self.task_accuracy))

    @property
    def accuracy_se(self) -> float:
        """Standard error of `accuracy`: sqrt(sum_t q_t (1 - q_t) / n_t) / T with the
        Laplace-smoothed q_t = (p_t n_t + 1) / (n_t + 2), so that a perfect score keeps its
        uncertainty. On digits (82 validation samples per task) it is ~0.009-0.010 near 0.99:
        more than one sample's weight (0.006), so a ranking within it is noise."""
        n = np.maximum(np.array(self.task_samples), 1)
        q = (np.array(self.task_accuracy) * n + 1) / (n + 2)
        return float(np.sqrt(np.sum(q * (1 - q) / n)) / len(q))


@torch.no_grad()
def evaluate(model: SpatialNetwork, batches: TaskBatches) -> Evaluation:
    """Accuracy of every task's head on that task's labelled samples, in fixed order."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=batches.device)
    labelled = 0
    correct = torch.zeros(len(batches.tasks), dtype=torch.float64, device=batches.device)
    counts = torch.zeros_like(correct)
    for batch in batches.epoch(shuffle=False):
        logits = model(batch.inputs)
        has_label = batch.targets >= 0
        count = int(has_label.sum())
        loss_sum += task_loss(logits, batch.targets).double() * count
        labelled += count
        correct += ((logits.argmax(-1) == batch.targets) & has_label).sum(0)
        counts += has_label.sum(0)
    model.train(was_training)
    accuracy = (correct / counts.clamp_min(1)).tolist()
    return Evaluation(float(loss_sum) / max(labelled, 1), accuracy, counts.tolist())


@torch.no_grad()
def active_neurons(model: SpatialNetwork, batches: TaskBatches) -> list[Tensor]:
    """Per hidden layer, (n_k,) bool: the neuron's output (a channel: anywhere in its map) is
    non-zero on some validation input. A never-active neuron (a dead ReLU) carries no task."""
    was_training = model.training
    model.eval()
    active: list[Tensor] | None = None
    for batch in batches.epoch(shuffle=False):
        fired = [(h != 0).flatten(2).any(2).any(0) if h.dim() > 2 else (h != 0).any(0)
                 for h in model.features(batch.inputs)[:-1]]
        active = fired if active is None else [a | f for a, f in zip(active, fired)]
    model.train(was_training)
    return active or []


def task_measures(network: SpatialNetwork, num_tasks: int, labels: int,
                  batches: TaskBatches) -> dict[str, float]:
    """The task measures of a network, neurons never active on `batches` (the validation
    split) left out: the positions split (its gap, diagonal and off-diagonal, scored on
    `batches`), selectivity, Barber's modularity Q and segregation, each with its per-layer
    values, how many layers segregation scored and each layer's task balance. ~10 ms for the
    quickstart network on one CPU core, against a 16 ms epoch (docs/reference.md)."""
    active = active_neurons(network, batches)
    layers = network.spatial_layers
    result = segregation(layers, num_tasks, labels, active=active)
    balance = {m.task_balance(k): min(counts) / max(max(counts), 1)
               for k, counts in result.balance.items()}
    found = {m.SEGREGATION: result.mean, m.SEGREGATION_SCORED: result.scored,
             **{m.layer_segregation(k): v for k, v in result.per_layer.items()}, **balance}
    per_pair = modularity(layers, num_tasks, labels, active=active)
    found[m.MODULARITY] = _mean_of_finite(per_pair.values())
    found |= {m.layer_modularity(k): q for k, q in per_pair.items()}
    per_layer = selectivity(layers, num_tasks, labels, active=active)
    found[m.SELECTIVITY] = _mean_of_finite(per_layer.values())
    found |= {m.layer_selectivity(k): v for k, v in per_layer.items()}
    if num_tasks >= 2:
        split = positions_split(network, num_tasks,
                                lambda cut: evaluate(cut, batches).task_accuracy)
        found |= {m.POSITIONS_SPLIT: split.gap, m.POSITIONS_SPLIT_DIAGONAL: split.diagonal,
                  m.POSITIONS_SPLIT_OFF_DIAGONAL: split.off_diagonal}
    return found


def _mean_of_finite(values: Any) -> float:
    """Mean of the finite values; NaN when there is none."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


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
