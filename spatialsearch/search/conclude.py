"""The end of a search, after the trials: results, the Pareto answer (and its reseeding), the
analysis of the best trials and the report. The one module of the search that reaches
analysis/ (nothing in analysis/ imports the search).

optuna.db is written by a child process (study.StudyWriter) and old checkpoints are pruned by
a thread, both beside the report.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

from spatialsearch.errors import SearchFailed
from spatialsearch.redact import masked
from spatialsearch.search.answer import (
    front_summary,
    log_front,
    tag_reseeds,
    write_pareto_csv,
)
from spatialsearch.search.config import SearchConfig
from spatialsearch.search.front import pareto_front
from spatialsearch.search.places import locate, tune_storage
from spatialsearch.search.ray_folder import BEST_FILE, RAY_FOLDER, prune_checkpoints
from spatialsearch.search.reseed import Spread, reseed_configs, run_reseeds, spreads
from spatialsearch.search.results import TrialRow, outcomes, write_results
from spatialsearch.search.run_context import RunContext
from spatialsearch.search.session import environment, file_loggers, tune_settings
from spatialsearch.search.study import StudyWriter, build_study, study_record
from spatialsearch.search.summary import SUMMARY_FILE, SearchSummary
from spatialsearch.search.tracking import SearchTracking
from spatialsearch.search.tracking_callback import MlflowCallback

_logger = logging.getLogger(__name__)


def conclude(context: RunContext, rows: list[TrialRow], study_writer: StudyWriter,
             trainable: Any, *, quiet: bool) -> SearchSummary:
    """Everything after the trials; returns the summary (written to summary.json)."""
    config, folder, place, tracking = (context.config, context.folder, context.place,
                                       context.tracking)
    with disk_errors(folder):
        study = study_record(config, [r.__dict__ for r in rows])
        study_writer.write(study)
        pruning = threading.Thread(target=prune_checkpoints, name="prune-checkpoints",
                                   args=(place.child(RAY_FOLDER, config.name),))
        pruning.start()
        retired = tracking.retire_orphans({r.trial_id for r in rows})
        tracking.settle({r.trial_id: ("FAILED" if r.status == "ERROR" else "FINISHED",
                                      locate(r.checkpoint, config.storage) if r.checkpoint
                                      else None) for r in rows})
        summary = write_results(config, rows, tracking)
        summary.storage = {"folder": masked(place.uri),
                       "endpoint": masked(config.storage.endpoint)}
        _answer(context, rows, summary, trainable)
        local = local_checkpoints(config, rows, summary)
    summary.analyzed = analyze_best(config, summary, tracking, quiet, local)
    summary.report = search_report(config, rows, summary, tracking, build_study(study), local)
    summary.mlflow["retired_runs"] = retired
    with disk_errors(folder):
        study_writer.wait()
    pruning.join()
    return summary


def _answer(context: RunContext, rows: list[TrialRow], summary: SearchSummary,
            trainable: Any) -> None:
    """Several objectives: the Pareto front of the full trials (summary.pareto, pareto.csv,
    MLflow). reseed K: the front (one objective: the best trial) trained again with K
    further seeds."""
    config, tracking = context.config, context.tracking
    by_id = {r.trial_id: r for r in rows}
    front = None
    if config.multi_objective:
        data = config.base_config.data
        front = pareto_front(config.objectives, outcomes(rows, config), labels=data.labels,
                             num_tasks=data.num_tasks, started_at=context.started)
        members = list(front.members)
    else:
        members = [summary.best["trial_id"]] if summary.best else []
    spread: list[Spread] = []
    if config.reseed and members:
        spread = _reseed(context, [(t, by_id[t].params, by_id[t].objectives)
                                   for t in members], trainable)
    if front is not None:
        summary.pareto = front_summary(front, by_id, spread, config.constraints)
        write_pareto_csv(config.folder / "pareto.csv", summary.pareto)
        log_front(tracking, summary.pareto)
    elif spread:
        names = [o.metric for o in config.objectives]
        summary.best["reseed"] = {"seeds": list(spread[0].seeds),
                                  "mean": dict(zip(names, spread[0].mean)),
                                  "std": dict(zip(names, spread[0].std))}


def _reseed(context: RunContext, members: list[tuple[str, dict[str, Any], tuple]],
            trainable: Any) -> list[Spread]:
    """Train the members again with config.reseed further seeds each (a second Tune
    experiment, <name>-reseed, logged as MLflow children of the search's parent run)."""
    config, tracking = context.config, context.tracking
    planned = reseed_configs(config, [(t, p) for t, p, _ in members])
    _logger.info("reseeding %d trials with %d further seeds each (%d trials)", len(members),
                 config.reseed, len(planned))
    reseeds = SearchTracking(tracking.store, config.name, config.source_hash, config.folder)
    callback = MlflowCallback(reseeds)
    try:
        with environment(tune_settings(bool(config.storage.uri))):
            found = run_reseeds(config, trainable, planned, [callback, *file_loggers()],
                                tune_storage(context.place.child(RAY_FOLDER)))
    finally:
        callback.close()
    tag_reseeds(reseeds, {str(v.get("trial_id")): k[0] for k, v in found.items()})
    tracking.unlogged.extend(reseeds.unlogged)
    return spreads(config, members, found)


def local_checkpoints(config: SearchConfig, rows: list[TrialRow],
                      summary: SearchSummary) -> dict[str, str]:
    """trial id -> its best.pt on this machine, for the analysis and the report: the file
    itself in local storage; from remote storage, fetched (in parallel) into <folder>/
    checkpoints/<trial>/ for the ranked trials, and only those the report reads (one
    objective: every ranked trial's segregation; several: the analysed ones)."""
    ranked = [r["trial_id"] for r in summary.table]
    wanted = ranked if not config.multi_objective else ranked[:config.analyze]
    where = {r.trial_id: r.checkpoint for r in rows if r.checkpoint}
    if not config.storage.remote:
        return {t: where[t] for t in ranked if t in where and Path(where[t]).is_file()}

    def fetch(trial_id: str) -> tuple[str, str]:
        target = config.folder / "checkpoints" / trial_id / BEST_FILE
        try:
            return trial_id, str(locate(where[trial_id], config.storage).fetch(target))
        except OSError as error:
            _logger.warning("checkpoint of trial %s not fetched: %s", trial_id, error)
            return trial_id, ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        fetched = dict(pool.map(fetch, [t for t in wanted if t in where]))
    return {t: path for t, path in fetched.items() if path}


def publish(context: RunContext, summary: SearchSummary) -> None:
    """With a storage: the search's results (results.csv, summary.json, pareto.csv, best/,
    analysis/, report/) uploaded beside its Ray experiment."""
    config, place = context.config, context.place
    if not config.storage.uri:
        return
    for name in ("results.csv", "pareto.csv", "best", "analysis", "report", SUMMARY_FILE):
        if (config.folder / name).exists():
            try:
                place.child(name).upload(config.folder / name)
            except OSError as error:
                _logger.warning("storage: %s not uploaded to %s: %s", name, masked(place.uri),
                                masked(str(error)))


def analyze_best(config: SearchConfig, summary: SearchSummary, tracking: SearchTracking,
                 quiet: bool, local: dict[str, str]) -> list[str]:
    """analysis.analyze on the best `config.analyze` trials (local: trial id -> best.pt on
    this machine); files go to <folder>/analysis/<trial> and, as artifacts under analysis/,
    to each trial's MLflow run."""
    from analysis.analyze import analyze

    done = []
    for row in summary.table[:config.analyze]:
        if row["trial_id"] not in local:
            continue
        out = config.folder / "analysis" / row["trial_id"]
        try:
            analyze(local[row["trial_id"]], out, progress=not quiet)
        except Exception as error:  # noqa: BLE001 - a failed analysis must not lose the search
            _logger.warning("analysis of trial %s failed: %s", row["trial_id"], error)
            continue
        tracking.log_artifacts(row["trial_id"], out, "analysis")
        done.append(str(out))
    return done


def search_report(config: SearchConfig, rows: list[TrialRow], summary: SearchSummary,
                  tracking: SearchTracking, study: Any = None,
                  local: dict[str, str] | None = None) -> str:
    """analysis.report for the whole search; also logged to the parent run (report/).
    study: the search as an optuna.Study (Optuna's figures), or None; local: trial id ->
    best.pt on this machine (local_checkpoints)."""
    from analysis.report import TrialRecord, build_report

    ranked = {r["trial_id"]: i for i, r in enumerate(summary.table)}
    local = local or {}
    records = sorted(
        (TrialRecord(r.trial_id, r.params, r.values, r.best_metric, local.get(r.trial_id, ""),
                     r.objectives, r.epochs)
         for r in rows if r.trial_id in ranked), key=lambda t: ranked[t.trial_id])
    if not records:
        return ""
    try:
        path = build_report(
            config.name, config.metric, records, config.folder / "report",
            log_params={k for k, d in config.space if d.kind == "loguniform"},
            study=study, analysis_folders=[Path(p) for p in summary.analyzed],
            pareto=summary.pareto)
    except Exception as error:  # noqa: BLE001 - a failed report must not lose the search
        _logger.warning("search report failed: %s", error)
        return ""
    tracking.log_artifacts(None, path.parent, "report")
    return str(path)


def warm_report() -> None:
    """Import what the report needs, in the search's tail (progress.OnTail)."""
    from analysis.report import warm_up

    try:
        warm_up()
    except ImportError as error:  # the report itself will say so
        _logger.debug("report imports: %s", error)


@contextlib.contextmanager
def disk_errors(folder: Path) -> Iterator[None]:
    """A full or failing disk (Ray's own files included) -> one SearchFailed saying what is
    kept and how to go on."""
    try:
        yield
    except (OSError, EOFError) as error:
        free = shutil.disk_usage(folder).free / 2**20
        raise SearchFailed(
            f"output: writing the search to {str(folder)!r} failed ({error}); {free:.0f} MiB "
            f"free there. Checkpoints of the trials that finished are kept under "
            f"{str(folder / RAY_FOLDER)!r}; free space, then continue with --resume") from error

