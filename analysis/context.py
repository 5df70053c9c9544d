"""What every analysis step starts from: a checkpoint, its model, and its data splits."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from spatialsearch.checkpoint import Checkpoint, load_checkpoint, load_model
from spatialsearch.config import TrialConfig
from spatialsearch.data.modes import TaskBatches
from spatialsearch.data.sources import TaskData, TaskSet, load_task_data
from spatialsearch.models import SpatialNetwork


class AnalysisContext(NamedTuple):
    path: Path
    checkpoint: Checkpoint
    model: SpatialNetwork
    data: TaskData

    @property
    def config(self) -> TrialConfig:
        return self.checkpoint.config

    @property
    def num_tasks(self) -> int:
        return self.config.data.num_tasks

    def split(self, name: str) -> list[TaskSet]:
        """'train', 'validation' or 'test' task sets."""
        return getattr(self.data, name)

    def batches(self, name: str = "validation", batch: int = 512) -> TaskBatches:
        data = self.config.data
        return TaskBatches(self.split(name), data.input, data.sampler, batch, torch.Generator())


def open_checkpoint(path: str | Path, device: str = "cpu") -> AnalysisContext:
    """Load a checkpoint (weights-only) with the data its config names, on device.

    Raises:
        CheckpointError: missing, corrupt, foreign or mismatched checkpoint.
        DataError: the datasets it was trained on are not available.
    """
    checkpoint = load_checkpoint(path)
    model = load_model(checkpoint, device)
    config = checkpoint.config
    data = load_task_data(config.data, config.run.seed, torch.device(device))
    return AnalysisContext(Path(path), checkpoint, model, data)
