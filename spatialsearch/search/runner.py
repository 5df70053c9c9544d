"""Run a search: SearchConfig -> Ray Tune Tuner (Optuna, ASHA / MO-ASHA) -> results.

<output>/<name>/ holds: ray/ (Tune's experiment, for --resume), mlflow.db (the default MLflow
store), optuna.db (the Optuna study), best/best.pt, results.csv, pareto.csv (several
objectives), summary.json, analysis/ and report/. The steps: preflight (nothing written on
bad input) -> session (Ray) -> Tune's fit with the MLflow, progress and file callbacks ->
results.collect_rows -> conclude (results, answer, analysis, report).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ray import tune

from spatialsearch.errors import ConfigError
from spatialsearch.redact import MASK, masked
from spatialsearch.search.conclude import conclude, disk_errors, publish, warm_report
from spatialsearch.search.config import SearchConfig
from spatialsearch.search.driver_record import (
    RESUME_FOLDER,
    DriverRecord,
    clear_resume_folder,
    read_record,
    write_record,
)
from spatialsearch.search.mlflow_store import Store, check_store
from spatialsearch.search.mlflow_view import view_key, view_state
from spatialsearch.search.places import Place, locate, tune_storage
from spatialsearch.search.preflight import preflight
from spatialsearch.search.progress import OnTail, TrialLines
from spatialsearch.search.ray_compat import give_restored_tuner_callbacks
from spatialsearch.search.ray_folder import RAY_FOLDER, recorded_trials
from spatialsearch.search.results import collect_rows
from spatialsearch.search.run_context import RunContext, place_of
from spatialsearch.search.session import (
    MLFLOW_HTTP,
    environment,
    file_loggers,
    restored_environment,
    start_ray,
    tune_settings,
)
from spatialsearch.search.storage import S3, StorageConfig, endpoint_url, storage_uri
from spatialsearch.search.study import StudyWriter
from spatialsearch.search.summary import SUMMARY_FILE, SearchSummary
from spatialsearch.search.tracking import (
    PARENT_RECORD,
    SearchTracking,
    TrialRun,
    epoch_metrics,
)
from spatialsearch.search.tracking_callback import MlflowCallback
from spatialsearch.search.trainable import spatial_trainable, train_trial
from spatialsearch.search.tune_space import (
    param_space,
    scheduler,
    searcher,
    trial_folder,
    trial_plan,
)
from spatialsearch.validation import tracking_uri as validated_uri

_logger = logging.getLogger(__name__)


def tracking_uri(config: SearchConfig) -> str:
    return config.tracking_uri or f"sqlite:///{(config.folder / 'mlflow.db').resolve()}"


def search_trainable(config: SearchConfig, function: Any = train_trial) -> Any:
    """The trainable of a search (train_trial, or a wrapper of it taking (config, plan)) with
    the search's plan and the resources Tune reserves for each trial."""
    return tune.with_resources(spatial_trainable(trial_plan(config), function),
                               config.resources.tune_resources())


def _tuner(config: SearchConfig, trainable: Any, callbacks: list, resume: bool,
           experiment: Place, kept: Place) -> tune.Tuner:
    """A new Tuner, or the restored one (--resume); `experiment` is its folder in storage,
    `kept` the search's resume folder (MO-ASHA's state)."""
    storage = tune_storage(experiment.parent)
    if resume:
        path = f"{storage['storage_path']}/{config.name}"
        filesystem = storage["storage_filesystem"]
        if not tune.Tuner.can_restore(path, storage_filesystem=filesystem):
            raise ConfigError(f"--resume: no restorable search at {path!r}")
        tuner = tune.Tuner.restore(path, trainable, resume_errored=True,
                                   param_space=param_space(config),
                                   storage_filesystem=filesystem)
        give_restored_tuner_callbacks(tuner, callbacks)
        return tuner
    return tune.Tuner(
        trainable,
        param_space=param_space(config),
        tune_config=tune.TuneConfig(
            # several objectives: the searcher and MO-ASHA hold them; Tune ranks none
            metric=None if config.multi_objective else config.metric,
            mode=None if config.multi_objective else config.mode,
            search_alg=searcher(config), scheduler=scheduler(config, kept),
            num_samples=config.num_samples, trial_dirname_creator=trial_folder,
            max_concurrent_trials=config.max_concurrent_trials, reuse_actors=True,
            time_budget_s=config.time_budget_s or None),
        run_config=tune.RunConfig(
            name=config.name, **storage,
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # keep every checkpoint while running: Ray's own pruning can delete the one its
            # last experiment snapshot points to, and a resume after a crash then fails
            # ("does not exist on storage anymore"). ray_folder.prune_checkpoints runs after.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=callbacks, verbose=0),  # progress: TrialLines
    )


def run_search(config: SearchConfig, *, address: str | None = None, resume: bool = False,
               quiet: bool = False, trainable: Any = None) -> SearchSummary:
    """Run (or resume) the search; returns the summary written to summary.json.

    trainable: the Tune trainable to run instead of search_trainable(config), e.g.
    search_trainable(config, wrapper) for a wrapper of train_trial."""
    place = place_of(config)
    preflight(config, place, resume, address)
    folder = config.folder
    folder.mkdir(parents=True, exist_ok=True)
    experiment, kept = place.child(RAY_FOLDER, config.name), place.child(RESUME_FOLDER)
    if not resume:
        clear_resume_folder(kept)
    earlier = read_record(kept) if resume else None
    if earlier and earlier.parent_run_id and not (folder / PARENT_RECORD).is_file():
        (folder / PARENT_RECORD).write_text(earlier.parent_run_id + "\n")  # another machine
    trainable = trainable or search_trainable(config)
    artifacts = None if config.tracking_uri else folder / "mlartifacts"
    with restored_environment(), environment(MLFLOW_HTTP):
        tracking = SearchTracking(Store(tracking_uri(config), config.experiment, artifacts),
                                  config.name, config.source_hash, folder)
        mlflow = MlflowCallback(tracking)  # opens the store while Ray starts
        start_ray(address)
        callbacks = [mlflow, TrialLines(config.metric, config.mode, config.num_samples,
                                        also=[o.metric for o in config.objectives[1:]]),
                     OnTail(config.num_samples, config.max_concurrent_trials, [warm_report]),
                     *file_loggers()]
        tuner = _tuner(config, trainable, callbacks, resume, experiment, kept)
        if resume:
            mlflow.replay(recorded_trials(experiment))
        # the study's writer prepares while the trials run (~0.5 s of CPU): after the search
        # it only writes the trials, while the report is built
        study_writer = StudyWriter(folder)
        study_writer.start()
        fitting = time.time()
        started = earlier.started if earlier else fitting  # the hypervolume's clock
        mlflow.after_open(lambda: write_record(kept, DriverRecord(
            started, tracking.parent_id or "")))
        mlflow.after_open(lambda: tracking.share_view(view_key(config.name), view_state(
            config.name, [(o.metric, o.mode) for o in config.objectives],
            [key for key, _ in config.space])))
        try:
            with disk_errors(folder):
                try:
                    with environment(tune_settings(bool(config.storage.uri))):
                        grid = tuner.fit()
                    searched = time.time() - fitting
                finally:
                    mlflow.close()  # every queued MLflow write is done before results
                rows = collect_rows(grid, config)
            context = RunContext(config, place, tracking, started)
            summary = conclude(context, rows, study_writer, trainable, quiet=quiet)
            summary.search_seconds = round(searched, 2)  # the trials' wall time (Tune's fit)
        finally:
            study_writer.close()
        summary.write(folder)
        publish(context, summary)
        if summary.best:
            tracking.log_search_metric(f"best_{config.metric}",
                                       [(0, summary.best[config.metric])])
        tracking.end_search("FAILED" if summary.errored else "FINISHED")
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
