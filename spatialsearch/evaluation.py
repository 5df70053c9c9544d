"""How well a network does on one split: the task loss, per-task accuracy with its standard
error (evaluate), and which hidden neurons ever fire on the data (active_neurons)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from spatialsearch.data.modes import TaskBatches
from spatialsearch.models import SpatialNetwork


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
