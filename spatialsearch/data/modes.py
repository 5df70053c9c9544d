"""Input modes: per-task tensors -> batches of (inputs, targets) as index gathers on the device.

What it does: docs/reference.md, model 2.
Targets are always (B, T): one label per task, -1 where a sample carries no
label for that task (sequential mode). So the loss and per-task accuracy have one code path:
cross-entropy over (B*T, C) ignoring -1 equals the mean over tasks of each task's CE in joint
modes (every task has B labels) and the own-head CE in sequential mode.
- sequential: one task's image per sample; `random` interleaves tasks, `task` blocks them
  (all of task 0, then task 1, ...; every batch single-task).
- concatenate: one image of every task per sample, stacked along channels (T*C, H, W).
- mix: one image of every task, averaged pixel-wise. The original summed (range [0, T]); the
  mean keeps inputs in [0, 1].
Joint modes pair the tasks' samples at random each epoch; shorter tasks are resampled
(permuted again, without replacement inside each pass) up to the longest task's length.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch
from torch import Tensor

from spatialsearch.config import InputMode, Sampler
from spatialsearch.data.sources import TaskSet, to_images


class Batch(NamedTuple):
    inputs: Tensor  # (B, C_in, H, W) float32
    targets: Tensor  # (B, T) int64, -1 = no label for that task


def _pairing(lengths: list[int], generator: torch.Generator, device: torch.device,
             shuffle: bool) -> list[Tensor]:
    """Per task an index vector of the longest task's length: each task's indices in random
    (or natural) order, repeated and cut to length."""
    longest = max(lengths)
    orders = []
    for length in lengths:
        passes = -(-longest // length)
        if shuffle:
            parts = [torch.randperm(length, generator=generator) for _ in range(passes)]
        else:
            parts = [torch.arange(length)] * passes
        orders.append(torch.cat(parts)[:longest].to(device))
    return orders


class TaskBatches:
    """Batches of one split in one input mode.

    Args:
        tasks: the split's T TaskSets, already on the device.
        mode: sequential, concatenate or mix.
        sampler: sequential mode's order, random or task.
        batch: B.
        generator: CPU generator that draws every permutation (seeded -> deterministic).
    """

    def __init__(self, tasks: list[TaskSet], mode: InputMode, sampler: Sampler, batch: int,
                 generator: torch.Generator) -> None:
        self.tasks, self.mode, self.sampler, self.batch = tasks, mode, sampler, batch
        self.generator = generator
        self.device = tasks[0].pixels.device
        self.scale = tasks[0].scale
        assert all(task.scale == self.scale for task in tasks)  # one image shape, one source kind
        if mode == "sequential":
            self.pixels = torch.cat([task.pixels for task in tasks])
            num_tasks = len(tasks)
            self.targets = torch.full((len(self.pixels), num_tasks), -1, dtype=torch.int64,
                                      device=self.device)
            start = 0
            for t, task in enumerate(tasks):
                self.targets[start:start + len(task.labels), t] = task.labels
                start += len(task.labels)
            self.offsets = [0, *torch.tensor([len(t.labels) for t in tasks]).cumsum(0).tolist()]

    def __len__(self) -> int:
        """Batches per pass."""
        if self.mode == "sequential" and self.sampler == "task":
            return sum(-(-len(task.labels) // self.batch) for task in self.tasks)
        return -(-self.num_samples // self.batch)

    @property
    def num_samples(self) -> int:
        """Samples per pass: all samples (sequential) or the longest task's (joint)."""
        lengths = [len(task.labels) for task in self.tasks]
        return sum(lengths) if self.mode == "sequential" else max(lengths)

    def epoch(self, *, shuffle: bool = True) -> Iterator[Batch]:
        """One pass; shuffle=False gives the fixed order used for evaluation."""
        if self.mode == "sequential":
            yield from self._sequential(shuffle)
        else:
            yield from self._joint(shuffle)

    def _sequential(self, shuffle: bool) -> Iterator[Batch]:
        if self.sampler == "task":
            spans = [(self.offsets[t], self.offsets[t + 1]) for t in range(len(self.tasks))]
            orders = [start + self._order(stop - start, shuffle) for start, stop in spans]
        else:
            orders = [self._order(len(self.pixels), shuffle)]
        for order in orders:
            for index in order.split(self.batch):
                yield Batch(to_images(self.pixels.index_select(0, index), self.scale),
                            self.targets.index_select(0, index))

    def _order(self, length: int, shuffle: bool) -> Tensor:
        if shuffle:
            return torch.randperm(length, generator=self.generator).to(self.device)
        return torch.arange(length, device=self.device)

    def _joint(self, shuffle: bool) -> Iterator[Batch]:
        lengths = [len(task.labels) for task in self.tasks]
        orders = _pairing(lengths, self.generator, self.device, shuffle)
        for start in range(0, max(lengths), self.batch):
            picks = [order[start:start + self.batch] for order in orders]
            inputs = self._joint_inputs(picks)
            targets = torch.stack([task.labels.index_select(0, pick)
                                   for task, pick in zip(self.tasks, picks)], 1)
            yield Batch(inputs, targets)

    def _joint_inputs(self, picks: list[Tensor]) -> Tensor:
        """Gather 8-bit pixels straight into one float32 batch (copy_ converts), then scale:
        3x faster than gathering floats and concatenating (benchmarks/bench_data.py)."""
        channels, height, width = self.tasks[0].pixels.shape[1:]
        size = len(picks[0])
        if self.mode == "concatenate":
            inputs = torch.empty((size, channels * len(self.tasks), height, width),
                                 dtype=torch.float32, device=self.device)
            for t, (task, pick) in enumerate(zip(self.tasks, picks)):
                inputs[:, t * channels:(t + 1) * channels].copy_(task.pixels.index_select(0, pick))
            return inputs.div_(self.scale)
        inputs = torch.zeros((size, channels, height, width), dtype=torch.float32,
                             device=self.device)
        for task, pick in zip(self.tasks, picks):
            inputs.add_(task.pixels.index_select(0, pick))
        return inputs.div_(self.scale * len(self.tasks))  # mean over tasks, in [0, 1]
