"""IDX files (the MNIST family's format), gzipped or not, read straight into tensors; and the
system-wide copy of Fashion-MNIST that Debian's dataset-fashion-mnist package installs.

IDX: two zero bytes, a type byte (0x08 = unsigned byte), a byte counting the dimensions, one
big-endian int32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spatialsearch.errors import DataError

_logger = logging.getLogger(__name__)
#: where `apt-get install dataset-fashion-mnist` puts the real Fashion-MNIST, gzipped
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
SYSTEM_COPIES = {"FashionMNIST": DEBIAN_FASHION_MNIST}


def read_idx(path: Path) -> Tensor:
    """An unsigned-byte IDX file (.gz read as it streams) -> uint8 tensor of its shape.

    Raises:
        DataError: not an unsigned-byte IDX file, or shorter than its header says.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise DataError(f"datasets: cannot read {str(path)!r}: {error}") from error
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise DataError(f"datasets: {str(path)!r} is not an unsigned-byte IDX file")
    dims = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">i4", count=dims, offset=4))
    start = 4 + 4 * dims
    if len(data) - start != int(np.prod(shape)):
        raise DataError(f"datasets: {str(path)!r} holds {len(data) - start} values, its "
                        f"header says {shape}")
    return torch.frombuffer(bytearray(data[start:]), dtype=torch.uint8).reshape(shape)


def system_copy(name: str, raw_files: tuple[str, ...]) -> list[Path] | None:
    """The gzipped files of a system-wide copy of dataset `name` (same order as raw_files),
    when every one of them is there; else None."""
    folder = SYSTEM_COPIES.get(name)
    if folder is None:
        return None
    files = [folder / f"{raw}.gz" for raw in raw_files]
    return files if all(f.is_file() for f in files) else None


def load_system_copy(name: str, files: list[Path], train: bool) -> tuple[Tensor, Tensor]:
    """(images (N, 1, H, W) uint8, classes (N,) int64) of the train or test split, from
    system_copy's files (train images, train labels, test images, test labels)."""
    images, labels = files[:2] if train else files[2:]
    _logger.info("%s %s split: reading %s and %s", name, "train" if train else "test",
                 images, labels)
    pixels = read_idx(images)
    classes = read_idx(labels).to(torch.int64)
    if len(pixels) != len(classes):
        raise DataError(f"datasets: {images} has {len(pixels)} images, {labels} "
                        f"{len(classes)} labels")
    return pixels.unsqueeze(1).contiguous(), classes
