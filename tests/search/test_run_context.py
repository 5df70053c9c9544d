"""search/run_context.py and driver_record.ready_folder directly: the search's place, its
MLflow store, the folder made ready for a new search or a resumed one (the clock and the parent
run carried over), and the run context every step shares."""

from __future__ import annotations

import time
from pathlib import Path

from spatialsearch.search.places.driver_record import (
    PARENT_RECORD,
    RESUME_FOLDER,
    DriverRecord,
    read_record,
    ready_folder,
    write_record,
)
from spatialsearch.search.run_context import RunContext, place_of, search_tracking, tracking_uri
from spatialsearch.search.space.config import search_config_from_dict

FIXED = {"datasets": ["digits"], "labels": 5, "layers": [8], "epochs": 2}


def _config(tmp_path, **changes):
    return search_config_from_dict({"name": "ctx", "output": str(tmp_path / "runs"),
                                    "fixed": FIXED, "space": {"lr": {"uniform": [0.01, 0.1]}},
                                    **changes})


def test_the_place_and_store_of_a_local_search(tmp_path):
    config = _config(tmp_path)
    place = place_of(config)
    assert place.local and place.path == str((tmp_path / "runs" / "ctx").resolve())
    assert tracking_uri(config) == f"sqlite:///{(tmp_path / 'runs' / 'ctx').resolve()}/mlflow.db"
    named = _config(tmp_path, tracking_uri="http://127.0.0.1:5999")
    assert tracking_uri(named) == "http://127.0.0.1:5999"
    assert search_tracking(named).store.uri == "http://127.0.0.1:5999"
    assert list(tmp_path.iterdir()) == []  # nothing touched


def test_a_shared_storage_is_the_place(tmp_path):
    config = _config(tmp_path, storage=str(tmp_path / "shared"))
    assert place_of(config).path == str(tmp_path / "shared" / "ctx")


def test_a_new_search_clears_what_an_earlier_one_left_and_starts_its_clock(tmp_path):
    config = _config(tmp_path)
    place = place_of(config)
    write_record(_made(place.child(RESUME_FOLDER)), DriverRecord(1.0, "old-run"))
    before = time.time()
    started = ready_folder(config.folder, place.child(RESUME_FOLDER), resuming=False)
    assert before <= started <= time.time()
    assert config.folder.is_dir() and read_record(place.child(RESUME_FOLDER)) is None


def test_a_resumed_search_keeps_its_clock_and_its_parent_run(tmp_path):
    """As on another machine: the local folder lacks the parent run's record."""
    config = _config(tmp_path)
    place = place_of(config)
    write_record(_made(place.child(RESUME_FOLDER)), DriverRecord(1234.5, "parent-42"))
    assert ready_folder(config.folder, place.child(RESUME_FOLDER), resuming=True) == 1234.5
    assert (config.folder / PARENT_RECORD).read_text() == "parent-42\n"


def test_the_context_names_the_experiment_and_resume_folders(tmp_path):
    config = _config(tmp_path)
    context = RunContext(config, place_of(config), search_tracking(config), 0.0)
    assert context.folder == config.folder
    assert context.experiment.path.endswith("/runs/ctx/ray/ctx")
    assert context.resume_folder.path.endswith("/runs/ctx/resume")


def _made(place):
    Path(place.path).mkdir(parents=True, exist_ok=True)
    return place
