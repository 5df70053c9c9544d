"""The trials of a finished search: their rows (from Tune's results), their ranking, and the
files that hold them: results.csv, best/best.pt and the summary."""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spatialsearch import metrics as m
from spatialsearch.pareto import oriented, rank_order
from spatialsearch.redact import masked
from spatialsearch.search.config import SearchConfig
from spatialsearch.search.constraints import feasible
from spatialsearch.search.front import Candidate, TrialOutcome, rank_single
from spatialsearch.search.mlflow_view import view_key
from spatialsearch.search.places import Place, locate
from spatialsearch.search.ray_folder import BEST_FILE
from spatialsearch.search.summary import SearchSummary
from spatialsearch.search.tracking import SearchTracking

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialRow:
    trial_id: str
    status: str
    params: dict[str, Any]
    best_metric: float
    epochs: int
    checkpoint: str
    values: tuple[float, ...]  # the (first objective's) metric per epoch
    objectives: tuple[float, ...] = ()  # every objective at the last epoch
    val_loss: float = float("nan")  # at the epoch of best_metric
    accuracy_se: float = float("nan")  # standard error of val_accuracy at that epoch
    ended_at: float = 0.0  # unix time of the last result
    feasible: bool = True  # its last epoch meets every constraint (constraints.py)


def _column(frame: Any, name: str) -> list[float]:
    return [float(v) for v in frame[name]] if frame is not None and name in frame else []


def collect_rows(grid: Any, config: SearchConfig) -> list[TrialRow]:
    rows = []
    searched = {key for key, _ in config.space}
    for result in grid:
        frame = result.metrics_dataframe
        values = _column(frame, config.metric)
        at = -1
        if values:
            finite = [v if v == v else (-math.inf if config.mode == "max" else math.inf)
                      for v in values]
            at = finite.index(max(finite) if config.mode == "max" else min(finite))

        def at_best(name: str) -> float:
            column = _column(frame, name)
            return column[at] if column and at >= 0 else float("nan")

        checkpoint = ""  # where the best.pt is: a local path, or s3://... (Place.uri)
        if result.checkpoint is not None:
            saved = result.checkpoint
            checkpoint = Place(saved.filesystem, saved.path).child(BEST_FILE).uri
        trial_id = str(result.metrics.get("trial_id", Path(result.path).name))
        last = result.metrics or {}
        rows.append(TrialRow(
            trial_id=trial_id, status="ERROR" if result.error else "TERMINATED",
            params={k: v for k, v in result.config.items() if k in searched},
            best_metric=at_best(config.metric), epochs=int(last.get(m.EPOCH, 0)),
            checkpoint=checkpoint, values=tuple(values),
            objectives=tuple(float(last.get(o.metric, math.nan)) for o in config.objectives),
            val_loss=at_best(m.VAL_LOSS), accuracy_se=at_best(m.VAL_ACCURACY_SE),
            ended_at=float(last.get("timestamp", 0.0)),
            feasible=feasible(config.constraints, last)))
    return rows


def outcomes(rows: list[TrialRow], config: SearchConfig) -> list[TrialOutcome]:
    return [TrialOutcome(r.trial_id, r.status != "ERROR" and r.epochs == config.epochs,
                         r.objectives, r.ended_at, r.feasible) for r in rows]


def rank(config: SearchConfig, rows: list[TrialRow]) -> list[TrialRow]:
    """Finished trials, best first: one objective by rank_single (noise-aware ties on
    val_accuracy); several by multi-objective rank (pareto.rank_order) of the full trials,
    then the trials stopped early by their first objective. With constraints, the feasible
    trials come first, each group ranked so."""
    finished = [r for r in rows if r.status != "ERROR" and r.best_metric == r.best_metric]
    if config.constraints:
        return (_rank(config, [r for r in finished if r.feasible])
                + _rank(config, [r for r in finished if not r.feasible]))
    return _rank(config, finished)


def _rank(config: SearchConfig, finished: list[TrialRow]) -> list[TrialRow]:
    by_id = {r.trial_id: r for r in finished}
    if not config.multi_objective:
        order = rank_single(config.metric, config.mode, [
            Candidate(r.trial_id, r.best_metric, r.val_loss, r.accuracy_se) for r in finished])
        return [by_id[t] for t in order]
    full = [r for r in finished if r.epochs == config.epochs]
    points = oriented(np.array([r.objectives for r in full]).reshape(len(full),
                                                                    len(config.objectives)),
                      [o.mode for o in config.objectives])
    sign = 1.0 if config.mode == "max" else -1.0
    rest = sorted((r for r in finished if r not in full), key=lambda r: -sign * r.best_metric)
    return [full[i] for i in rank_order(points)] + rest


def write_results(config: SearchConfig, rows: list[TrialRow],
                  tracking: SearchTracking) -> SearchSummary:
    """results.csv (every trial, the ranked first), best/best.pt and summary.json."""
    folder = config.folder
    ranked = rank(config, rows)
    best_path = ""
    if ranked and ranked[0].checkpoint:
        best = locate(ranked[0].checkpoint, config.storage)
        if best.is_file():
            best_path = str(best.fetch(folder / "best" / BEST_FILE))
    with open(folder / "results.csv", "w", newline="") as file:
        writer = csv.writer(file)
        keys = sorted({k for r in rows for k in r.params})
        objectives = [o.metric for o in config.objectives]
        writer.writerow(["trial", "status", *keys, f"best_{config.metric}",
                         f"{m.VAL_ACCURACY_SE}_at_best", *[f"last_{o}" for o in objectives],
                         "epochs", "feasible"])
        for r in ranked + [r for r in rows if r not in ranked]:
            writer.writerow([r.trial_id, r.status, *(r.params.get(k) for k in keys),
                             r.best_metric, r.accuracy_se, *r.objectives, r.epochs,
                             r.feasible])
    summary = SearchSummary(
        search=config.name, metric=config.metric, mode=config.mode,
        objectives=[{"metric": o.metric, "mode": o.mode} for o in config.objectives],
        trials=len(rows), errored=sum(r.status == "ERROR" for r in rows),
        stopped_early=sum(0 < r.epochs < config.epochs for r in rows),
        best=None if not ranked else {
            "trial_id": ranked[0].trial_id, "params": ranked[0].params,
            config.metric: ranked[0].best_metric,
            f"{m.VAL_ACCURACY_SE}": ranked[0].accuracy_se, "checkpoint": best_path},
        table=[{k: v for k, v in r.__dict__.items() if k != "values"} for r in ranked],
        mlflow={"tracking_uri": masked(tracking.store.uri), "experiment": config.experiment,
                "experiment_id": tracking.experiment_id, "view": view_key(config.name),
                "parent_run_id": tracking.parent_id, "not_logged": tracking.unlogged})
    summary.write(folder)
    return summary
