"""Task assignment of neurons from the weights (greedy) and segregation of their positions.

What it does: docs/reference.md, model 8.
Greedy: head neuron j belongs to task j // C; walking back, a hidden neuron n of
layer k goes to argmax_t sum_{m of layer k+1 assigned to t} |W^{k+1}_{mn}| (|W| summed over a
convolution kernel). A task that owns no neuron of the next layer simply gets no mass; task ids
are never relabelled (the original relabelled them).
Segregation of a hidden layer: 3-NN balanced accuracy, cross-validated, of predicting a
neuron's greedy task from its position alone; ~1/T at random, 1 when tasks occupy separate
regions. A layer whose smallest task group is below 2 neurons, or that holds one task only,
cannot be cross-validated and is skipped (reported with the reason).
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from spatialsearch.layers import SpatialLayer

_logger = logging.getLogger(__name__)
NEIGHBOURS = 3
MAX_FOLDS = 5


def connection_mass(layer: SpatialLayer) -> Tensor:
    """|W| per (out, in) pair, summed over a convolution kernel: (n_out, n_in)."""
    magnitude = layer.weight.detach().abs()
    return magnitude.flatten(2).sum(2) if magnitude.dim() > 2 else magnitude


def task_mass(layers: list[SpatialLayer], num_tasks: int, labels: int) -> list[Tensor]:
    """Per hidden layer k, S_k (T, n_k): connection mass from each task's neurons of layer k+1,
    following the greedy assignment backwards from the head."""
    head_tasks = torch.arange(layers[-1].weight.shape[0], device=layers[-1].weight.device)
    assigned = head_tasks // labels
    masses: list[Tensor] = []
    for k in range(len(layers) - 2, -1, -1):
        mass = connection_mass(layers[k + 1])  # (n_{k+1}, n_k)
        per_task = torch.zeros(num_tasks, mass.shape[1], dtype=mass.dtype, device=mass.device)
        per_task.index_add_(0, assigned, mass)
        masses.insert(0, per_task)
        assigned = per_task.argmax(0)
    return masses


def greedy_assignment(layers: list[SpatialLayer], num_tasks: int, labels: int) -> list[Tensor]:
    """Task id (n_k,) int64 of every neuron of each hidden layer k = 0..L-1."""
    return [mass.argmax(0) for mass in task_mass(layers, num_tasks, labels)]


class Segregation(NamedTuple):
    per_layer: dict[int, float]  # hidden layer index -> balanced accuracy in [0, 1]
    skipped: dict[int, str]      # hidden layer index -> why it was not scored

    @property
    def mean(self) -> float:
        """Mean over scored hidden layers; NaN when none could be scored."""
        return float(np.mean(list(self.per_layer.values()))) if self.per_layer else float("nan")


def stratified_folds(tasks: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Test fold (0..folds-1) of every sample: each class spread evenly over the folds, then
    shuffled within the class by RandomState(seed).

    The same assignment as scikit-learn's StratifiedKFold(folds, shuffle=True,
    random_state=seed) (tests compare them), without importing sklearn.model_selection
    (~0.8 s in every fresh Ray worker). Classes are numbered in order of first appearance.
    """
    _, first_index, inverse = np.unique(tasks, return_index=True, return_inverse=True)
    _, order_of_appearance = np.unique(first_index, return_inverse=True)
    encoded = order_of_appearance[inverse]
    classes = len(first_index)
    sorted_codes = np.sort(encoded)
    allocation = np.array([np.bincount(sorted_codes[i::folds], minlength=classes)
                           for i in range(folds)])  # (folds, classes)
    rng = np.random.RandomState(seed)
    fold_of = np.empty(len(tasks), dtype=np.int64)
    for code in range(classes):
        spread = np.arange(folds).repeat(allocation[:, code])
        rng.shuffle(spread)
        fold_of[encoded == code] = spread
    return fold_of


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                neighbours: int) -> np.ndarray:
    """Majority class of the k nearest training points (Euclidean; a tie of counts goes to
    the smallest class, as in scikit-learn's KNeighborsClassifier). (n, d), (n,), (m, d)."""
    squared = ((test_x[:, None, :] - train_x[None, :, :]) ** 2).sum(-1)  # (m, n)
    nearest = np.argsort(squared, axis=1, kind="stable")[:, :neighbours]
    classes, codes = np.unique(train_y, return_inverse=True)
    votes = np.zeros((len(test_x), len(classes)), dtype=np.int64)
    np.add.at(votes, (np.arange(len(test_x))[:, None], codes[nearest]), 1)
    return classes[votes.argmax(1)]


def layer_segregation(positions: np.ndarray, tasks: np.ndarray) -> float | str:
    """Cross-validated 3-NN balanced accuracy of tasks from positions, or why it can't be.

    Balanced accuracy = mean over tasks of the fraction of that task's neurons predicted
    right. Numpy only: the result equals scikit-learn's cross_val_predict with
    KNeighborsClassifier and StratifiedKFold(shuffle, seed 0) (tested), ~40x faster.
    """
    groups, counts = np.unique(tasks, return_counts=True)
    if len(groups) < 2:
        return f"all {len(tasks)} neurons belong to one task"
    folds = min(MAX_FOLDS, int(counts.min()))
    if folds < 2:
        return f"smallest task group has {counts.min()} neuron(s); cross-validation needs 2"
    neighbours = min(NEIGHBOURS, len(tasks) - -(-len(tasks) // folds))
    fold_of = stratified_folds(tasks, folds)
    predicted = np.empty_like(tasks)
    for fold in range(folds):
        test = fold_of == fold
        predicted[test] = knn_predict(positions[~test], tasks[~test], positions[test],
                                      neighbours)
    recalls = [float(np.mean(predicted[tasks == g] == g)) for g in groups]
    return float(np.mean(recalls))


def segregation(layers: list[SpatialLayer], num_tasks: int, labels: int) -> Segregation:
    """Segregation of every hidden layer of a network given as its L + 1 spatial layers."""
    scored: dict[int, float] = {}
    skipped: dict[int, str] = {}
    for k, tasks in enumerate(greedy_assignment(layers, num_tasks, labels)):
        positions = layers[k].positions.detach().cpu().double().numpy()
        result = layer_segregation(positions, tasks.cpu().numpy())
        if isinstance(result, str):
            skipped[k] = result
            _logger.debug("segregation of layer %d skipped: %s", k, result)  # in .skipped
        else:
            scored[k] = result
    return Segregation(scored, skipped)
