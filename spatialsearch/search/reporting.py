"""The search's findings on its checkpoints: the best trials' checkpoints on this machine,
their analysis (analysis.analyze) and the search report (analysis.report). The one module of
the search that reaches analysis/ (nothing in analysis/ imports the search).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from spatialsearch.search.outcome.files import SearchSummary
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.places.place import locate
from spatialsearch.search.places.ray_folder import BEST_FILE
from spatialsearch.search.run_context import RunContext

_logger = logging.getLogger(__name__)


def local_checkpoints(context: RunContext, rows: list[TrialRow],
                      summary: SearchSummary) -> dict[str, str]:
    """trial id -> its best.pt on this machine, for the analysis and the report: the file
    itself in local storage; from remote storage, fetched (in parallel) into <folder>/
    checkpoints/<trial>/ for the ranked trials, and only those the report reads (one
    objective: every ranked trial's segregation; several: the analysed ones)."""
    config = context.config
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


def analyze_best(context: RunContext, summary: SearchSummary, quiet: bool,
                 local: dict[str, str]) -> list[str]:
    """analysis.analyze on the best `config.analyze` trials (local: trial id -> best.pt on
    this machine); files go to <folder>/analysis/<trial> and, as artifacts under analysis/,
    to each trial's MLflow run."""
    from analysis.analyze import analyze

    config, tracking = context.config, context.tracking
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


def search_report(context: RunContext, rows: list[TrialRow], summary: SearchSummary,
                  study: Any = None, local: dict[str, str] | None = None) -> str:
    """analysis.report for the whole search; also logged to the parent run (report/).
    study: the search as an optuna.Study (Optuna's figures), or None; local: trial id ->
    best.pt on this machine (local_checkpoints)."""
    from analysis.report import TrialRecord, build_report

    config, tracking = context.config, context.tracking
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
