"""Datasets a search's driver reads once and shares with every trial through Ray's object
store: the search's TrialPlan holds them, and tune.with_parameters puts the plan there once.
A trial on any node splits its own train / validation / test from these arrays
(split_task_data, seeded as when it reads the files itself): no trial reads or parses a
dataset file, and worker nodes need none.

The arrays are numpy (uint8 pixels, int64 classes), which Ray stores out of band and each
node's trials read without a copy; the splits copy what they take.
"""

from __future__ import annotations

import warnings
from typing import Iterable, NamedTuple

import numpy as np
import torch

from spatialsearch.config import DataConfig
from spatialsearch.data.sources import (
    Labelled,
    RawDataset,
    TaskData,
    read_dataset,
    split_task_data,
)
from spatialsearch.dataset_info import DatasetInfo, own_source
from spatialsearch.datasets import remember


class _Arrays(NamedTuple):
    pixels: np.ndarray  # (N, 1, H, W) uint8
    classes: np.ndarray  # (N,) int64
    scale: float

    @classmethod
    def of(cls, labelled: Labelled) -> _Arrays:
        return cls(labelled.pixels.numpy(), labelled.classes.numpy(), labelled.scale)

    def labelled(self) -> Labelled:
        with warnings.catch_warnings():  # read-only (the object store's): never written to
            warnings.simplefilter("ignore", UserWarning)
            return Labelled(torch.from_numpy(self.pixels), torch.from_numpy(self.classes),
                             self.scale)


class SharedDatasets:
    """name -> the dataset as read from its files under `root`, as numpy arrays."""

    def __init__(self, datasets: dict[str, RawDataset], root: str) -> None:
        self.root = root
        self.arrays = {name: (_Arrays.of(raw.train),
                              None if raw.test is None else _Arrays.of(raw.test))
                       for name, raw in datasets.items()}

    @classmethod
    def read(cls, names: Iterable[str], root: str, download: bool) -> SharedDatasets:
        """Read each named dataset once (DataError as read_dataset raises it)."""
        return cls({name: read_dataset(name, root, download) for name in dict.fromkeys(names)},
                   root)

    @property
    def nbytes(self) -> int:
        return sum(a.pixels.nbytes + a.classes.nbytes for pair in self.arrays.values()
                   for a in pair if a is not None)

    def remember_own(self) -> None:
        """Describe the own datasets it holds from their arrays (datasets.remember), so that a
        trial's config names them on a node without their files."""
        for name, (train, test) in self.arrays.items():
            if own_source(name) is not None and test is not None:
                classes = int(max(train.classes.max(), test.classes.max())) + 1
                remember(name, DatasetInfo(classes, tuple(train.pixels.shape[1:]),
                                           len(train.classes) + len(test.classes)))

    def covers(self, config: DataConfig) -> bool:
        """Does it hold every dataset of a trial's config, read from the same root?"""
        return config.root == self.root and set(config.datasets) <= set(self.arrays)

    def task_data(self, config: DataConfig, seed: int, device: torch.device) -> TaskData:
        """The trial's splits, exactly as load_task_data(config, seed, device) makes them."""
        datasets = {name: RawDataset(train.labelled(), None if test is None else test.labelled())
                    for name, (train, test) in self.arrays.items() if name in config.datasets}
        return split_task_data(datasets, config, seed, device)
