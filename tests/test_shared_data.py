"""Datasets through Ray's object store (data/shared.py): the driver reads each dataset once;
a trial splits its own data from the shared arrays, exactly as from the files, and needs no
file at all."""

from __future__ import annotations

import pickle
import shutil

import pytest
import torch

from spatialsearch.config import DataConfig, trial_config_from_dict
from spatialsearch.data.shared import SharedDatasets
from spatialsearch.data.sources import load_task_data
from spatialsearch.search.engine.tune_space import trial_plan
from spatialsearch.search.space.config import search_config_from_dict
from tests.idx_files import write_dataset

CPU = torch.device("cpu")


def _same(a, b) -> None:
    for split_a, split_b in zip(a, b):
        assert len(split_a) == len(split_b)
        for task_a, task_b in zip(split_a, split_b):
            assert torch.equal(task_a.pixels, task_b.pixels)
            assert torch.equal(task_a.labels, task_b.labels)
            assert task_a.scale == task_b.scale


@pytest.mark.parametrize("seed", [0, 7])
def test_shared_splits_equal_the_files_splits_through_a_pickle(tmp_path, seed):
    """Ray pickles the plan into its object store: the trial's splits from the unpickled
    arrays are the ones load_task_data makes from the files, for every seed."""
    write_dataset(tmp_path, "MNIST", train=300, test=60)
    config = DataConfig(datasets=("digits", "MNIST"), labels=5, root=str(tmp_path),
                        train_samples=200)
    shared = pickle.loads(pickle.dumps(SharedDatasets.read(["digits", "MNIST"],
                                                           str(tmp_path), False)))
    assert shared.covers(config)
    _same(shared.task_data(config, seed, CPU), load_task_data(config, seed, CPU))
    one = DataConfig(datasets=("MNIST",), labels=5, root=str(tmp_path))
    _same(shared.task_data(one, seed, CPU), load_task_data(one, seed, CPU))


def test_a_trial_needs_no_file_once_the_driver_read_them(tmp_path):
    write_dataset(tmp_path, "MNIST", train=200, test=40)
    shared = SharedDatasets.read(["MNIST"], str(tmp_path), False)
    assert shared.nbytes == 240 * 28 * 28 + 240 * 8
    config = DataConfig(datasets=("MNIST",), labels=5, root=str(tmp_path))
    expected = load_task_data(config, 3, CPU)
    shutil.rmtree(tmp_path / "MNIST")
    _same(shared.task_data(config, 3, CPU), expected)
    assert not shared.covers(DataConfig(datasets=("MNIST",), root=str(tmp_path / "other")))
    assert not shared.covers(DataConfig(datasets=("KMNIST",), root=str(tmp_path)))


def test_the_search_plan_holds_every_dataset_the_space_can_ask_for(tmp_path):
    for name in ("MNIST", "KMNIST"):
        write_dataset(tmp_path, name, train=100, test=20)
    config = search_config_from_dict({
        "name": "sh", "fixed": {"root": str(tmp_path), "epochs": 2},
        "space": {"datasets": {"choice": [["MNIST"], ["KMNIST"], ["digits"]]}}})
    plan = trial_plan(config)
    assert sorted(plan.datasets.arrays) == ["KMNIST", "MNIST", "digits"]
    trial = trial_config_from_dict({"root": str(tmp_path), "datasets": ["KMNIST"]})
    assert plan.datasets.covers(trial.data)


def deletes_the_dataset_files_then_trains(config, plan):
    """A test-side wrapper of train_trial: the dataset's files are gone before the trial
    starts (as on a worker node that never had them)."""
    from spatialsearch.search.engine.trainable import train_trial

    shutil.rmtree(f"{config['root']}/MNIST", ignore_errors=True)
    train_trial(config, plan)


@pytest.mark.slow
def test_search_trials_train_from_the_object_store_without_files(ray_session, tmp_path):
    from spatialsearch.search.runner import run_search, search_trainable

    write_dataset(tmp_path / "data", "MNIST", train=300, test=60)
    config = search_config_from_dict({
        "name": "noread", "num_samples": 2, "output": str(tmp_path / "out"),
        "scheduler": {"type": "fifo"}, "search": {"algorithm": "random"},
        "fixed": {"datasets": ["MNIST"], "root": str(tmp_path / "data"), "layers": [16],
                  "epochs": 2},
        "space": {"lr": {"loguniform": [1e-3, 1e-2]}}})
    summary = run_search(config, quiet=True, trainable=search_trainable(
        config, deletes_the_dataset_files_then_trains))
    assert not (tmp_path / "data" / "MNIST").exists()
    assert summary.trials == 2 and summary.errored == 0
    assert all(row["epochs"] == 2 for row in summary.table)
