"""record: per task and spatial layer, mean and variance of every neuron's output.

What it does: docs/reference.md, model 6.
For task t, the samples of t's split (validation by default, or train) are
presented alone: in sequential mode as they are; in concatenate mode with the other tasks'
channels zeroed; in mix mode as the task's image by itself (the other tasks absent, so not
halved as the mean of T images would). Hidden layers record after their activation
(a convolution channel's value is its mean over H x W), the head records logits.
The original summed instead of averaging, crashed on variance and ran sequential mode only.

File layout (npz, one file):
    mean_t{t}_k{k}, var_t{t}_k{k}   float64 (n_k,)  task t, spatial layer k = 0..L (L = head)
    meta                            JSON string: checkpoint, split, tasks, layer sizes, mode,
                                    samples per task, format version
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from analysis.context import AnalysisContext
from spatialsearch.data.sources import TaskSet
from spatialsearch.errors import CheckpointError

FORMAT = "spatialsearch-recording/1"


class Recording(NamedTuple):
    mean: list[list[np.ndarray]]  # [task][layer] -> (n_k,)
    variance: list[list[np.ndarray]]
    meta: dict

    @property
    def layer_sizes(self) -> list[int]:
        return [len(v) for v in self.mean[0]]


def _task_alone(context: AnalysisContext, task: int, images: Tensor) -> Tensor:
    """The network input showing only task `task`'s image (see module docstring)."""
    data = context.config.data
    if data.input != "concatenate":
        return images
    channels = data.image_shape[0]
    inputs = images.new_zeros((len(images), *data.input_shape))
    inputs[:, task * channels:(task + 1) * channels] = images
    return inputs


@torch.no_grad()
def record(context: AnalysisContext, split: str = "validation", batch: int = 512,
           progress: bool = False) -> Recording:
    """Mean and variance of every neuron per task and layer, in batches."""
    from tqdm import tqdm

    model = context.model.eval()
    means: list[list[np.ndarray]] = []
    variances: list[list[np.ndarray]] = []
    tasks: list[TaskSet] = context.split(split)
    for task, task_set in enumerate(tqdm(tasks, desc="record", disable=not progress)):
        sums: list[Tensor] = []
        squares: list[Tensor] = []
        for start in range(0, len(task_set.labels), batch):
            images = task_set.images(slice(start, start + batch))
            outputs = model.features(_task_alone(context, task, images))
            outputs = [o.mean(dim=(2, 3)) if o.dim() == 4 else o for o in outputs]
            values = [o.double() for o in outputs]
            if not sums:
                sums = [v.sum(0) for v in values]
                squares = [(v * v).sum(0) for v in values]
            else:
                for k, v in enumerate(values):
                    sums[k] += v.sum(0)
                    squares[k] += (v * v).sum(0)
        count = len(task_set.labels)
        mean = [s / count for s in sums]
        means.append([m.cpu().numpy() for m in mean])
        variances.append([(q / count - m * m).clamp_min(0).cpu().numpy()
                          for q, m in zip(squares, mean)])
    meta = {
        "format": FORMAT, "checkpoint": str(context.path), "split": split,
        "tasks": len(tasks), "layer_sizes": [len(v) for v in means[0]],
        "input": context.config.data.input, "samples": [len(t.labels) for t in tasks],
    }
    return Recording(means, variances, meta)


def task_drive(recording: Recording) -> list[np.ndarray]:
    """Per layer k, (T, n_k): how strongly each task drives each neuron = the variance of the
    neuron's output over that task's samples.

    Deviation from the original, which used the mean: under Sigmoid a neuron's mean is high
    even for the zeroed input of the other tasks, so argmax of the mean picked tasks almost
    at random (greedy-comparable split: diagonal 0.28 by mean, 0.99 by variance, measured on
    the docs/reference.md, model 4 reference network)."""
    tasks, layers = len(recording.variance), len(recording.variance[0])
    return [np.stack([recording.variance[t][k] for t in range(tasks)]) for k in range(layers)]


def save_recording(recording: Recording, path: Path) -> None:
    arrays = {}
    for t, (means, variances) in enumerate(zip(recording.mean, recording.variance)):
        for k, (m, v) in enumerate(zip(means, variances)):
            arrays[f"mean_t{t}_k{k}"] = m
            arrays[f"var_t{t}_k{k}"] = v
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, meta=np.array(json.dumps(recording.meta)), **arrays)


def load_recording(path: Path, context: AnalysisContext | None = None) -> Recording:
    """Read a recording; with a context, check it belongs to that model.

    Raises:
        CheckpointError: not a recording, or recorded from a model of other layer sizes or
            another task count.
    """
    try:
        with np.load(path, allow_pickle=False) as file:
            meta = json.loads(str(file["meta"]))
            tasks, sizes = meta["tasks"], meta["layer_sizes"]
            mean = [[file[f"mean_t{t}_k{k}"] for k in range(len(sizes))] for t in range(tasks)]
            var = [[file[f"var_t{t}_k{k}"] for k in range(len(sizes))] for t in range(tasks)]
    except (OSError, KeyError, ValueError, json.JSONDecodeError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"recording: {str(path)!r} is not a spatialsearch recording "
                              f"({error})") from error
    recording = Recording(mean, var, meta)
    if context is not None:
        model_sizes = [layer.num_neurons for layer in context.model.spatial_layers]
        if sizes != model_sizes or tasks != context.num_tasks:
            raise CheckpointError(
                f"recording: {str(path)!r} was made from another model (layers {sizes}, "
                f"{tasks} tasks); this checkpoint has layers {model_sizes}, "
                f"{context.num_tasks} tasks")
    return recording
