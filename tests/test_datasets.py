"""Every dataset source (issue 25): each loader reads tiny files that this test writes in the
dataset's own on-disk format, and returns what torchvision's own class returns on the same
files; own data (.npz, image folders) is checked before anything runs, one line per problem;
a search runs end to end on each."""

from __future__ import annotations

import bz2
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
import yaml

from spatialsearch.config import trial_config_from_dict
from spatialsearch.data import formats
from spatialsearch.data.sources import read_dataset
from spatialsearch.datasets import CATALOG, EMNIST_SPLITS
from tests.refusals import assert_refused

RNG = np.random.default_rng(0)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _ours(name: str, root: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    raw = read_dataset(name, str(root), download=False)
    return tuple((part.pixels.numpy(), part.classes.numpy()) for part in (raw.train, raw.test))


def _write_cifar(root: Path, name: str, counts: tuple[int, ...]) -> None:
    folder = root / ("cifar-10-batches-py" if name == "CIFAR10" else "cifar-100-python")
    folder.mkdir(parents=True)
    names = ([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"] if name == "CIFAR10"
             else ["train", "test"])
    key, classes = ("labels", 10) if name == "CIFAR10" else ("fine_labels", 100)
    for file, count in zip(names, counts):
        entry = {"data": RNG.integers(0, 256, (count, 3072), dtype=np.uint8),
                 key: RNG.integers(0, classes, count).tolist()}
        (folder / file).write_bytes(pickle.dumps(entry))
    meta = "batches.meta" if name == "CIFAR10" else "meta"
    label_key = "label_names" if name == "CIFAR10" else "fine_label_names"
    (folder / meta).write_bytes(pickle.dumps({label_key: [str(i) for i in range(classes)]}))


@pytest.mark.parametrize("name", ["CIFAR10", "CIFAR100"])
def test_cifar_pickles_read_as_torchvision_reads_them(tmp_path, name):
    counts = (3, 2, 4, 1, 2, 5) if name == "CIFAR10" else (7, 4)
    _write_cifar(tmp_path, name, counts)
    reference = getattr(tvd, name)
    folder = tmp_path / reference.base_folder
    fake = type("Fake" + name, (reference,), {   # torchvision checks each file's md5
        "train_list": [[f, _md5(folder / f)] for f, _ in reference.train_list],
        "test_list": [[f, _md5(folder / f)] for f, _ in reference.test_list],
        "meta": {**reference.meta, "md5": _md5(folder / reference.meta["filename"])}})
    ours = _ours(name, tmp_path)
    for train, (pixels, classes) in zip((True, False), ours):
        theirs = fake(str(tmp_path), train=train)
        assert np.array_equal(pixels, theirs.data.transpose(0, 3, 1, 2))  # HWC -> CHW
        assert classes.tolist() == theirs.targets
    cached = list((tmp_path / formats.CACHE_FOLDER).glob(f"{name}-*.npz"))
    assert len(cached) == 1  # converted once, keyed by the files' hash ...
    again = _ours(name, tmp_path)  # ... and read back from there
    assert all(np.array_equal(a, b) for x, y in zip(ours, again) for a, b in zip(x, y))


def test_svhn_mat_files_read_as_torchvision_reads_them(tmp_path):
    import scipy.io

    for split, count in (("train", 6), ("test", 3)):
        scipy.io.savemat(tmp_path / f"{split}_32x32.mat", {
            "X": RNG.integers(0, 256, (32, 32, 3, count), dtype=np.uint8),
            "y": np.array([[10], [1], [5], [10], [9], [3]][:count], dtype=np.uint8)})
    split_list = {s: ["", f"{s}_32x32.mat", _md5(tmp_path / f"{s}_32x32.mat")]
                  for s in ("train", "test")}
    fake = type("FakeSVHN", (tvd.SVHN,), {"split_list": split_list})
    for split, (pixels, classes) in zip(("train", "test"), _ours("SVHN", tmp_path)):
        theirs = fake(str(tmp_path), split=split)
        assert np.array_equal(pixels, theirs.data)
        assert classes.tolist() == theirs.labels.tolist()
        assert 0 in classes.tolist()  # "10" is the digit 0


def test_usps_bz2_files_read_as_torchvision_reads_them(tmp_path):
    for file, count in (("usps.bz2", 5), ("usps.t.bz2", 3)):
        lines = []
        for _ in range(count):
            values = RNG.uniform(-1, 1, 256)
            lines.append(f"{RNG.integers(1, 11)} " + " ".join(
                f"{i + 1}:{v:.6f}" for i, v in enumerate(values)))
        with bz2.open(tmp_path / file, "wt") as handle:
            handle.write("\n".join(lines) + "\n")
    for train, (pixels, classes) in zip((True, False), _ours("USPS", tmp_path)):
        theirs = tvd.USPS(str(tmp_path), train=train)
        assert np.array_equal(pixels[:, 0], theirs.data)
        assert classes.tolist() == theirs.targets


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("split", ["letters", "balanced"])
def test_emnist_idx_files_read_as_torchvision_reads_them(tmp_path, split):
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    classes = EMNIST_SPLITS[split][0]
    low = 1 if split == "letters" else 0  # letters are labelled 1..26 in the files
    for part, count in (("train", 6), ("test", 4)):
        _write_idx(raw / f"emnist-{split}-{part}-images-idx3-ubyte",
                   RNG.integers(0, 256, (count, 28, 28)))
        _write_idx(raw / f"emnist-{split}-{part}-labels-idx1-ubyte",
                   RNG.integers(low, low + classes, count))
    for train, (pixels, ours) in zip((True, False), _ours(f"EMNIST-{split}", tmp_path)):
        theirs = tvd.EMNIST(str(tmp_path), split=split, train=train)
        assert np.array_equal(pixels[:, 0], theirs.data.numpy())
        assert ours.tolist() == (theirs.targets - low).tolist()
        assert len(theirs.classes) - low == CATALOG[f"EMNIST-{split}"].classes


def test_the_catalogue_agrees_with_torchvision():
    assert len(tvd.CIFAR100.meta) and CATALOG["CIFAR100"].classes == 100
    assert {f"EMNIST-{s}" for s in tvd.EMNIST.splits} <= set(CATALOG)
    for split in tvd.EMNIST.splits:
        named = tvd.EMNIST.classes_split_dict[split]
        assert CATALOG[f"EMNIST-{split}"].classes == len(named) - (split == "letters")
    assert CATALOG["SVHN"].samples == 73257 + 26032 and CATALOG["USPS"].samples == 7291 + 2007


def _npz(path: Path, **override) -> Path:
    arrays = {"x_train": RNG.integers(0, 256, (40, 3, 6, 6), dtype=np.uint8),
              "y_train": np.arange(40) % 4, "x_test": RNG.integers(0, 256, (12, 3, 6, 6),
                                                                    dtype=np.uint8),
              "y_test": np.arange(12) % 4}
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_an_npz_dataset_reads_its_arrays_and_folds_into_tasks(tmp_path):
    path = _npz(tmp_path / "mine.npz")
    config = trial_config_from_dict({"datasets": [{"npz": str(path)}], "labels": 2})
    assert config.data.num_tasks == 2 and config.data.image_shape == (3, 6, 6)
    (pixels, classes), _ = _ours(config.data.datasets[0], tmp_path)
    with np.load(path) as reference:
        assert np.array_equal(pixels, reference["x_train"])
        assert classes.tolist() == reference["y_train"].tolist()
    floats = _npz(tmp_path / "floats.npz", x_train=np.full((40, 5, 5), 0.5),
                  x_test=np.ones((12, 5, 5)))
    (pixels, _), (test, _) = _ours(f"npz:{floats}", tmp_path)
    assert pixels.shape == (40, 1, 5, 5) and pixels.max() == 128 and test.min() == 255


def _image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog", "eel"),
                  size: tuple[int, int] = (7, 5)) -> Path:
    from PIL import Image

    for split, count in (("train", 4), ("test", 2)):
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True)
            for index in range(count):
                mode = "L" if index % 2 else "RGB"  # ImageFolder reads both as RGB
                shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
                Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8), mode).save(
                    folder / f"{index}.png")
    return root


def test_an_image_folder_reads_as_torchvisions_image_folder(tmp_path):
    root = _image_folder(tmp_path / "pictures")
    config = trial_config_from_dict({"datasets": [{"image_folder": str(root)}], "labels": 3})
    assert config.data.num_tasks == 1 and config.data.image_shape == (3, 5, 7)
    for split, (pixels, classes) in zip(("train", "test"), _ours(config.data.datasets[0],
                                                                 tmp_path)):
        theirs = tvd.ImageFolder(str(root / split))
        expected = np.stack([np.asarray(image).transpose(2, 0, 1) for image, _ in theirs])
        assert np.array_equal(pixels, expected)
        assert classes.tolist() == theirs.targets


BASE = {"metric": "val_accuracy", "space": {"lr": {"loguniform": [0.001, 0.01]}}}


@pytest.mark.parametrize("make, message", [
    (lambda p: {"npz": str(p / "absent.npz")}, r"fixed\.datasets\[0\]\.npz: no file"),
    (lambda p: {"npz": str(_corrupt(p))}, r"fixed\.datasets\[0\]\.npz: .* is not a readable"),
    (lambda p: {"npz": str(_npz(p / "a.npz", y_test=np.arange(12) - 3))},
     r"fixed\.datasets\[0\]\.npz: y_test holds class -3; classes are integers >= 0"),
    (lambda p: {"npz": str(_npz(p / "a.npz", x_test=np.zeros((12, 3, 7, 7), np.uint8)))},
     r"fixed\.datasets\[0\]\.npz: x_train images are \(3, 6, 6\), x_test's \(3, 7, 7\)"),
    (lambda p: {"npz": str(_npz(p / "a.npz", y_train=np.zeros(39, int)))},
     r"fixed\.datasets\[0\]\.npz: y_train must be \(40,\): one class per image"),
    (lambda p: {"npz": str(_npz(p / "a.npz", x_train=np.full((40, 6, 6), 2.0)))},
     r"fixed\.datasets\[0\]\.npz: x_train is float: its values must lie in \[0, 1\]"),
    (lambda p: {"npz": str(_npz(p / "a.npz", x_test=None))},
     r"fixed\.datasets\[0\]\.npz: .* lacks x_test"),
    (lambda p: {"image_folder": str(_image_folder(p / "one", classes=("cat",)))},
     r"fixed\.datasets\[0\]\.image_folder: .* has 1 class folder\(s\); a dataset needs >= 2"),
    (lambda p: "SVHM", r"fixed\.datasets\[0\]: must be one of .*\(did you mean 'SVHN'\?\)"),
], ids=["missing", "corrupt", "negative-label", "shapes", "lengths", "float-range",
        "no-x_test", "one-class", "unknown-name"])
def test_bad_data_is_refused_in_one_line_with_nothing_written(tmp_path, capsys, make, message):
    doc = {**BASE, "fixed": {"datasets": [make(tmp_path)], "labels": 2}}
    assert_refused(tmp_path, capsys, doc, message)


def _corrupt(folder: Path) -> Path:
    path = _npz(folder / "broken.npz")
    path.write_bytes(path.read_bytes()[:200])
    return path


def test_own_datasets_of_different_shapes_are_refused(tmp_path, capsys):
    first = _npz(tmp_path / "a.npz")
    second = _npz(tmp_path / "b.npz", x_train=np.zeros((40, 3, 8, 8), np.uint8),
                  x_test=np.zeros((12, 3, 8, 8), np.uint8))
    doc = {**BASE, "fixed": {"datasets": [{"npz": str(first)}, {"npz": str(second)}],
                             "labels": 2, "input": "concatenate"}}
    assert_refused(tmp_path, capsys, doc, r"datasets: all datasets of a run must share")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["npz", "image_folder"])
def test_a_search_runs_end_to_end_on_own_data(ray_session, tmp_path, kind):
    from spatialsearch.search.runner import run_search
    from spatialsearch.search.space.config import search_config_from_dict

    source = (_npz(tmp_path / "mine.npz") if kind == "npz"
              else _image_folder(tmp_path / "pictures", classes=("a", "b", "c", "d")))
    doc = {"name": kind, "output": str(tmp_path / "runs"), "num_samples": 2, "analyze": 1,
           "objectives": [{"metric": "val_accuracy", "mode": "max"},
                          {"metric": "segregation", "mode": "max"}],
           "scheduler": {"type": "fifo"},
           "fixed": {"datasets": [{kind: str(source)}], "labels": 2, "layers": [8, 6],
                     "epochs": 2, "validation_fraction": 0.25},
           "space": {"transport": {"loguniform": [0.1, 10]}}}
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(doc))
    summary = run_search(search_config_from_dict(doc), quiet=True)
    assert summary.trials == 2 and summary.errored == 0
    assert all(row["epochs"] == 2 for row in summary.table)
    assert (tmp_path / "runs" / kind / "pareto.csv").is_file()
    assert torch.load(summary.table[0]["checkpoint"], weights_only=True)["config"]["datasets"]


@pytest.mark.parametrize("model", [{"type": "linear", "layers": [12, 8]},
                                   {"type": "convolution", "layers": [4, 4], "kernel": 3}])
@pytest.mark.parametrize("mode", ["concatenate", "mix", "sequential"])
def test_three_channel_data_trains_with_linear_and_convolution_layers(tmp_path, model, mode):
    from spatialsearch.train import Trainer

    path = _npz(tmp_path / "rgb.npz")
    config = trial_config_from_dict({"datasets": [{"npz": str(path)}], "labels": 2,
                                     "input": mode, "epochs": 1, "device": "cpu",
                                     "validation_fraction": 0.25, **model})
    trainer = Trainer(config)
    channels = 3 * config.data.num_tasks if mode == "concatenate" else 3
    assert config.data.input_shape == (channels, 6, 6)
    results = trainer.run_epoch() | trainer.task_measures()
    assert np.isfinite(results["train_loss"]) and 0 <= results["val_accuracy"] <= 1
    assert set(results) >= {"segregation", "segregation_layer0", "segregation_layer1"}


def test_a_torchvision_dataset_whose_files_are_absent_is_refused_before_ray(tmp_path, capsys):
    from spatialsearch.cli import main

    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({**BASE, "fixed": {"datasets": ["CIFAR10"],
                                                       "root": str(tmp_path / "data")}}))
    assert main(["search", str(space), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fixed.datasets: CIFAR10 not found under root" in err
    assert "cifar-10-batches-py/data_batch_1" in err and not (tmp_path / "out").exists()


def test_a_trial_names_own_data_on_a_node_without_its_files(tmp_path):
    """The driver reads own data once; a trial on a node that lacks the file describes it
    from the shared arrays (SharedDatasets.remember_own), and splits it as from the file."""
    from spatialsearch import datasets
    from spatialsearch.data.shared import SharedDatasets
    from spatialsearch.data.sources import load_task_data

    path = _npz(tmp_path / "moved.npz")
    config = trial_config_from_dict({"datasets": [{"npz": str(path)}], "labels": 2})
    name = config.data.datasets[0]
    shared = SharedDatasets.read([name], config.data.root, False)
    expected = load_task_data(config.data, 3, torch.device("cpu"))
    path.unlink()  # "another node": the file is not there
    datasets.dataset_info.cache_clear()
    from spatialsearch.data import own

    own._inspect.cache_clear()
    with pytest.raises(Exception, match="no file"):
        trial_config_from_dict({"datasets": [name], "labels": 2})
    shared.remember_own()
    again = trial_config_from_dict({"datasets": [name], "labels": 2})
    assert again.data.image_shape == (3, 6, 6) and again.data.num_tasks == 2
    split = shared.task_data(again.data, 3, torch.device("cpu"))
    assert all(torch.equal(a.pixels, b.pixels) for a, b in zip(split.train, expected.train))
