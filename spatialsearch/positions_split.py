"""The positions split, measured inside a trial: the paper's claim that a network cut by
space alone gives one part per task.

Task-free: the positions of every hidden neuron (all hidden layers together, one shared space
as transport assumes) are clustered into T regions by k-means (kmeans); region r's
subnetwork keeps only the hidden neurons in region r (subnetworks.apply_masks; the head is
never masked) and is scored on every task's validation data: M[r, t]. Regions are matched to
tasks by the permutation that maximises the diagonal, then
    diagonal     = mean_t M[t, t]           (each region on its own task)
    off_diagonal = mean_{t != t'} M[t, t']  (each region on the others)
    positions_split = diagonal - off_diagonal   in [-1, 1].
Chance level 0: regions that hold the same mixture of function score alike on every task.
Known failure modes: the matching takes the better of T! assignments, so noise alone gives
a small positive value (its null is measured in docs/reference.md); a network that needs all
of its neurons for every task scores low on the diagonal too; positions that never moved (no
costs) still split into regions, at random, which is the null.
"""

from __future__ import annotations

import itertools
from typing import Callable, NamedTuple

import numpy as np
import torch

from spatialsearch.models import SpatialNetwork
from spatialsearch.subnetworks import apply_masks

RESTARTS = 10
ITERATIONS = 100


def kmeans(points: np.ndarray, clusters: int, seed: int = 0, restarts: int = RESTARTS,
           iterations: int = ITERATIONS) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding, the lowest within-cluster sum of squares of
    `restarts` starts (numpy.random.default_rng(seed)). points (n, d) -> (n,) labels in
    0..clusters-1; a cluster left empty takes the point farthest from its centre."""
    points = np.asarray(points, dtype=np.float64)
    rng = np.random.default_rng(seed)
    best, best_cost = np.zeros(len(points), dtype=np.int64), np.inf
    for _ in range(restarts):
        centres = points[[rng.integers(len(points))]]
        while len(centres) < clusters:
            nearest = ((points[:, None] - centres[None]) ** 2).sum(-1).min(1)
            total = nearest.sum()
            pick = rng.choice(len(points), p=nearest / total) if total > 0 else \
                rng.integers(len(points))
            centres = np.vstack([centres, points[pick]])
        labels = np.full(len(points), -1)
        for _ in range(iterations):
            distance = ((points[:, None] - centres[None]) ** 2).sum(-1)
            new = distance.argmin(1)
            for empty in set(range(clusters)) - set(new.tolist()):
                far = distance[np.arange(len(points)), new].argmax()
                new[far] = empty
            if np.array_equal(new, labels):
                break
            labels = new
            centres = np.array([points[labels == c].mean(0) for c in range(clusters)])
        cost = ((points - centres[labels]) ** 2).sum()
        if cost < best_cost:
            best, best_cost = labels.copy(), cost
    return best


def region_assignment(model: SpatialNetwork, regions: int, seed: int = 0) -> list[np.ndarray]:
    """The region (0..regions-1) of every neuron of each hidden layer, k-means on all hidden
    positions together. -> per hidden layer, (n_k,) int64."""
    hidden = model.spatial_layers[:-1]
    points = torch.cat([layer.positions.detach().cpu() for layer in hidden]).double().numpy()
    labels = kmeans(points, regions, seed)
    sizes = [layer.num_neurons for layer in hidden]
    return np.split(labels, np.cumsum(sizes)[:-1])


def matched_order(matrix: np.ndarray) -> list[int]:
    """The row (region) standing for each task: the permutation maximising the trace
    (every one tried for T <= 7, else the Hungarian method)."""
    tasks = len(matrix)
    if tasks <= 7:
        return list(max(itertools.permutations(range(tasks)),
                        key=lambda rows: sum(matrix[r, t] for t, r in enumerate(rows))))
    from scipy.optimize import linear_sum_assignment

    region, task = linear_sum_assignment(-matrix)
    return [int(region[list(task).index(t)]) for t in range(tasks)]


class PositionsSplit(NamedTuple):
    matrix: np.ndarray   # (T, T): row = region matched to task t, column = task
    order: list[int]     # which region stands in each row

    @property
    def diagonal(self) -> float:
        return float(np.mean(np.diag(self.matrix)))

    @property
    def off_diagonal(self) -> float:
        tasks = len(self.matrix)
        return float((self.matrix.sum() - np.trace(self.matrix)) / (tasks * tasks - tasks))

    @property
    def gap(self) -> float:
        return self.diagonal - self.off_diagonal


def positions_split(model: SpatialNetwork, num_tasks: int,
                    task_accuracy: Callable[[SpatialNetwork], list[float]],
                    seed: int = 0) -> PositionsSplit:
    """Cut model into num_tasks regions of space and score each on every task.
    task_accuracy: a network -> its accuracy on each task (the validation split)."""
    regions = region_assignment(model, num_tasks, seed)
    rows = np.array([task_accuracy(apply_masks(model, [torch.from_numpy(r == region).float()
                                                       for r in regions]))
                     for region in range(num_tasks)])
    order = matched_order(rows)
    return PositionsSplit(rows[order], order)
