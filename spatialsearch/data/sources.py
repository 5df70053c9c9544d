"""Dataset sources -> per-task tensors: torchvision's files (the MNIST family here, the others
in formats.py), scikit-learn's digits, and the researcher's own data (own.py).

docs/reference.md, model 1. A dataset of K classes folds into ceil(K / C) tasks: task = class // C,
label = class % C. Splits: a seeded validation share carved from train drives checkpoint
selection; the official test split is only for the final best checkpoint. digits has no
official test split, so a seeded test share is carved first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np
import torch
from torch import Tensor

from spatialsearch.config import DataConfig
from spatialsearch.data import formats
from spatialsearch.data.idx import load_system_copy, system_copy
from spatialsearch.dataset_info import own_source
from spatialsearch.errors import DataError

#: torchvision class name -> raw files it reads under <root>/<name>/raw/.
RAW_FILES: dict[str, tuple[str, ...]] = {
    **{
        name: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        for name in ("MNIST", "FashionMNIST", "KMNIST")
    },
    "QMNIST": ("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int",
               "qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int"),
}


class TaskSet(NamedTuple):
    """One split of one task. Pixels stay 8-bit on the device (4x less memory and 4x less to
    gather per batch than float32); images() converts what a batch needs."""

    pixels: Tensor  # (N, C, H, W) uint8
    labels: Tensor  # (N,) int64 in [0, labels)
    scale: float  # pixel value of full intensity: image = pixels / scale, in [0, 1]

    def images(self, index: Tensor | slice = slice(None)) -> Tensor:
        """(n, C, H, W) float32 in [0, 1] of the samples at index."""
        return to_images(self.pixels[index], self.scale)


def to_images(pixels: Tensor, scale: float) -> Tensor:
    """uint8 pixels -> float32 images in [0, 1] (pixels / scale, exactly as a float divide)."""
    return pixels.to(torch.float32).div_(scale)


class TaskData(NamedTuple):
    """train / validation / test, each a list of T TaskSets on one device."""

    train: list[TaskSet]
    validation: list[TaskSet]
    test: list[TaskSet]


class Labelled(NamedTuple):
    pixels: Tensor  # (N, 1, H, W) uint8
    classes: Tensor  # (N,) int64 class ids
    scale: float  # full intensity: 255 (torchvision) or 16 (digits)


def missing_files(name: str, root: str) -> list[Path]:
    """The raw files torchvision needs for `name` that are not under root; none when root
    holds no files for it and a system-wide copy exists (system_source), and none for digits
    and own data (checked when the config is)."""
    return files_on_disk(name, root)[1]


def files_on_disk(name: str, root: str) -> tuple[list[Path] | None, list[Path]]:
    """Offline, what reading `name` from root will use, in one look: (the system-wide copy it
    reads (system_source), or None; the files it lacks, or none)."""
    system = system_source(name, root)
    if name == "digits" or own_source(name) is not None:
        return None, []
    if formats.handles(name):
        return None, formats.missing(name, root)
    if system is not None:
        return system, []
    raw = Path(root) / name / "raw"
    return None, [raw / file for file in RAW_FILES[name] if not (raw / file).is_file()]


def system_source(name: str, root: str) -> list[Path] | None:
    """The system-wide copy of `name` to read (Debian's dataset-fashion-mnist for
    FashionMNIST), used whenever <root>/<name>/raw holds no files; else None."""
    if name not in RAW_FILES:
        return None
    raw = Path(root) / name / "raw"
    if raw.is_dir() and any(raw.iterdir()):
        return None
    return system_copy(name, RAW_FILES[name])


def _absent_message(name: str, root: str, missing: list[Path]) -> str:
    raw = Path(root) / name / "raw"
    return (
        f"datasets: {name} not found under root {root!r}: expected the uncompressed files "
        f"{', '.join(RAW_FILES[name])} in {raw}/ (missing: {', '.join(p.name for p in missing)})."
        f" Get them by running once online with `download: true` (--download), or copy them "
        f"there from another machine{_system_hint(name)}; `datasets: [digits]` runs offline."
    )


def _system_hint(name: str) -> str:
    return (", or install Debian's dataset-fashion-mnist (read from "
            "/usr/share/datasets/fashion-mnist)") if name == "FashionMNIST" else ""


def _torchvision(name: str, root: str, train: bool, download: bool) -> Labelled:
    if not download and (system := system_source(name, root)) is not None:
        return Labelled(*load_system_copy(name, system, train), 255.0)
    import torchvision.datasets as tvd

    if not download and (missing := missing_files(name, root)):
        raise DataError(_absent_message(name, root, missing))
    try:
        if name == "QMNIST":
            dataset = tvd.QMNIST(root, what="train" if train else "test", download=download)
        else:
            dataset = getattr(tvd, name)(root, train=train, download=download)
    except (RuntimeError, OSError, ValueError, AssertionError, TypeError) as error:
        raise DataError(f"datasets: cannot read {name} from {root!r}: {error}") from error
    targets = dataset.targets
    classes = targets[:, 0] if targets.dim() == 2 else targets  # QMNIST: (N, 8) table
    return Labelled(dataset.data.unsqueeze(1).contiguous(), classes.to(torch.int64), 255.0)


def _digits() -> Labelled:
    """scikit-learn's digits: 1797 images 8x8, pixel values 0..16.

    Read from the CSV scikit-learn ships (what load_digits reads) without importing
    sklearn.datasets, which costs ~0.8 s in every fresh Ray worker and `train` run.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("datasets: digits needs scikit-learn installed (pip install scikit-learn)")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    table = np.loadtxt(path, delimiter=",", dtype=np.int64)  # 64 pixels + class per row
    pixels = torch.from_numpy(table[:, :-1].astype(np.uint8).reshape(-1, 1, 8, 8))
    return Labelled(pixels, torch.from_numpy(table[:, -1].copy()), 16.0)


def _carve(data: Labelled, fraction: float, generator: torch.Generator
           ) -> tuple[Labelled, Labelled]:
    """Seeded split -> (rest, carved), carved holding round(fraction * N) samples."""
    order = torch.randperm(len(data.classes), generator=generator)
    count = round(fraction * len(order))
    carved, rest = order[:count], order[count:]
    return (Labelled(data.pixels[rest], data.classes[rest], data.scale),
            Labelled(data.pixels[carved], data.classes[carved], data.scale))


def _fold(data: Labelled, labels: int, num_tasks: int) -> list[TaskSet]:
    """Class k -> task k // C, label k % C."""
    task_of = data.classes // labels
    return [
        TaskSet(data.pixels[task_of == t].contiguous(), data.classes[task_of == t] % labels,
                data.scale)
        for t in range(num_tasks)
    ]


class RawDataset(NamedTuple):
    """One dataset as its files hold it, before any split: what a search reads once."""

    train: Labelled
    test: Labelled | None  # None: digits (a seeded test share is carved from train)


def read_dataset(name: str, root: str, download: bool) -> RawDataset:
    """Read (and parse) one dataset's files.

    Raises:
        DataError: a torchvision dataset is absent (offline) or unreadable.
    """
    if name == "digits":
        return RawDataset(_digits(), None)
    if own_source(name) is not None:
        from spatialsearch.data.own import read_own

        (train, train_classes), (test, test_classes) = read_own(name)
        return RawDataset(Labelled(train, train_classes, 255.0),
                          Labelled(test, test_classes, 255.0))
    if formats.handles(name):
        if download and formats.missing(name, root):
            formats.download(name, root)
        (train_x, train_y), (test_x, test_y) = formats.read(name, root)
        return RawDataset(Labelled(torch.from_numpy(train_x), torch.from_numpy(train_y), 255.0),
                          Labelled(torch.from_numpy(test_x), torch.from_numpy(test_y), 255.0))
    return RawDataset(_torchvision(name, root, True, download),
                      _torchvision(name, root, False, download))


def split_task_data(datasets: Mapping[str, RawDataset], config: DataConfig, seed: int,
                    device: torch.device) -> TaskData:
    """Split each of config's datasets (read_dataset) into train / validation / test with a
    generator seeded by `seed`, fold them into tasks and move them to device.

    Raises:
        DataError: a task without samples in a split.
    """
    generator = torch.Generator().manual_seed(seed)
    splits: TaskData = TaskData([], [], [])
    for name, num_tasks in zip(config.datasets, config.tasks_per_dataset):
        train, test = datasets[name]
        if test is None:
            train, test = _carve(train, config.test_fraction, generator)
        if 0 < config.train_samples < len(train.classes):
            _, train = _carve(train, config.train_samples / len(train.classes), generator)
        train, validation = _carve(train, config.validation_fraction, generator)
        for bucket, part in zip(splits, (train, validation, test)):
            bucket.extend(_fold(part, config.labels, num_tasks))
    for bucket in splits:
        for index, task in enumerate(bucket):
            if len(task.labels) == 0:
                raise DataError(f"datasets: task {index} has no samples in a split; "
                                f"lower `labels` or use more data")
            bucket[index] = TaskSet(task.pixels.to(device), task.labels.to(device), task.scale)
    return splits


def load_task_data(config: DataConfig, seed: int, device: torch.device) -> TaskData:
    """Read every dataset of `config` from its files, then split_task_data.

    Raises:
        DataError: a torchvision dataset is absent (offline) or unreadable.
    """
    datasets = {name: read_dataset(name, config.root, config.download)
                for name in dict.fromkeys(config.datasets)}
    return split_task_data(datasets, config, seed, device)
