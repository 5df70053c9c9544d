"""Datasets (sources) and input modes (modes): DataConfig -> device-resident batches."""

from __future__ import annotations

from spatialsearch.data.modes import Batch, TaskBatches
from spatialsearch.data.sources import TaskData, TaskSet, load_task_data, missing_files

__all__ = ["Batch", "TaskBatches", "TaskData", "TaskSet", "load_task_data", "missing_files"]
