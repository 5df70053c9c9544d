"""Run a search, as a list of steps, or re-log a finished one to MLflow (sync_search).

<output>/<name>/ holds: ray/ (Tune's experiment, for --resume), mlflow.db (the default MLflow
store), optuna.db (the Optuna study), best/best.pt, results.csv, pareto.csv (several
objectives), summary.json, analysis/ and report/.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from spatialsearch.errors import ConfigError
from spatialsearch.redact import MASK, masked
from spatialsearch.search.engine.session import MLFLOW_HTTP, environment, restored_environment
from spatialsearch.search.engine.study import StudyWriter
from spatialsearch.search.outcome.files import (
    SUMMARY_FILE,
    SearchSummary,
    end_search,
    publish,
    settle_runs,
    write_answer,
    write_results,
)
from spatialsearch.search.outcome.ranking import answer, on_seed_means
from spatialsearch.search.places.driver_record import PARENT_RECORD, RESUME_FOLDER, ready_folder
from spatialsearch.search.places.place import Place, locate
from spatialsearch.search.places.ray_folder import (
    RAY_FOLDER,
    disk_errors,
    prune_in_background,
    recorded_trials,
)
from spatialsearch.search.preflight.checks import preflight
from spatialsearch.search.reporting import analyze_best, local_checkpoints, search_report
from spatialsearch.search.reseed import reseed_front
from spatialsearch.search.run_context import RunContext, place_of, search_tracking
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.space.storage import S3, StorageConfig, endpoint_url, storage_uri
from spatialsearch.search.tracking.runs import SearchTracking, TrialRun, epoch_metrics
from spatialsearch.search.tracking.store import SQLITE_PREFIX, Store, check_store
from spatialsearch.search.tune_run import fit_trials, search_trainable
from spatialsearch.validation import tracking_uri as validated_uri


def run_search(config: SearchConfig, *, address: str | None = None, resume: bool = False,
               quiet: bool = False, trainable: Any = None) -> SearchSummary:
    """Run (or resume) the search; returns the summary written to summary.json.

    Nothing is written before preflight has passed. optuna.db is written by a child process,
    and old checkpoints are pruned by a thread, beside the steps after the trials.
    trainable: the Tune trainable to run instead of search_trainable(config), e.g.
    search_trainable(config, wrapper) for a wrapper of train_trial."""
    place = place_of(config)
    preflight(config, place, resume, address)
    trainable = trainable or search_trainable(config)
    with restored_environment(), environment(MLFLOW_HTTP):
        started = ready_folder(config.folder, place.child(RESUME_FOLDER), resume)
        context = RunContext(config, place, search_tracking(config), started)
        with StudyWriter(context.folder) as study_writer:
            with disk_errors(context.folder):
                rows, seconds = fit_trials(context, trainable, address=address, resume=resume)
                study = study_writer.write_trials(context.config, rows)
                pruning = prune_in_background(context.experiment)
                retired = settle_runs(context, rows)
                front, members = answer(context, rows)
                summary = write_results(context, rows, front)  # kept if reseeding fails
                spreads = reseed_front(context, members, trainable)
                if spreads and front is not None:  # the answer, decided on seed means
                    front = on_seed_means(front, spreads)
                    summary = write_results(context, rows, front)
                write_answer(context, summary, rows, front, spreads)
                local = local_checkpoints(context, rows, summary)
            summary.analyzed = analyze_best(context, summary, quiet, local)
            summary.report = search_report(context, rows, summary, study, local)
            with disk_errors(context.folder):
                study_writer.wait()
            pruning.join()
        summary.mlflow["retired_runs"] = retired
        summary.search_seconds = round(seconds, 2)  # the trials' wall time (Tune's fit)
        summary.write(context.folder)
        publish(context, summary)
        end_search(context, summary)
    return summary


def sync_search(folder: str, tracking_uri: str | None = None,
                storage_endpoint: str = "") -> dict[str, Any]:
    """Re-log a finished search's results (its Ray experiment) to MLflow: what a dead store
    missed. folder: the local search folder, or the search folder in S3 storage
    (s3://bucket/prefix/<name>, with storage_endpoint for an S3-compatible store). Uses the
    search's store unless tracking_uri names another. Idempotent: epochs a run already holds
    are skipped."""
    place = _search_folder(folder, storage_endpoint)
    summary_file = place.child(SUMMARY_FILE)
    if not summary_file.is_file():
        raise ConfigError(f"folder: {folder!r} holds no finished search (no summary.json)")
    summary = json.loads(summary_file.read_text())
    stored = summary.get("storage") or {}
    if stored.get("folder"):  # the Ray experiment lives in the search's storage
        place = locate(stored["folder"], StorageConfig(endpoint=stored.get("endpoint", "")))
    stored_uri = summary["mlflow"]["tracking_uri"]
    uri = validated_uri(tracking_uri, "--tracking-uri") if tracking_uri else stored_uri
    if MASK in uri:
        raise ConfigError(f"--tracking-uri: the search's store {masked(stored_uri)!r} needs its "
                          f"credentials, which spatialsearch never saves; pass --tracking-uri "
                          f"with them")
    check_store(uri, summary["mlflow"]["experiment"])  # an error now, not a writer warning
    local = Path(folder) if not folder.startswith(S3) else None
    with tempfile.TemporaryDirectory() as scratch, environment(MLFLOW_HTTP):
        records = local
        if records is None:  # from storage alone: the parent run the summary names
            records = Path(scratch)
            if masked(uri) == stored_uri:
                (records / PARENT_RECORD).write_text(summary["mlflow"]["parent_run_id"] + "\n")
        artifacts = local / "mlartifacts" if local is not None and not tracking_uri else None
        if artifacts is None and uri.startswith(SQLITE_PREFIX):  # beside a new SQLite store,
            artifacts = Path(uri[len(SQLITE_PREFIX):]).parent / "mlartifacts"  # not ./mlruns
        tracking = SearchTracking(Store(uri, summary["mlflow"]["experiment"], artifacts),
                                  summary["search"], "", records)
        tracking.open()
        trials = recorded_trials(place.child(RAY_FOLDER, summary["search"]))
        for trial in trials:
            run = TrialRun(trial.trial_id, trial.config, trial.best_checkpoint)
            tracking.log_epochs(run, [epoch_metrics(result) for result in trial.results])
            tracking.finish_trial(run, "FAILED" if trial.error else "FINISHED", trial.error)
        tracking.end_search("FINISHED")
    summary["mlflow"].update(tracking_uri=masked(uri), parent_run_id=tracking.parent_id,
                             not_logged=tracking.unlogged)
    text = json.dumps(summary, indent=2, default=str) + "\n"
    if local is not None:
        (local / SUMMARY_FILE).write_text(text)
    else:
        summary_file.write_bytes(text.encode())
    return {"trials": len(trials), "not_logged": tracking.unlogged,
            "tracking_uri": masked(uri)}


def _search_folder(folder: str, storage_endpoint: str) -> Place:
    if folder.startswith(S3):
        uri = storage_uri(folder, "folder")
        return locate(uri, StorageConfig(uri, endpoint_url(storage_endpoint,
                                                            "--storage-endpoint")))
    return locate(str(Path(folder).resolve()), StorageConfig())
