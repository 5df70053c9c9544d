"""spatialsearch/fit.py directly: one training run into a folder (best.pt, metrics.jsonl,
summary.json), and the output check that fails before anything is created."""

from __future__ import annotations

import json
import os

import pytest

from spatialsearch import metrics as m
from spatialsearch.checkpoint import load_checkpoint
from spatialsearch.config import trial_config_from_dict
from spatialsearch.errors import ConfigError
from spatialsearch.fit import check_writable, fit

TINY = {"datasets": ["digits"], "labels": 5, "layers": [8], "epochs": 2, "batch": 64,
        "proximity": 0.1, "transport": 0.1, "seed": 1}


def test_a_missing_folder_under_a_writable_one_passes_and_is_not_made(tmp_path):
    check_writable(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_or_lies_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^output: cannot write to '.*/file': '.*/file' "
                                          r"is not a folder$"):
        check_writable(tmp_path / "file", key="output")
    with pytest.raises(ConfigError,
                       match=r"^save: cannot write to '.*/file/run': '.*/file' is not a folder$"):
        check_writable(tmp_path / "file" / "run")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_parent_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            check_writable(locked / "run")
    finally:
        locked.chmod(0o700)


def test_fit_writes_the_best_checkpoint_the_log_and_the_summary(tmp_path):
    seen = []
    summary = fit(trial_config_from_dict(TINY), tmp_path / "run", on_epoch=seen.append)
    folder = tmp_path / "run"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "metrics.jsonl",
                                                        "summary.json"]
    log = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [row[m.EPOCH] for row in log] == [1, 2] and [r[m.EPOCH] for r in seen] == [1, 2]
    best_epoch = max(log, key=lambda r: r[m.VAL_ACCURACY])[m.EPOCH]
    assert summary["best_epoch"] == best_epoch
    saved = load_checkpoint(folder / "best.pt")
    assert saved.epoch == best_epoch and saved.config == trial_config_from_dict(TINY)
    assert saved.metrics[m.TEST_ACCURACY] == summary["best"][m.TEST_ACCURACY]
    assert 0.0 <= summary["best"][m.SEGREGATION] <= 1.0
    assert json.loads((folder / "summary.json").read_text())["best_epoch"] == best_epoch


def test_fit_fails_on_a_bad_output_before_training_or_writing(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(ConfigError):
        fit(trial_config_from_dict(TINY), tmp_path / "taken")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
