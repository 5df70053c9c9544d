"""The researcher's own data: an .npz file or an image folder, checked and read into the same
uint8 arrays as every other dataset (docs/reference.md, "Your own data").

npz: arrays x_train, y_train, x_test, y_test. x: (N, H, W) or (N, C, H, W), uint8, or float
with values in [0, 1] (stored as round(255 x): the data path keeps 8-bit pixels); y: (N,)
integers >= 0, class k of K = max(y) + 1 classes.
image_folder: <folder>/train/<class>/<image> and <folder>/test/<class>/<image>, torchvision's
ImageFolder layout: classes are the sorted sub-folder names (the same in train and test),
images are read as RGB (C = 3), as ImageFolder's default loader does, and must share one size.
"""

from __future__ import annotations

import zipfile
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from spatialsearch.dataset_info import DatasetInfo, own_source
from spatialsearch.errors import ConfigError, DataError

#: the image files torchvision's ImageFolder takes
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def describe(name: str, path: str) -> DatasetInfo:
    """K, shape and size of own data `name` ("npz:..." / "image_folder:..."), its files
    checked. Raises ConfigError at `path`, one line saying what is wrong."""
    found = _inspect(name)
    if isinstance(found, str):
        raise ConfigError(f"{path}: {found}")
    return found


@lru_cache(maxsize=32)
def _inspect(name: str) -> DatasetInfo | str:
    kind, where = own_source(name)
    try:
        return _inspect_npz(where) if kind == "npz" else _inspect_folder(where)
    except (OSError, ValueError) as error:  # a name too long, a NUL byte, no permission
        return f"cannot read {str(where)!r}: {error}"


def _load_npz(where: Path) -> dict[str, np.ndarray] | str:
    if not where.is_file():
        return f"no file {str(where)!r}"
    try:
        with np.load(where, allow_pickle=False) as archive:
            missing = [key for key in NPZ_ARRAYS if key not in archive.files]
            if missing:
                return (f"{str(where)!r} lacks {', '.join(missing)}; an .npz dataset holds "
                        f"{', '.join(NPZ_ARRAYS)}")
            return {key: archive[key] for key in NPZ_ARRAYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:  # not a
        # zip, a truncated member, pickled objects
        return f"{str(where)!r} is not a readable .npz file ({error})"


def _inspect_npz(where: Path) -> DatasetInfo | str:
    arrays = _load_npz(where)
    if isinstance(arrays, str):
        return arrays
    shapes = {}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (3, 4) or 0 in x.shape:
            return f"x_{split} must be (N, H, W) or (N, C, H, W), got shape {x.shape}"
        if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
            return f"x_{split} must be uint8, or float in [0, 1], got dtype {x.dtype}"
        if x.dtype != np.uint8 and not (np.all(np.isfinite(x)) and x.min() >= 0
                                        and x.max() <= 1):
            return f"x_{split} is float: its values must lie in [0, 1]"
        if y.ndim != 1 or len(y) != len(x):
            return f"y_{split} must be ({len(x)},): one class per image, got shape {y.shape}"
        if not np.issubdtype(y.dtype, np.integer):
            return f"y_{split} must hold integer classes, got dtype {y.dtype}"
        if y.min() < 0:
            return f"y_{split} holds class {int(y.min())}; classes are integers >= 0"
        shapes[split] = (1, *x.shape[1:]) if x.ndim == 3 else tuple(x.shape[1:])
    if shapes["train"] != shapes["test"]:
        return f"x_train images are {shapes['train']}, x_test's {shapes['test']}; they must match"
    classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    if classes < 2:
        return "y_train and y_test hold one class; a dataset needs >= 2"
    return DatasetInfo(classes, shapes["train"], len(arrays["y_train"]) + len(arrays["y_test"]))


def _images(folder: Path) -> dict[str, list[Path]]:
    """class name -> its image files, sorted, as ImageFolder finds them."""
    return {entry.name: sorted(p for p in entry.rglob("*")
                               if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            for entry in sorted(folder.iterdir()) if entry.is_dir()}


def _inspect_folder(where: Path) -> DatasetInfo | str:
    from PIL import Image

    if not where.is_dir():
        return f"no folder {str(where)!r}"
    found = {}
    for split in ("train", "test"):
        if not (where / split).is_dir():
            return (f"{str(where)!r} has no {split}/ folder; an image folder holds "
                    f"train/<class>/ and test/<class>/")
        found[split] = _images(where / split)
    classes = list(found["train"])
    if len(classes) < 2:
        return f"{str(where / 'train')!r} has {len(classes)} class folder(s); a dataset needs >= 2"
    if list(found["test"]) != classes:
        return (f"test/ holds class folders {list(found['test'])}, train/ {classes}; they must "
                f"be the same")
    sizes, count = set(), 0
    for split, by_class in found.items():
        for label, files in by_class.items():
            if not files:
                return (f"{str(where / split / label)!r} holds no image "
                        f"({', '.join(IMAGE_EXTENSIONS)})")
            for file in files:
                try:
                    with Image.open(file) as image:
                        sizes.add(image.size)
                except OSError as error:
                    return f"{str(file)!r} is not a readable image ({error})"
            count += len(files)
        if len(sizes) > 1:
            return f"images must share one size, found {sorted(sizes)} (width, height)"
    width, height = sizes.pop()
    return DatasetInfo(len(classes), (3, height, width), count)


Split = tuple[torch.Tensor, torch.Tensor]  # pixels (N, C, H, W) uint8, classes (N,) int64


def read_own(name: str) -> tuple[Split, Split]:
    """((train pixels (N, C, H, W) uint8, classes (N,) int64), (test ...)) of own data.

    Raises:
        DataError: the files changed since they were checked, or cannot be read.
    """
    kind, where = own_source(name)
    found = _inspect(name)
    if isinstance(found, str):
        raise DataError(f"datasets: {found}")
    if kind == "npz":
        arrays = _load_npz(where)
        return tuple(_npz_split(arrays[f"x_{s}"], arrays[f"y_{s}"]) for s in ("train", "test"))
    return tuple(_folder_split(where / split) for split in ("train", "test"))


def _npz_split(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dtype != np.uint8:
        x = np.rint(x.astype(np.float64) * 255).astype(np.uint8)
    pixels = x[:, None] if x.ndim == 3 else x
    return torch.from_numpy(np.ascontiguousarray(pixels)), torch.from_numpy(y.astype(np.int64))


def _folder_split(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    pixels, classes = [], []
    for index, (_, files) in enumerate(_images(folder).items()):
        for file in files:
            try:
                with Image.open(file) as image:
                    pixels.append(np.asarray(image.convert("RGB")).transpose(2, 0, 1))
            except OSError as error:
                raise DataError(f"datasets: cannot read {str(file)!r}: {error}") from error
            classes.append(index)
    return torch.from_numpy(np.stack(pixels)), torch.tensor(classes, dtype=torch.int64)
