"""The search as an Optuna study: trial states, and optuna.db written by a child process."""

from __future__ import annotations

import optuna
import pytest

from spatialsearch.search.engine.study import STUDY_FILE, StudyWriter, build_study, study_record
from spatialsearch.search.space.config import search_config_from_dict


def _config(tmp_path):
    return search_config_from_dict({
        "name": "st", "output": str(tmp_path), "fixed": {"epochs": 4},
        "space": {"lr": {"loguniform": [1e-4, 1e-1]}, "layers": {"choice": [[8], [16, 8]]}}})


def _rows(trial_ids, first_value=0.5):
    return [{"trial_id": "a", "params": {"lr": 0.01, "layers": [8]}, "status": "TERMINATED",
             "epochs": 4, "values": [first_value, 0.7, 0.6, 0.8], "best_metric": 0.8},
            {"trial_id": "b", "params": {"lr": 0.02, "layers": [16, 8]}, "status": "TERMINATED",
             "epochs": 2, "values": [0.3, 0.4], "best_metric": 0.4},
            {"trial_id": "c", "params": {"lr": 0.03, "layers": [8]}, "status": "ERROR",
             "epochs": 1, "values": [0.1], "best_metric": 0.1}][:trial_ids]


def _stored(folder):
    return optuna.load_study(study_name="st", storage=f"sqlite:///{folder / STUDY_FILE}")


def test_trial_states_values_and_learning_curves(tmp_path):
    study = build_study(study_record(_config(tmp_path), _rows(3)))
    complete, pruned, failed = study.trials
    assert complete.state.name == "COMPLETE" and complete.value == 0.8
    assert complete.intermediate_values == {1: 0.5, 2: 0.7, 3: 0.6, 4: 0.8}
    assert complete.params == {"lr": 0.01, "layers": "[8]"}  # lists as their text
    assert pruned.state.name == "PRUNED" and pruned.intermediate_values == {1: 0.3, 2: 0.4}
    assert failed.state.name == "FAIL"
    assert [t.user_attrs["trial_id"] for t in study.trials] == ["a", "b", "c"]
    assert study.direction.name == "MAXIMIZE"


def test_child_process_writes_the_study_and_replaces_an_older_one(tmp_path):
    config = _config(tmp_path)
    config.folder.mkdir(parents=True)
    for rows in (_rows(2), _rows(3, first_value=0.9)):  # a search, then its --resume
        writer = StudyWriter(config.folder)
        writer.start()
        writer.write(study_record(config, rows))
        assert writer.wait() == config.folder / STUDY_FILE
        writer.close()
    stored = _stored(config.folder)
    assert len(stored.trials) == 3 and stored.trials[0].intermediate_values[1] == 0.9
    assert sorted(p.name for p in config.folder.iterdir()) == [STUDY_FILE]  # no temp files


def test_a_writer_that_gets_no_study_leaves_nothing(tmp_path):
    writer = StudyWriter(tmp_path)
    writer.start()
    writer.close()
    assert writer.process.returncode == 0 and list(tmp_path.iterdir()) == []


def test_a_failing_child_is_an_os_error_naming_the_file(tmp_path):
    (tmp_path / STUDY_FILE).mkdir()  # in the way: the finished study cannot replace it
    writer = StudyWriter(tmp_path)
    writer.write(study_record(_config(tmp_path), _rows(1)))
    with pytest.raises(OSError, match="writing the Optuna study .*optuna.db.* failed: "
                                      "IsADirectoryError"):
        writer.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [STUDY_FILE]  # temp file removed

