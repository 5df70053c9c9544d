"""The default SQLite store starts as a copy of an empty store built once (search.mlflow_store)."""

from __future__ import annotations

import sqlite3

import mlflow
from mlflow.tracking import MlflowClient

from spatialsearch.search.tracking.store import connect, seed_sqlite_store


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("select name from sqlite_master where type='table'")}


def test_new_stores_are_copies_of_one_empty_store_that_mlflow_accepts(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    empty = tmp_path / "cache" / "spatialsearch" / f"mlflow-{mlflow.__version__}-empty.db"
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    client, experiment_id = connect(f"sqlite:///{first}", "one")
    assert empty.is_file() and first.is_file()
    assert {"runs", "metrics", "experiments", "alembic_version"} <= _tables(empty)
    assert not list(empty.parent.glob("*.tmp"))  # built beside it, then renamed
    client.create_run(experiment_id)
    connect(f"sqlite:///{second}", "two")  # from the copy: the empty store is unchanged
    assert [e.name for e in MlflowClient(f"sqlite:///{second}").search_experiments()] == [
        "two", "Default"]
    assert [e.name for e in MlflowClient(f"sqlite:///{empty}").search_experiments()] == [
        "Default"]
    assert len(MlflowClient(f"sqlite:///{first}").search_runs([experiment_id])) == 1


def test_an_existing_store_is_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = tmp_path / "mlflow.db"
    client, experiment_id = connect(f"sqlite:///{store}", "kept")
    client.create_run(experiment_id)
    seed_sqlite_store(store)
    assert len(MlflowClient(f"sqlite:///{store}").search_runs([experiment_id])) == 1


def test_an_unwritable_cache_leaves_building_the_store_to_mlflow(tmp_path, monkeypatch):
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    client, experiment_id = connect(f"sqlite:///{tmp_path / 'mlflow.db'}", "built")
    assert client.get_experiment(experiment_id).name == "built"
