"""The trials of a finished search as rows: what Tune's results say of each trial, read once
(collect_rows); ranking.py orders them, files.py writes them."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spatialsearch import metrics as m
from spatialsearch.search.places.place import Place
from spatialsearch.search.places.ray_folder import BEST_FILE
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.space.constraints import feasible

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
    """One row per trial of Tune's ResultGrid (once_each: a trial listed twice counts once)."""
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
    return once_each(rows)


def once_each(rows: list[TrialRow]) -> list[TrialRow]:
    """One row per trial id, in first-seen order: of rows sharing an id, the one that got
    furthest (most epochs, then without error, then the latest result). A restored Tune can
    list a trial twice: seen once after a node died and then the driver, mid-search."""
    kept: dict[str, TrialRow] = {}
    for row in rows:
        other = kept.get(row.trial_id)
        if other is not None:
            _logger.warning("trial %s is listed twice in Tune's results; counted once",
                            row.trial_id)
        if other is None or _further(row) > _further(other):
            kept[row.trial_id] = row
    return [kept[t] for t in dict.fromkeys(r.trial_id for r in rows)]


def _further(row: TrialRow) -> tuple[int, bool, float]:
    return row.epochs, row.status != "ERROR", row.ended_at
