"""Every dataset a run can name, in one table: its number of classes K, the shape (C, H, W) of
one image, and how many images its files hold (train + test; for the memory estimate).

    datasets: [CIFAR10]                      # a torchvision image-classification dataset
    datasets: [EMNIST-letters]               # EMNIST with its split
    datasets: [{npz: path/to/data.npz}]      # x_train, y_train, x_test, y_test
    datasets: [{image_folder: path}]         # <path>/train/<class>/*.png, <path>/test/...

A dataset of K classes folds into ceil(K / C) tasks (C = labels per task). The researcher's
own data is named by a string "npz:<absolute path>" / "image_folder:<absolute path>" once
parsed; its K and shape come from its files (data/own.py, read and checked when the config is
validated, before Ray starts). Checked against torchvision's own classes in tests/test_data.py.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from spatialsearch.data.own import describe
from spatialsearch.dataset_info import OWN_KINDS, DatasetInfo, own_source
from spatialsearch.errors import ConfigError
from spatialsearch.validation import suggest

_MNIST_LIKE = (1, 28, 28)
#: EMNIST split -> (classes, images); letters' labels 1..26 are read as 0..25
EMNIST_SPLITS = {"byclass": (62, 814255), "bymerge": (47, 814255), "balanced": (47, 131600),
                 "letters": (26, 145600), "digits": (10, 280000), "mnist": (10, 70000)}
CATALOG: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(10, (1, 8, 8), 1797),
    "MNIST": DatasetInfo(10, _MNIST_LIKE, 70000),
    "FashionMNIST": DatasetInfo(10, _MNIST_LIKE, 70000),
    "KMNIST": DatasetInfo(10, _MNIST_LIKE, 70000),
    "QMNIST": DatasetInfo(10, _MNIST_LIKE, 120000),
    "CIFAR10": DatasetInfo(10, (3, 32, 32), 60000),
    "CIFAR100": DatasetInfo(100, (3, 32, 32), 60000),
    "SVHN": DatasetInfo(10, (3, 32, 32), 99289),
    "USPS": DatasetInfo(10, (1, 16, 16), 9298),
    **{f"EMNIST-{split}": DatasetInfo(classes, _MNIST_LIKE, images)
       for split, (classes, images) in EMNIST_SPLITS.items()},
}
#: own datasets described without their files: a trial on a node that lacks them gets them
#: through Ray's object store (data/shared.py remembers them there before parsing its config)
_REMEMBERED: dict[str, DatasetInfo] = {}


def remember(name: str, info: DatasetInfo) -> None:
    """Own data `name` is `info`, known from arrays already read (no file is opened)."""
    _REMEMBERED[name] = info


def parse_dataset(value: Any, path: str) -> str:
    """One entry of `datasets`: a catalogue name, or {npz: file} / {image_folder: folder},
    whose files are read and checked now.

    Raises:
        ConfigError: an unknown name or entry; own data that is missing or malformed (one
            line saying what is wrong).
    """
    if isinstance(value, str) and (value in CATALOG or value in _REMEMBERED):
        return value
    if isinstance(value, str) and own_source(value) is not None:  # as a saved config holds it
        kind, where = own_source(value)
        value = {kind: str(where)}
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in OWN_KINDS:
        kind, where = next(iter(value.items()))
        if not isinstance(where, str) or not where or "\x00" in where:
            raise ConfigError(f"{path}.{kind}: must be a path, got {where!r}")
        name = f"{kind}:{Path(where).expanduser().resolve()}"
        describe(name, f"{path}.{kind}")
        return name
    raise ConfigError(f"{path}: must be one of {', '.join(CATALOG)}, or {{npz: FILE}} or "
                      f"{{image_folder: FOLDER}}, got {value!r}{suggest(str(value), CATALOG)}")


@lru_cache(maxsize=64)
def dataset_info(name: str) -> DatasetInfo:
    """K, shape and size of a parsed dataset name (own data: from its files)."""
    if name in CATALOG:
        return CATALOG[name]
    if name in _REMEMBERED:
        return _REMEMBERED[name]
    return describe(name, "datasets")
