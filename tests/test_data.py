"""Datasets from torchvision's own files and digits; task folding; the three input modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spatialsearch.config import trial_config_from_dict
from spatialsearch.data.modes import TaskBatches
from spatialsearch.data.sources import (
    _absent_message,
    load_task_data,
    missing_files,
    system_source,
)
from spatialsearch.errors import DataError
from tests.idx_files import write_dataset

TORCHVISION = ["MNIST", "FashionMNIST", "KMNIST", "QMNIST"]
CPU = torch.device("cpu")


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_files_are_read_through_torchvision(tmp_path, name):
    write_dataset(tmp_path, name, train=50, test=20)
    config = trial_config_from_dict({"datasets": [name], "labels": 5, "root": str(tmp_path),
                                     "validation_fraction": 0.2})
    data = load_task_data(config.data, seed=1, device=CPU)
    assert len(data.train) == 2  # 10 classes, 5 labels per task
    assert sum(len(t.labels) for t in data.train) == 40
    assert sum(len(t.labels) for t in data.validation) == 10
    assert sum(len(t.labels) for t in data.test) == 20
    for split in data:
        for task in split:
            assert task.pixels.shape[1:] == (1, 28, 28) and task.pixels.dtype == torch.uint8
            images = task.images()
            assert images.dtype == torch.float32
            assert 0.0 <= images.min() and images.max() <= 1.0
            assert torch.equal(images, task.pixels.float() / 255.0)
            assert task.labels.min() >= 0 and task.labels.max() < 5


def test_labels_fold_classes_into_tasks_as_the_spec_says(tmp_path):
    """Class k -> task k // C, label k % C; checked against the raw torchvision targets."""
    import torchvision

    write_dataset(tmp_path, "MNIST", train=200, test=30, seed=4)
    raw = torchvision.datasets.MNIST(str(tmp_path), train=False)
    config = trial_config_from_dict({"datasets": ["MNIST"], "labels": 3, "root": str(tmp_path)})
    data = load_task_data(config.data, seed=1, device=CPU)
    assert len(data.test) == 4  # ceil(10 / 3)
    for task, split in enumerate(data.test):
        wanted = raw.targets[raw.targets // 3 == task] % 3
        assert torch.equal(split.labels, wanted)
        assert len(split.pixels) == len(wanted)


def test_two_datasets_make_one_task_each_and_keep_their_order(tmp_path):
    write_dataset(tmp_path, "MNIST", 40, 10, seed=1)
    write_dataset(tmp_path, "FashionMNIST", 30, 10, seed=2, shift=5)
    config = trial_config_from_dict({"datasets": ["MNIST", "FashionMNIST"], "labels": 10,
                                     "root": str(tmp_path), "validation_fraction": 0.25})
    data = load_task_data(config.data, seed=1, device=CPU)
    assert [len(t.labels) for t in data.train] == [30, 22]
    assert config.data.num_tasks == 2 and config.data.input_shape == (2, 28, 28)


def test_validation_split_is_seeded(tmp_path):
    config = trial_config_from_dict({"datasets": ["digits"]})
    a = load_task_data(config.data, seed=3, device=CPU)
    b = load_task_data(config.data, seed=3, device=CPU)
    c = load_task_data(config.data, seed=4, device=CPU)
    assert torch.equal(a.validation[0].pixels, b.validation[0].pixels)
    assert not torch.equal(a.validation[0].pixels, c.validation[0].pixels)


def test_digits_is_two_tasks_of_real_digits():
    config = trial_config_from_dict({"datasets": ["digits"], "labels": 5})
    data = load_task_data(config.data, seed=1, device=CPU)
    total = sum(len(t.labels) for split in data for t in split)
    assert total == 1797 and len(data.train) == 2
    assert data.train[0].pixels.shape[1:] == (1, 8, 8) and data.train[0].scale == 16.0
    assert data.train[0].images().max() == 1.0  # digits' 0..16 map to [0, 1]
    # the splits hold every image once: as many distinct images as digits itself has (it
    # repeats a few images; test_splits_are_disjoint checks disjointness on unique images)
    flat = torch.cat([t.pixels.flatten(1) for split in data for t in split])
    raw = torch.from_numpy(np.loadtxt(_digits_csv(), delimiter=",", dtype=np.int64)[:, :-1])
    assert torch.unique(flat, dim=0).shape[0] == torch.unique(raw, dim=0).shape[0]


def _digits_csv():
    import importlib.util
    from pathlib import Path

    return Path(importlib.util.find_spec("sklearn").submodule_search_locations[0], "datasets",
                "data", "digits.csv.gz")


def test_splits_are_disjoint_and_lose_nothing(tmp_path):
    """Images that are all distinct (their first pixels spell their index): validation is
    carved from train without overlap, and test is the official test file."""
    from tests.idx_files import write_indexed_dataset

    write_indexed_dataset(tmp_path, "MNIST", train=300, test=40)
    config = trial_config_from_dict({"datasets": ["MNIST"], "labels": 5, "root": str(tmp_path),
                                     "validation_fraction": 0.2})
    data = load_task_data(config.data, seed=2, device=CPU)

    def ids(split):
        pixels = torch.cat([t.pixels.flatten(1) for t in split]).long()
        return (pixels[:, 0] * 256 + pixels[:, 1]).tolist()

    train, validation, test = ids(data.train), ids(data.validation), ids(data.test)
    assert len(validation) == 60 and len(train) == 240
    assert not set(train) & set(validation)
    assert sorted(train + validation) == list(range(300))
    assert sorted(test) == list(range(1000, 1040))


def test_digits_are_exactly_scikit_learns_load_digits():
    """sources._digits reads sklearn's CSV itself (no sklearn.datasets import)."""
    from sklearn.datasets import load_digits

    from spatialsearch.data.sources import _digits

    ours, theirs = _digits(), load_digits()
    assert np.array_equal(ours.pixels.squeeze(1).numpy(), theirs.images.astype(np.uint8))
    assert np.array_equal(ours.classes.numpy(), theirs.target)


WITHOUT_SYSTEM_COPY = [n for n in TORCHVISION if system_source(n, "/nonexistent") is None]


@pytest.mark.parametrize("name", WITHOUT_SYSTEM_COPY)
def test_missing_dataset_offline_names_folder_files_and_remedy(tmp_path, name):
    config = trial_config_from_dict({"datasets": [name], "root": str(tmp_path)})
    with pytest.raises(DataError) as error:
        load_task_data(config.data, seed=1, device=CPU)
    message = str(error.value)
    assert str(tmp_path / name / "raw") in message
    assert missing_files(name, str(tmp_path))[0].name in message
    assert "download" in message
    assert not (tmp_path / name).exists()  # nothing written


def test_missing_fashion_mnist_points_at_the_debian_package(tmp_path):
    message = _absent_message("FashionMNIST", str(tmp_path), missing_files("MNIST", str(tmp_path)))
    assert "install Debian's dataset-fashion-mnist" in message
    assert "dataset-fashion-mnist" not in _absent_message("MNIST", str(tmp_path), [])


def test_corrupt_dataset_file_is_a_clear_error(tmp_path):
    write_dataset(tmp_path, "KMNIST", 20, 10)
    (tmp_path / "KMNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"garbage")
    config = trial_config_from_dict({"datasets": ["KMNIST"], "root": str(tmp_path)})
    with pytest.raises(DataError, match="cannot read KMNIST"):
        load_task_data(config.data, seed=1, device=CPU)


def _tasks(lengths, channels=1):
    from spatialsearch.data.sources import TaskSet

    return [TaskSet(torch.full((n, channels, 2, 2), t + 1, dtype=torch.uint8),
                    torch.arange(n) % 3, 4.0) for t, n in enumerate(lengths)]


def test_concatenate_stacks_one_image_per_task_and_pairs_at_random():
    tasks = _tasks([10, 4])
    batches = TaskBatches(tasks, "concatenate", "random", 3, torch.Generator().manual_seed(0))
    seen = list(batches.epoch())
    assert len(seen) == len(batches) == 4  # 10 pairs, batches of 3
    x, y = seen[0]
    assert x.shape == (3, 2, 2, 2) and y.shape == (3, 2)
    assert torch.all(x[:, 0] == 0.25) and torch.all(x[:, 1] == 0.5)
    task1 = torch.cat([b.targets[:, 1] for b in seen])
    assert len(task1) == 10  # the 4-sample task resampled to 10
    counts = torch.bincount(torch.cat([b.targets[:, 0] for b in seen]), minlength=3)
    assert counts.tolist() == [4, 3, 3]  # every sample of the longest task exactly once


def test_mix_averages_images_keeping_range():
    tasks = _tasks([5, 5])
    x, y = next(TaskBatches(tasks, "mix", "random", 5, torch.Generator()).epoch())
    assert x.shape == (5, 1, 2, 2)
    assert torch.allclose(x, torch.full_like(x, 0.375))  # mean of 0.25 and 0.5


def test_sequential_random_interleaves_and_labels_only_own_task():
    tasks = _tasks([30, 30])
    batches = TaskBatches(tasks, "sequential", "random", 20, torch.Generator().manual_seed(1))
    seen = list(batches.epoch())
    assert sum(len(b.targets) for b in seen) == 60
    for x, y in seen:
        own = (y >= 0).sum(1)
        assert torch.all(own == 1)  # exactly one labelled task per sample
        task = (y >= 0).int().argmax(1)
        assert torch.all(x[:, 0, 0, 0] == (task + 1).float() / 4)  # image matches its task
    mixed = [len(torch.unique((b.targets >= 0).int().argmax(1))) for b in seen]
    assert max(mixed) == 2  # random order interleaves tasks inside batches


def test_sequential_task_sampler_blocks_tasks_in_order():
    tasks = _tasks([25, 15])
    batches = TaskBatches(tasks, "sequential", "task", 10, torch.Generator().manual_seed(1))
    order = [int((b.targets >= 0).int().argmax(1).unique().item()) for b in batches.epoch()]
    assert order == [0, 0, 0, 1, 1] and len(batches) == 5  # single-task batches, task 0 first


def test_evaluation_order_is_fixed():
    tasks = _tasks([7, 5])
    batches = TaskBatches(tasks, "concatenate", "random", 4, torch.Generator())
    first = [b.targets for b in batches.epoch(shuffle=False)]
    second = [b.targets for b in batches.epoch(shuffle=False)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
