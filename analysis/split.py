"""split: cut a trained network into one subnetwork per task (docs/reference.md, model 8).

Methods (hidden layers only; the head is never masked, masking it makes the other tasks fail
by construction):
    greedy       task of a neuron = argmax_t S_t, S = connection mass walking back from the
                 head (spatialsearch.segregation.task_mass). The original's bugs are fixed: a
                 removed neuron loses its incoming weights, its bias *and* its outgoing
                 weights (the original kept the bias, so removed neurons still fired), and
                 task ids are never relabelled when a task owns no neuron of a layer.
    probability  task t keeps neuron n with probability S_t(n) / max_t' S_t'(n), seeded.
    rescale      soft: task t's network scales neuron n's outgoing weights by S_t / max S.
    activations  task = argmax_t of the recorded drive (analysis.record.task_drive: the
                 variance over task t's samples; the original's mean picks at random).
    positions    task-free: k-means (k = T, seeded) on the positions of all hidden layers
                 together (they share one space, as transport assumes), so a region of space
                 is one subnetwork across layers (spatialsearch.positions_split, the same cut a
                 trial logs as `positions_split`). Regions are matched to tasks only when
                 scoring (the permutation that maximises the diagonal).
Output of split(): per task t a network and its masks (n_k,) float per hidden layer
(1 kept, 0 removed, in between: rescale factors).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from analysis.context import AnalysisContext
from analysis.methods import Method, check_method
from analysis.record import Recording, task_drive
from spatialsearch.checkpoint import atomic_save
from spatialsearch.errors import ConfigError
from spatialsearch.models import SpatialNetwork
from spatialsearch.positions_split import region_assignment
from spatialsearch.segregation import task_mass
from spatialsearch.subnetworks import apply_masks


class Split(NamedTuple):
    method: str
    masks: list[list[Tensor]]  # [task][hidden layer] -> (n_k,) float in [0, 1]
    networks: list[SpatialNetwork]  # one per task (or per region, for positions)
    assignment: list[list[int]]  # [hidden layer] -> task (region) per neuron; [] for soft


def _hard_masks(assignment: list[Tensor], num_tasks: int) -> list[list[Tensor]]:
    return [[(tasks == t).float() for tasks in assignment] for t in range(num_tasks)]


def masks_for(context: AnalysisContext, method: Method, recording: Recording | None = None,
              seed: int = 0) -> tuple[list[list[Tensor]], list[Tensor]]:
    """(masks [task][layer], hard assignment per layer or [] for soft methods)."""
    model, tasks = context.model, context.num_tasks
    layers = model.spatial_layers
    if method == "positions":
        assignment = [torch.from_numpy(r) for r in region_assignment(model, tasks, seed)]
        return _hard_masks(assignment, tasks), assignment
    if method == "activations":
        if recording is None:
            raise ConfigError("method: activations needs a recording (analysis.record)")
        drive = task_drive(recording)[:-1]  # hidden layers only
        assignment = [torch.from_numpy(d.argmax(0)) for d in drive]
        return _hard_masks(assignment, tasks), assignment
    mass = [m.cpu() for m in task_mass(layers, tasks, context.config.data.labels)]
    relative = [m / m.max(0).values.clamp_min(1e-30) for m in mass]  # (T, n_k), max 1
    if method == "greedy":
        assignment = [m.argmax(0) for m in mass]
        return _hard_masks(assignment, tasks), assignment
    if method == "rescale":
        return [[r[t] for r in relative] for t in range(tasks)], []
    generator = torch.Generator().manual_seed(seed)
    return [[torch.bernoulli(r[t], generator=generator) for r in relative]
            for t in range(tasks)], []


def split(context: AnalysisContext, method: str, recording: Recording | None = None,
          seed: int = 0) -> Split:
    chosen = check_method(method)
    masks, assignment = masks_for(context, chosen, recording, seed)
    networks = [apply_masks(context.model, task_masks) for task_masks in masks]
    return Split(chosen, masks, networks, [a.tolist() for a in assignment])


def save_split(result: Split, context: AnalysisContext, folder: Path) -> list[Path]:
    """split_<method>_task<t>.pt per task (checkpoint format + masks) and the assignment."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, (network, masks) in enumerate(zip(result.networks, result.masks)):
        path = folder / f"split_{result.method}_task{t}.pt"
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        atomic_save({"state_dict": state, "config": context.config.to_flat_dict(),
                     "epoch": context.checkpoint.epoch, "metrics": {},
                     "split": {"method": result.method, "task": t,
                               "masks": [m.cpu() for m in masks]}}, path)
        paths.append(path)
    (folder / f"assignment_{result.method}.json").write_text(json.dumps({
        "method": result.method, "layers": result.assignment,
        "kept": [[float(m.sum()) for m in task] for task in result.masks]}) + "\n")
    return paths
