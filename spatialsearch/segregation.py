"""Task assignment of neurons from the weights (greedy) and segregation of their positions.

What it does: docs/reference.md, model 8.
Greedy: head neuron j belongs to task j // C; walking back, a hidden neuron n of layer k gets
the mass S_k[t, n] = sum_{m of layer k+1 assigned to t} |W^{k+1}_{mn}| (|W| summed over a
convolution kernel), divided by the number of neurons of layer k+1 assigned to t under the
default rule `per_neuron` (the seed's rule, `summed`, does not divide: a majority task of layer
k+1 then wins layer k by its size alone and grows layer by layer, docs/reference.md). It goes
to argmax_t S_k[t, n]; a neuron with no mass (no outgoing weight to an assigned neuron) or
never active is unassigned (-1) and is not scored. Task ids are never relabelled.
Segregation of a hidden layer: balanced accuracy, cross-validated in min(5, smallest group)
stratified folds, of a k-NN predicting a neuron's task from its position alone, k = 3, or the
largest odd number of the smallest group's neurons left in training when fewer (so a task
of 2-3 neurons in a corner is as segregated as one of 30); ~1/T at random, 1 when tasks
occupy separate regions. A layer that holds one task only, or a task of one neuron, cannot
be scored and counts at chance, 1/T: every hidden layer always enters the mean.
"""

from __future__ import annotations

import logging
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from spatialsearch.layers import SpatialLayer

_logger = logging.getLogger(__name__)
NEIGHBOURS = 3
MAX_FOLDS = 5
Assignment = Literal["per_neuron", "summed"]
ASSIGNMENTS: tuple[str, ...] = ("per_neuron", "summed")
UNASSIGNED = -1


def connection_mass(layer: SpatialLayer) -> Tensor:
    """|W| per (out, in) pair, summed over a convolution kernel: (n_out, n_in)."""
    magnitude = layer.weight.detach().abs()
    return magnitude.flatten(2).sum(2) if magnitude.dim() > 2 else magnitude


def assign(mass: Tensor, active: Tensor | None = None) -> Tensor:
    """(T, n) task mass -> (n,) task ids: argmax over tasks; UNASSIGNED where a neuron has
    no mass at all or is not active (active: (n,) bool)."""
    tasks = mass.argmax(0)
    dead = mass.sum(0) <= 0
    if active is not None:
        dead |= ~active.to(dead.device)
    return torch.where(dead, torch.full_like(tasks, UNASSIGNED), tasks)


def task_mass(layers: list[SpatialLayer], num_tasks: int, labels: int,
              rule: Assignment = "per_neuron",
              active: list[Tensor] | None = None) -> list[Tensor]:
    """Per hidden layer k, S_k (T, n_k): connection mass from each task's neurons of layer
    k+1 (per_neuron: divided by how many there are), following the assignment backwards
    from the head. active: per hidden layer, (n_k,) bool (None: all active)."""
    head_tasks = torch.arange(layers[-1].weight.shape[0], device=layers[-1].weight.device)
    assigned = head_tasks // labels
    masses: list[Tensor] = []
    for k in range(len(layers) - 2, -1, -1):
        mass = connection_mass(layers[k + 1])  # (n_{k+1}, n_k)
        kept = assigned != UNASSIGNED
        per_task = torch.zeros(num_tasks, mass.shape[1], dtype=mass.dtype, device=mass.device)
        per_task.index_add_(0, assigned[kept], mass[kept])
        if rule == "per_neuron":
            counts = torch.bincount(assigned[kept], minlength=num_tasks).clamp(min=1)
            per_task /= counts[:, None].to(per_task.dtype)
        masses.insert(0, per_task)
        assigned = assign(per_task, None if active is None else active[k])
    return masses


def greedy_assignment(layers: list[SpatialLayer], num_tasks: int, labels: int,
                      rule: Assignment = "per_neuron",
                      active: list[Tensor] | None = None) -> list[Tensor]:
    """Task id (n_k,) int64 of every neuron of each hidden layer k = 0..L-1 (-1: none)."""
    masses = task_mass(layers, num_tasks, labels, rule, active)
    return [assign(mass, None if active is None else active[k])
            for k, mass in enumerate(masses)]


class Segregation(NamedTuple):
    per_layer: dict[int, float]  # every hidden layer -> balanced accuracy in [0, 1] (chance
                                 # 1/T where it cannot be scored)
    at_chance: dict[int, str]    # hidden layers that could not be scored -> why
    balance: dict[int, tuple[int, ...]]  # hidden layer -> assigned neurons per task

    @property
    def mean(self) -> float:
        """Mean over every hidden layer (unscorable ones at chance)."""
        return float(np.mean(list(self.per_layer.values())))

    @property
    def scored(self) -> int:
        """How many hidden layers were scored (the others count at chance)."""
        return len(self.per_layer) - len(self.at_chance)


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


def neighbours_for(smallest: int, folds: int) -> int:
    """k of the k-NN: NEIGHBOURS, or the largest odd number of the smallest group's neurons
    that every training split keeps (smallest - ceil(smallest / folds)) when that is fewer."""
    kept = smallest - -(-smallest // folds)
    k = min(NEIGHBOURS, kept)
    return max(1, k if k % 2 else k - 1)


def layer_segregation(positions: np.ndarray, tasks: np.ndarray) -> float | str:
    """Cross-validated k-NN balanced accuracy of tasks from positions, or why it can't be.

    Balanced accuracy = mean over tasks of the fraction of that task's neurons predicted
    right. Numpy only: the result equals scikit-learn's cross_val_predict with
    KNeighborsClassifier(neighbours_for(...)) and StratifiedKFold(shuffle, seed 0) (tested).
    Unassigned neurons (task -1) are left out.
    """
    positions, tasks = positions[tasks != UNASSIGNED], tasks[tasks != UNASSIGNED]
    groups, counts = np.unique(tasks, return_counts=True)
    if len(groups) < 2:
        return f"all {len(tasks)} assigned neurons belong to one task"
    folds = min(MAX_FOLDS, int(counts.min()))
    if folds < 2:
        return f"smallest task group has {counts.min()} neuron(s); cross-validation needs 2"
    neighbours = neighbours_for(int(counts.min()), folds)
    fold_of = stratified_folds(tasks, folds)
    predicted = np.empty_like(tasks)
    for fold in range(folds):
        test = fold_of == fold
        predicted[test] = knn_predict(positions[~test], tasks[~test], positions[test],
                                      neighbours)
    recalls = [float(np.mean(predicted[tasks == g] == g)) for g in groups]
    return float(np.mean(recalls))


def segregation(layers: list[SpatialLayer], num_tasks: int, labels: int,
                rule: Assignment = "per_neuron",
                active: list[Tensor] | None = None) -> Segregation:
    """Segregation of every hidden layer of a network given as its L + 1 spatial layers;
    a layer that cannot be scored counts at chance, 1/num_tasks."""
    scores: dict[int, float] = {}
    at_chance: dict[int, str] = {}
    balance: dict[int, tuple[int, ...]] = {}
    for k, tasks in enumerate(greedy_assignment(layers, num_tasks, labels, rule, active)):
        ids = tasks.cpu().numpy()
        balance[k] = tuple(int(c) for c in np.bincount(ids[ids >= 0], minlength=num_tasks))
        positions = layers[k].positions.detach().cpu().double().numpy()
        result = layer_segregation(positions, ids)
        if isinstance(result, str):
            at_chance[k], scores[k] = result, 1.0 / num_tasks
            _logger.debug("segregation of layer %d at chance: %s", k, result)  # in .at_chance
        else:
            scores[k] = result
    return Segregation(scores, at_chance, balance)
