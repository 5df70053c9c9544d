"""What a run needs to know of a dataset (DatasetInfo), and which names are the researcher's
own data (own_source): shared by the catalogue (datasets.py) and the own-data reader
(data/own.py), so neither imports the other's module for them."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class DatasetInfo(NamedTuple):
    classes: int                        # K
    shape: tuple[int, int, int]         # (C, H, W) of one image
    samples: int                        # images in train + test


#: the kinds of own data, as a parsed name spells them: "npz:<path>", "image_folder:<path>"
OWN_KINDS = ("npz", "image_folder")


def own_source(name: str) -> tuple[str, Path] | None:
    """("npz" | "image_folder", path) of the researcher's own dataset; None for a catalogue
    name."""
    kind, _, path = name.partition(":")
    return (kind, Path(path)) if kind in OWN_KINDS and path else None
