"""Modularity Q of each layer pair's weight graph under the task partition: a second measure
of task segregation, read from the weights alone (no positions), computed by networkx.

Graph of pair k (k = 0..L-1): the neurons of spatial layer k (hidden) and of layer k+1 (hidden
or the head), an undirected edge between neuron n of layer k and m of layer k+1 weighted
|W^{k+1}_{mn}| (summed over a convolution kernel: segregation.connection_mass). Communities:
the tasks, as the greedy assignment gives them (head neuron j: task j // C); unassigned
neurons (dead) are left out of the graph. networkx.community.modularity gives
    Q = sum_c [ w_c / w - (s_c / 2w)^2 ],
w the total edge weight, w_c that inside community c, s_c the summed strength of c's nodes:
0 when tasks share their wiring as a random partition would, up to 1 - 1/T when every weight
stays inside its task. The network's `modularity` is the mean over its L pairs.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from torch import Tensor

from spatialsearch.layers import SpatialLayer
from spatialsearch.segregation import UNASSIGNED, Assignment, connection_mass, greedy_assignment


def pair_modularity(mass: np.ndarray, tasks_in: np.ndarray, tasks_out: np.ndarray) -> float:
    """Q of one layer pair. mass (n_out, n_in) >= 0; tasks_in (n_in,), tasks_out (n_out,)
    task ids, UNASSIGNED left out. NaN when the graph has no weight or one task only."""
    graph = nx.Graph()
    kept_in = np.flatnonzero(tasks_in != UNASSIGNED)
    kept_out = np.flatnonzero(tasks_out != UNASSIGNED)
    graph.add_nodes_from(("in", int(n)) for n in kept_in)
    graph.add_nodes_from(("out", int(n)) for n in kept_out)
    block = mass[np.ix_(kept_out, kept_in)]
    rows, cols = np.nonzero(block)
    graph.add_weighted_edges_from((("out", int(kept_out[r])), ("in", int(kept_in[c])),
                                   float(block[r, c])) for r, c in zip(rows, cols))
    tasks = sorted(set(tasks_in[kept_in].tolist()) | set(tasks_out[kept_out].tolist()))
    if len(tasks) < 2 or graph.size(weight="weight") <= 0:
        return float("nan")
    communities = [{("in", int(n)) for n in kept_in if tasks_in[n] == t}
                   | {("out", int(n)) for n in kept_out if tasks_out[n] == t} for t in tasks]
    return float(nx.community.modularity(graph, communities, weight="weight"))


def modularity(layers: list[SpatialLayer], num_tasks: int, labels: int,
               rule: Assignment = "per_neuron",
               active: list[Tensor] | None = None) -> dict[int, float]:
    """Q of every layer pair k = 0..L-1 (layer k to k+1, the last pair ending at the head)."""
    hidden = [t.cpu().numpy() for t in greedy_assignment(layers, num_tasks, labels, rule,
                                                         active)]
    head = np.arange(layers[-1].weight.shape[0]) // labels
    assigned = [*hidden, head]
    return {k: pair_modularity(connection_mass(layers[k + 1]).cpu().double().numpy(),
                               assigned[k], assigned[k + 1]) for k in range(len(hidden))}
