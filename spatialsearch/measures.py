"""The task measures a trial logs at every checkpoint (and `spatialsearch claims` reads):
the positions split, selectivity, Barber's modularity and segregation of one network."""

from __future__ import annotations

from typing import Any

import numpy as np

from spatialsearch import metrics as m
from spatialsearch.data.modes import TaskBatches
from spatialsearch.evaluation import active_neurons, evaluate
from spatialsearch.models import SpatialNetwork
from spatialsearch.modularity import modularity
from spatialsearch.positions_split import positions_split
from spatialsearch.segregation import segregation
from spatialsearch.selectivity import selectivity


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
