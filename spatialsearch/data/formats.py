"""torchvision datasets beyond the MNIST family, read from the files torchvision's own classes
read, under the same root, without torchvision: CIFAR-10/100 (pickled batches), SVHN (MATLAB
.mat), USPS (bz2 libsvm text) and EMNIST (IDX files of each split).

Each becomes (pixels (N, C, H, W) uint8, classes (N,) int64) per split, equal to torchvision's
`data` (channels first) and targets (tests/test_datasets.py writes tiny files in each format
and compares). CIFAR and SVHN decode slowly (pickles of 50,000 images, a 180 MB .mat), so
their arrays are kept once converted: <root>/.spatialsearch-cache/<name>-<sha256 of the
files, 16 hex>.npz; changed files get a new key.
"""

from __future__ import annotations

import bz2
import hashlib
import pickle
from pathlib import Path

import numpy as np

from spatialsearch.data.idx import read_idx
from spatialsearch.errors import DataError

CACHE_FOLDER = ".spatialsearch-cache"
Split = tuple[np.ndarray, np.ndarray]  # pixels (N, C, H, W) uint8, classes (N,) int64


def files(name: str, root: str) -> tuple[list[Path], list[Path]]:
    """(train files, test files) torchvision reads for `name` under root."""
    base = Path(root)
    if name in ("CIFAR10", "CIFAR100"):
        folder = base / ("cifar-10-batches-py" if name == "CIFAR10" else "cifar-100-python")
        if name == "CIFAR10":
            return [folder / f"data_batch_{i}" for i in range(1, 6)], [folder / "test_batch"]
        return [folder / "train"], [folder / "test"]
    if name == "SVHN":
        return [base / "train_32x32.mat"], [base / "test_32x32.mat"]
    if name == "USPS":
        return [base / "usps.bz2"], [base / "usps.t.bz2"]
    split = name.removeprefix("EMNIST-")
    raw = base / "EMNIST" / "raw"
    return ([raw / f"emnist-{split}-train-images-idx3-ubyte",
             raw / f"emnist-{split}-train-labels-idx1-ubyte"],
            [raw / f"emnist-{split}-test-images-idx3-ubyte",
             raw / f"emnist-{split}-test-labels-idx1-ubyte"])


def handles(name: str) -> bool:
    return name in ("CIFAR10", "CIFAR100", "SVHN", "USPS") or name.startswith("EMNIST-")


def missing(name: str, root: str) -> list[Path]:
    train, test = files(name, root)
    return [path for path in train + test if not path.is_file()]


def download(name: str, root: str) -> None:
    """Fetch the files with torchvision's own class (online only)."""
    import torchvision.datasets as tvd

    try:
        for train in (True, False):
            if name.startswith("EMNIST-"):
                tvd.EMNIST(root, split=name.removeprefix("EMNIST-"), train=train, download=True)
            elif name == "SVHN":
                tvd.SVHN(root, split="train" if train else "test", download=True)
            else:
                getattr(tvd, name)(root, train=train, download=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise DataError(f"datasets: cannot download {name} into {root!r}: {error}") from error


def read(name: str, root: str) -> tuple[Split, Split]:
    """(train, test) of a dataset this module handles.

    Raises:
        DataError: a file is missing or does not hold what torchvision expects there.
    """
    absent = missing(name, root)
    if absent:
        raise DataError(f"datasets: {name} not found under root {root!r} (missing "
                        f"{', '.join(str(p) for p in absent)}); get the files (torchvision: "
                        f"download=True, or `download: true` online) or copy them there")
    train, test = files(name, root)
    try:
        if name in ("CIFAR10", "CIFAR100", "SVHN"):
            return _cached(name, root, train + test, lambda: (_decode(name, train),
                                                             _decode(name, test)))
        return _decode(name, train), _decode(name, test)
    except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as error:
        raise DataError(f"datasets: cannot read {name} from {root!r}: "
                        f"{type(error).__name__}: {error}") from error


def _decode(name: str, paths: list[Path]) -> Split:
    if name in ("CIFAR10", "CIFAR100"):
        pixels, classes = [], []
        for path in paths:
            with open(path, "rb") as file:
                entry = pickle.load(file, encoding="latin1")
            pixels.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            classes.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        return np.concatenate(pixels), np.asarray(classes, dtype=np.int64)
    if name == "SVHN":
        import scipy.io

        loaded = scipy.io.loadmat(paths[0])
        classes = loaded["y"].astype(np.int64).squeeze(1) % 10  # the digit 0 is class 10
        return np.ascontiguousarray(loaded["X"].transpose(3, 2, 0, 1)), classes
    if name == "USPS":
        with bz2.open(paths[0]) as file:
            rows = [line.decode().split() for line in file]
        values = np.asarray([[item.split(":")[-1] for item in row[1:]] for row in rows],
                            dtype=np.float32).reshape(-1, 1, 16, 16)
        pixels = ((values + 1) / 2 * 255).astype(np.uint8)  # [-1, 1] -> 0..255, as torchvision
        return pixels, np.asarray([int(row[0]) - 1 for row in rows], dtype=np.int64)
    images, labels = (read_idx(path).numpy() for path in paths)
    classes = labels.astype(np.int64) - (1 if name == "EMNIST-letters" else 0)  # letters 1..26
    return np.ascontiguousarray(images[:, None]), classes


def _cached(name: str, root: str, paths: list[Path], decode) -> tuple[Split, Split]:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 22), b""):
                digest.update(block)
    cache = Path(root) / CACHE_FOLDER / f"{name}-{digest.hexdigest()[:16]}.npz"
    if cache.is_file():
        with np.load(cache) as kept:
            return ((kept["train_x"], kept["train_y"]), (kept["test_x"], kept["test_y"]))
    (train_x, train_y), (test_x, test_y) = decode()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial.npz")
        np.savez(partial, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
        partial.replace(cache)
    except OSError:  # a read-only root: decode again next time
        pass
    return (train_x, train_y), (test_x, test_y)
