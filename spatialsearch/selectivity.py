"""Selectivity: how strongly each hidden neuron prefers one task, read from its outgoing
weight mass. Unlike segregation it does not ask where a neuron sits, only whether it serves
one task or several.

For hidden neuron n of layer k, S_k[t, n] is the connection mass from n to task t's neurons
of layer k+1 (segregation.task_mass, per-neuron rule, walking back from the head), and
p_t = S_k[t, n] / sum_t' S_k[t', n] its shares. Then
    selectivity(n) = (T max_t p_t - 1) / (T - 1)   in [0, 1]:
0 when every task gets the same share, 1 when all of n's mass goes to one task. A neuron
with no mass or never active is left out. A layer's value is the mean over its scored
neurons; the network's `selectivity` is the mean over hidden layers that have any.

Known failure modes: it reads magnitudes only, so a neuron whose two tasks' weights cancel
downstream still counts as shared; the last hidden layer sees C head neurons per task, so its
null (random weights) lies above 0 by sampling noise alone, more so for small C.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from spatialsearch.layers import SpatialLayer
from spatialsearch.segregation import Assignment, task_mass


def neuron_selectivity(mass: np.ndarray) -> np.ndarray:
    """(T, n) task mass -> (n,) selectivity in [0, 1]; NaN where a neuron has no mass."""
    mass = np.asarray(mass, dtype=np.float64)
    tasks = mass.shape[0]
    total = mass.sum(axis=0)
    share = np.divide(mass.max(axis=0), total, out=np.full(mass.shape[1], np.nan),
                      where=total > 0)
    return (tasks * share - 1.0) / (tasks - 1.0)


def selectivity(layers: list[SpatialLayer], num_tasks: int, labels: int,
                rule: Assignment = "per_neuron",
                active: list[Tensor] | None = None) -> dict[int, float]:
    """Mean selectivity of each hidden layer k = 0..L-1 over its scored neurons (active, with
    mass); NaN for a layer with none."""
    found: dict[int, float] = {}
    for k, mass in enumerate(task_mass(layers, num_tasks, labels, rule, active)):
        values = neuron_selectivity(mass.cpu().double().numpy())
        if active is not None:
            values[~active[k].cpu().numpy()] = np.nan
        found[k] = float(np.nanmean(values)) if np.any(np.isfinite(values)) else float("nan")
    return found
