"""Tiny dataset files in torchvision's on-disk formats (IDX, big-endian), for tests/benchmarks."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from spatialsearch.data.sources import RAW_FILES


def _idx(array: np.ndarray, type_code: int) -> bytes:
    header = struct.pack(">HBB", 0, type_code, array.ndim)
    header += b"".join(struct.pack(">I", size) for size in array.shape)
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    return header + big_endian.tobytes()


def write_dataset(root: Path, name: str, train: int, test: int, seed: int = 0,
                  shift: int = 0) -> None:
    """Write `name` under root/<name>/raw with random 28x28 images whose brightness pattern
    depends on the class (so a network can learn it): class c lights row block c."""
    rng = np.random.default_rng(seed)
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    files = RAW_FILES[name]
    for split, count, (image_file, label_file) in (
        ("train", train, files[0:2]), ("test", test, files[2:4])
    ):
        classes = rng.integers(0, 10, count)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for i, c in enumerate(classes):
            row = (int(c) + shift) % 10 * 2 + 4
            images[i, row:row + 2, 4:24] = 250
        (raw / image_file).write_bytes(_idx(images, 0x08))
        if name == "QMNIST":  # (N, 8) int32 table: class, writer, ... ; class in column 0
            table = np.zeros((count, 8), dtype=np.int32)
            table[:, 0] = classes
            table[:, 1] = rng.integers(0, 500, count)
            (raw / label_file).write_bytes(_idx(table, 0x0C))
        else:
            (raw / label_file).write_bytes(_idx(classes.astype(np.uint8), 0x08))


def write_indexed_dataset(root: Path, name: str, train: int, test: int) -> None:
    """Like write_dataset, but every image is distinct: pixels 0 and 1 hold its index
    (train 0.., test 1000..) as i // 256, i % 256; classes cycle 0..9."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    files = RAW_FILES[name]
    for count, start, (image_file, label_file) in ((train, 0, files[0:2]),
                                                   (test, 1000, files[2:4])):
        images = np.zeros((count, 28, 28), dtype=np.uint8)
        index = np.arange(start, start + count)
        images[:, 0, 0], images[:, 0, 1] = index // 256, index % 256
        (raw / image_file).write_bytes(_idx(images, 0x08))
        (raw / label_file).write_bytes(_idx((index % 10).astype(np.uint8), 0x08))
