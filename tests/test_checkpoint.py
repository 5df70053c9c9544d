"""Checkpoints (spatialsearch/checkpoint.py): files a user may hand to `analyze`, each wrong
one a CheckpointError that names the file and what is wrong; a pickle that would run code is
refused (weights_only); a writer that dies mid-save leaves the previous checkpoint whole."""

from __future__ import annotations

import os

import pytest
import torch

from spatialsearch import checkpoint
from spatialsearch.config import trial_config_from_dict
from spatialsearch.errors import CheckpointError
from spatialsearch.models import build_model


class Payload:
    """Unpickling it would run code: weights_only loading must refuse it."""

    ran = False

    def __reduce__(self):
        return (Payload._run, ())

    @staticmethod
    def _run():
        Payload.ran = True
        return {}


def _saved(tmp_path, **change):
    config = trial_config_from_dict({"layers": [4], "epochs": 1})
    model = build_model(config)
    path = tmp_path / "best.pt"
    checkpoint.save_checkpoint(path, model, config, 1, {"val_accuracy": 0.5})
    raw = torch.load(path, weights_only=True)
    raw.update(change)
    torch.save(raw, path)
    return path


def test_each_bad_checkpoint_names_the_file_and_the_fault(tmp_path):
    missing = tmp_path / "none.pt"
    with pytest.raises(CheckpointError, match=f"^checkpoint: no file at '{missing}'$"):
        checkpoint.load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=f"^checkpoint: '{garbage}' is not a readable "
                                              f"checkpoint \\(truncated"):
        checkpoint.load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.ones(1)}, foreign)
    keys = ", ".join(checkpoint._KEYS)
    expected = (f"^checkpoint: '{foreign}' is not a spatialsearch checkpoint "
                f"\\(expected a dict with keys {keys}\\)$")
    with pytest.raises(CheckpointError, match=expected):
        checkpoint.load_checkpoint(foreign)
    stale = _saved(tmp_path, config={"layers": [4], "activation": "Swish"})
    with pytest.raises(CheckpointError, match="^checkpoint config: activation: "):
        checkpoint.load_checkpoint(stale)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        torch.save({"config": Payload(), "state_dict": {}, "epoch": 1, "metrics": {}}, file)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        checkpoint.load_checkpoint(path)
    assert not Payload.ran


def test_a_checkpoint_is_loaded_onto_the_cpu_and_fits_its_model(tmp_path):
    loaded = checkpoint.load_checkpoint(_saved(tmp_path))
    assert all(t.device.type == "cpu" for t in loaded.state_dict.values())
    wrong = checkpoint.Checkpoint({"nope": torch.ones(1)}, loaded.config, 1, {})
    with pytest.raises(CheckpointError, match=r"^checkpoint: weights do not match the model its "
                                              r"config describes: Error\(s\) in loading"):
        checkpoint.load_model(wrong)
    model = checkpoint.load_model(loaded)
    assert not model.training


def test_atomic_save_writes_beside_the_target_into_new_folders(tmp_path, monkeypatch):
    target = tmp_path / "a" / "b" / "best.pt"
    seen = []
    real = torch.save

    def spy(obj, file):
        seen.extend(os.listdir(target.parent))  # while writing
        real(obj, file)

    monkeypatch.setattr(torch, "save", spy)
    checkpoint.atomic_save({"x": torch.ones(2)}, target)
    assert len(seen) == 1 and seen[0].startswith(".best.pt.")  # the temporary, beside it
    assert os.listdir(target.parent) == ["best.pt"]


def test_a_writer_that_dies_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "best.pt"
    checkpoint.atomic_save({"epoch": 1, "w": torch.ones(3)}, target)
    real_save = torch.save

    def dies_half_way(obj, file):
        real_save(obj, file)
        file.truncate(file.tell() // 2)
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError, match="No space left"):
        checkpoint.atomic_save({"epoch": 2, "w": torch.zeros(1000)}, target)
    monkeypatch.undo()
    loaded = torch.load(target, weights_only=True)
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert os.listdir(tmp_path) == ["best.pt"]  # no temporary file left behind
