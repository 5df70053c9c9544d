"""Modularity of each layer pair's weight graph under the task partition: a second measure
of task segregation, read from the weights alone (no positions). Barber's bipartite
modularity, since a layer pair is a two-layer (bipartite) graph.

Graph of pair k (k = 0..L-1): the neurons of hidden layer k (inputs) and of layer k+1 (hidden
or the head; outputs), B (n_out, n_in) with B_ij = |W^{k+1}_ij| (summed over a convolution
kernel: segregation.connection_mass). Communities: the tasks, as the greedy assignment gives
them (head neuron j: task j // C); unassigned neurons (dead) are left out. Barber (2007):
    Q_B = (1 / m) sum_ij (B_ij - k_i d_j / m) [task(out i) = task(in j)]
        = sum_t [ m_t / m - (K_t / m) (D_t / m) ],
m = sum B, k_i the strength of output i, d_j that of input j, m_t the weight from task t's
inputs to task t's outputs, K_t and D_t task t's summed output and input strengths. The null
is a bipartite random graph with the same strengths on each side, so a partition that
ignores the weights scores 0 in expectation whatever share of each layer a task holds (the
one-layer null of networkx's modularity penalises layers that split the tasks in different
proportions: 90/10 in, 50/50 out gave -0.079 at random). Every weight inside its task, tasks
of equal strength: 1 - 1/T. The network's `modularity` is the mean over its L pairs.

The partition is fitted to the same weights (greedy assignment), so an untrained network
already scores above 0: its floor, measured in docs/reference.md, not 0.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from spatialsearch.layers import SpatialLayer
from spatialsearch.segregation import UNASSIGNED, Assignment, connection_mass, greedy_assignment


def pair_modularity(mass: np.ndarray, tasks_in: np.ndarray, tasks_out: np.ndarray) -> float:
    """Barber's Q_B of one layer pair. mass (n_out, n_in) >= 0; tasks_in (n_in,), tasks_out
    (n_out,) task ids, UNASSIGNED left out. NaN when the graph has no weight or one task."""
    kept_in = np.flatnonzero(tasks_in != UNASSIGNED)
    kept_out = np.flatnonzero(tasks_out != UNASSIGNED)
    block = np.asarray(mass, dtype=np.float64)[np.ix_(kept_out, kept_in)]
    total = block.sum()
    tasks = np.union1d(tasks_in[kept_in], tasks_out[kept_out])
    if len(tasks) < 2 or total <= 0:
        return float("nan")
    task_in, task_out = tasks_in[kept_in], tasks_out[kept_out]
    out_strength, in_strength = block.sum(axis=1), block.sum(axis=0)
    q = 0.0
    for task in tasks:
        rows, cols = task_out == task, task_in == task
        inside = block[np.ix_(rows, cols)].sum()
        q += inside / total - (out_strength[rows].sum() / total) * (in_strength[cols].sum()
                                                                     / total)
    return float(q)


def modularity(layers: list[SpatialLayer], num_tasks: int, labels: int,
               rule: Assignment = "per_neuron",
               active: list[Tensor] | None = None) -> dict[int, float]:
    """Q_B of every layer pair k = 0..L-1 (layer k to k+1, the last pair ending at the head)."""
    hidden = [t.cpu().numpy() for t in greedy_assignment(layers, num_tasks, labels, rule,
                                                         active)]
    head = np.arange(layers[-1].weight.shape[0]) // labels
    assigned = [*hidden, head]
    return {k: pair_modularity(connection_mass(layers[k + 1]).cpu().double().numpy(),
                               assigned[k], assigned[k + 1]) for k in range(len(hidden))}
