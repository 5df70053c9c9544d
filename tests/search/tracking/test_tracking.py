"""The MLflow core (search/tracking/runs.py) and its Tune callback on a real store, each test
run on a new SQLite file and on a new database of a real PostgreSQL server (conftest's
store_uri): epochs a run already holds are not logged twice after a resume, epochs a dead
driver never wrote are replayed, and runs it left RUNNING are settled."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from spatialsearch.search.tracking.runs import SearchTracking, TrialRun
from spatialsearch.search.tracking.store import Store


def _three_epochs_logged(tmp_path, monkeypatch, store_uri
                         ) -> tuple[Store, TrialRun, SearchTracking]:
    """A real store whose trial t1 holds epochs 1-3, as a driver left it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = Store(store_uri, "tracking", tmp_path / "artifacts")
    trial = TrialRun("t1", {"lr": 0.1})
    first = SearchTracking(store, "s", "", tmp_path)
    first.open()
    first.log_epochs(trial, [(e, {"epoch": e, "val_accuracy": e / 10}) for e in (1, 2, 3)])
    return store, trial, first


def test_resumed_epochs_are_logged_once(tmp_path, monkeypatch, store_uri):
    """A restored trial re-reports the epochs after its last checkpoint: the MLflow core
    (opened afresh, as after a driver crash) skips every epoch the run already holds."""
    store, trial, first = _three_epochs_logged(tmp_path, monkeypatch, store_uri)
    again = SearchTracking(store, "s", "", tmp_path)
    again.open()
    assert again.runs == first.runs and again.logged_steps == {first.runs["t1"]: 3}
    again.log_epochs(trial, [(e, {"epoch": e, "val_accuracy": e / 10}) for e in (2, 3, 4, 5)])
    history = MlflowClient(store.uri).get_metric_history(first.runs["t1"], "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    assert again.unlogged == []


def test_a_resume_replays_epochs_the_dead_driver_never_wrote(tmp_path, monkeypatch, store_uri):
    """The driver died with epochs 4-6 queued for MLflow; the snapshot it left held them
    (and a checkpoint at 6), so the restored trial reports from 7 on. MlflowCallback.replay
    of the recorded results fills 4-6 first: no gap, nothing twice."""
    from spatialsearch.search.places.ray_folder import RecordedTrial
    from spatialsearch.search.tracking.callback import MlflowCallback

    store, trial, first = _three_epochs_logged(tmp_path, monkeypatch, store_uri)
    callback = MlflowCallback(SearchTracking(store, "s", "", tmp_path), interval=0.01)
    recorded = [{"trial_id": "t1", "epoch": e, "val_accuracy": e / 10} for e in range(1, 7)]
    callback.replay([RecordedTrial("t1", {"lr": 0.1}, recorded, None, "")])
    callback._put(("epoch", trial, (7, {"epoch": 7, "val_accuracy": 0.7})))  # the trial again
    callback.close()
    history = MlflowClient(store.uri).get_metric_history(first.runs["t1"], "val_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(e, e / 10) for e in range(1, 8)]


def test_settle_ends_runs_a_dead_driver_left_running(tmp_path, monkeypatch, store_uri):
    """Trial t1 ended before the driver died, its end never written: settle ends it with its
    checkpoint; t2, not ended, stays RUNNING."""
    from spatialsearch.search.places.place import locate
    from spatialsearch.search.space.storage import StorageConfig

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = Store(store_uri, "settle", tmp_path / "artifacts")
    tracking = SearchTracking(store, "s", "", tmp_path)
    tracking.open()
    for trial_id in ("t1", "t2"):
        tracking.start_trial(TrialRun(trial_id, {"lr": 0.1}))
    best = tmp_path / "best.pt"
    best.write_bytes(b"weights")
    settled = tracking.settle({"t1": ("FINISHED", locate(str(best), StorageConfig())),
                               "t3": ("FAILED", None)})
    client = MlflowClient(store.uri)
    assert settled == ["t1"]
    assert client.get_run(tracking.runs["t1"]).info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(tracking.runs["t1"], "checkpoint")] == [
        "checkpoint/best.pt"]
    assert client.get_run(tracking.runs["t2"]).info.status == "RUNNING"
    assert tracking.settle({"t1": ("FINISHED", None)}) == []  # nothing left to settle
