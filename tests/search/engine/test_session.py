"""search/engine/session.py directly: the environment a search sets (the user's values win, all
undone after), Tune's settings, its file loggers, and how the dashboard is announced."""

from __future__ import annotations

import logging
import os

from spatialsearch.search.engine.session import (
    MLFLOW_HTTP,
    STORAGE_SETTINGS,
    TUNE_SETTINGS,
    announce_dashboard,
    environment,
    file_loggers,
    restored_environment,
    tune_settings,
)


def test_environment_sets_only_what_the_user_has_not_and_undoes_it(monkeypatch):
    monkeypatch.setenv("SPATIALSEARCH_T_KEPT", "user")
    monkeypatch.delenv("SPATIALSEARCH_T_ADDED", raising=False)
    with environment({"SPATIALSEARCH_T_KEPT": "ours", "SPATIALSEARCH_T_ADDED": "ours"}):
        assert os.environ["SPATIALSEARCH_T_KEPT"] == "user"
        assert os.environ["SPATIALSEARCH_T_ADDED"] == "ours"
    assert os.environ["SPATIALSEARCH_T_KEPT"] == "user"
    assert "SPATIALSEARCH_T_ADDED" not in os.environ


def test_restored_environment_undoes_what_the_libraries_change(monkeypatch):
    monkeypatch.setenv("SPATIALSEARCH_T_CHANGED", "before")
    monkeypatch.delenv("SPATIALSEARCH_T_NEW", raising=False)
    with restored_environment():
        os.environ["SPATIALSEARCH_T_CHANGED"] = "after"
        os.environ["SPATIALSEARCH_T_NEW"] = "1"
    assert os.environ["SPATIALSEARCH_T_CHANGED"] == "before"
    assert "SPATIALSEARCH_T_NEW" not in os.environ


def test_tune_settings_add_the_storage_snapshot_interval_only_with_a_storage():
    assert tune_settings(False) == TUNE_SETTINGS
    assert tune_settings(True) == {**TUNE_SETTINGS, **STORAGE_SETTINGS}
    assert tune_settings(True)["TUNE_GLOBAL_CHECKPOINT_S"] == "2"
    assert MLFLOW_HTTP["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"


def test_file_loggers_are_tunes_json_and_csv_writers_without_tensorboard():
    assert [type(c).__name__ for c in file_loggers()] == ["JsonLoggerCallback",
                                                         "CSVLoggerCallback"]


def test_the_dashboard_is_announced_without_credentials(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="spatialsearch.search.engine.session"):
        announce_dashboard(None)
        announce_dashboard("admin:hunter2@127.0.0.1:8265")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Ray dashboard: not running (install ray[default] to get it)"
    assert "127.0.0.1:8265" in lines[1] and "hunter2" not in lines[1]
    assert "no auth token configured" in lines[1]
