"""search/reporting.py directly, on a real checkpoint and a real MLflow store: which best.pt
files the analysis and report read, the analysis of the best trials (files and MLflow
artifacts), and a report that is skipped when nothing was ranked."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from spatialsearch.config import trial_config_from_dict
from spatialsearch.fit import fit
from spatialsearch.search.outcome.files import SearchSummary
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.reporting import analyze_best, local_checkpoints, search_report
from spatialsearch.search.run_context import RunContext, place_of
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.tracking.runs import SearchTracking, TrialRun
from spatialsearch.search.tracking.store import Store

FIXED = {"datasets": ["digits"], "labels": 5, "layers": [8], "epochs": 2, "batch": 64}


def _context(tmp_path, monkeypatch, analyze: int = 1) -> RunContext:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    config = search_config_from_dict({
        "name": "rep", "output": str(tmp_path / "runs"), "analyze": analyze, "fixed": FIXED,
        "space": {"lr": {"loguniform": [0.01, 0.1]}}})
    config.folder.mkdir(parents=True)
    store = Store(f"sqlite:///{tmp_path / 'mlflow.db'}", "reporting", tmp_path / "artifacts")
    tracking = SearchTracking(store, config.name, "", config.folder)
    tracking.open()
    return RunContext(config, place_of(config), tracking, started=0.0)


def _row(trial_id: str, checkpoint: str) -> TrialRow:
    return TrialRow(trial_id, "TERMINATED", {"lr": 0.05}, 0.9, 2, checkpoint, (0.8, 0.9),
                    (0.9,))


def _summary(rows: list[TrialRow]) -> SearchSummary:
    return SearchSummary("rep", "val_accuracy", "max", [], len(rows), 0, 0, None,
                         [{"trial_id": r.trial_id} for r in rows], {})


def test_local_checkpoints_are_the_ranked_trials_files_that_exist(tmp_path, monkeypatch):
    context = _context(tmp_path, monkeypatch)
    present = tmp_path / "b.pt"
    present.write_bytes(b"weights")
    rows = [_row("a", str(tmp_path / "gone.pt")), _row("b", str(present)), _row("c", "")]
    assert local_checkpoints(context, rows, _summary(rows)) == {"b": str(present)}


def test_the_best_trial_is_analysed_into_files_and_its_mlflow_run(tmp_path, monkeypatch):
    context = _context(tmp_path, monkeypatch)
    fit(trial_config_from_dict({**FIXED, "seed": 2}), tmp_path / "trial")
    context.tracking.start_trial(TrialRun("t1", {"lr": 0.05}))
    rows = [_row("t1", str(tmp_path / "trial" / "best.pt")), _row("t2", "")]
    summary = _summary(rows)
    local = local_checkpoints(context, rows, summary)
    done = analyze_best(context, summary, True, local)
    out = context.folder / "analysis" / "t1"
    assert done == [str(out)] and (out / "analysis.json").is_file()
    logged = MlflowClient(context.tracking.store.uri).list_artifacts(
        context.tracking.runs["t1"], "analysis")
    assert {"analysis/analysis.json", "analysis/positions"} <= {a.path for a in logged}
    assert analyze_best(context, summary, True, {}) == []  # no checkpoint here: nothing


def test_no_ranked_trial_means_no_report(tmp_path, monkeypatch):
    context = _context(tmp_path, monkeypatch)
    assert search_report(context, [_row("a", "")], _summary([])) == ""
    assert not (context.folder / "report").exists()
