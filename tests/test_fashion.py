"""Fashion-MNIST from Debian's dataset-fashion-mnist files (read gzipped, in place), the IDX
reader, and train_samples subsets. `make test` installs the package when run as root."""

from __future__ import annotations

import gzip
import shutil

import pytest
import torch

from spatialsearch.config import trial_config_from_dict
from spatialsearch.data.idx import DEBIAN_FASHION_MNIST, read_idx
from spatialsearch.data.sources import RAW_FILES, load_task_data, missing_files, system_source
from spatialsearch.errors import DataError
from tests.idx_files import write_dataset

CPU = torch.device("cpu")
debian = pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed (make test installs it as root)")


@debian
def test_real_fashion_mnist_from_debian_files(tmp_path, caplog):
    assert missing_files("FashionMNIST", str(tmp_path)) == []
    config = trial_config_from_dict({"datasets": ["FashionMNIST"], "labels": 5,
                                     "root": str(tmp_path)})
    with caplog.at_level("INFO", logger="spatialsearch.data.idx"):
        data = load_task_data(config.data, seed=1, device=CPU)
    assert "t10k-images-idx3-ubyte.gz" in caplog.text
    assert "train-labels-idx1-ubyte.gz" in caplog.text
    # the real data set: 60,000 train (10% carved as validation) and 10,000 test images, 6,000
    # and 1,000 of each class; two tasks of five labels
    assert sum(len(t.labels) for t in data.train) == 54000
    assert sum(len(t.labels) for t in data.validation) == 6000
    assert [len(t.labels) for t in data.test] == [5000, 5000]
    for task in data.test:
        assert torch.bincount(task.labels).tolist() == [1000] * 5
    assert not (tmp_path / "FashionMNIST").exists()  # read in place, nothing copied


@debian
def test_debian_reader_equals_torchvision_on_the_same_files(tmp_path):
    import torchvision

    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES["FashionMNIST"]:  # torchvision wants all four (55 MB uncompressed)
        with gzip.open(DEBIAN_FASHION_MNIST / f"{name}.gz") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    theirs = torchvision.datasets.FashionMNIST(str(tmp_path), train=False)
    images = read_idx(DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz")
    assert torch.equal(images, theirs.data) and torch.equal(labels.long(), theirs.targets)


def test_files_under_root_win_over_the_system_copy(tmp_path):
    write_dataset(tmp_path, "FashionMNIST", train=40, test=10)
    assert system_source("FashionMNIST", str(tmp_path)) is None
    config = trial_config_from_dict({"datasets": ["FashionMNIST"], "root": str(tmp_path)})
    data = load_task_data(config.data, seed=1, device=CPU)
    assert sum(len(t.labels) for t in data.test) == 10
    assert system_source("MNIST", str(tmp_path / "empty")) is None  # no system copy of MNIST


def test_idx_reader_refuses_what_is_not_idx(tmp_path):
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as file:
        file.write(b"\x1f\x00\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(DataError, match="is not an unsigned-byte IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(DataError, match=r"holds 3 values, its header says \(5,\)"):
        read_idx(short)
    good = tmp_path / "good"
    good.write_bytes(b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03" + bytes(range(6)))
    assert read_idx(good).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_train_samples_takes_a_seeded_subset_before_validation():
    def load(samples: int, seed: int):
        config = trial_config_from_dict({"datasets": ["digits"], "train_samples": samples})
        return load_task_data(config.data, seed=seed, device=CPU)

    full, subset, again, other = load(0, 1), load(500, 1), load(500, 1), load(500, 2)
    assert sum(len(t.labels) for t in subset.train + subset.validation) == 500
    assert sum(len(t.labels) for t in subset.validation) == 50
    assert torch.equal(subset.train[0].pixels, again.train[0].pixels)
    assert not torch.equal(subset.train[0].pixels, other.train[0].pixels)
    for a, b in zip(full.test, subset.test):  # the test split is untouched
        assert torch.equal(a.pixels, b.pixels)
    assert sum(len(t.labels) for t in load(5000, 1).train) == sum(
        len(t.labels) for t in full.train)  # more than there is: all of it
