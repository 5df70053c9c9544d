"""MO-ASHA: asynchronous successive halving whose rung decisions rank trials by several
objectives (Schmucker et al. 2021, "Multi-objective multi-fidelity hyperparameter
optimization with application to fairness"), as a Ray Tune scheduler.

Rungs are ASHA's: epochs grace * rf^k below max_t (one bracket, as the single-objective
`asha`). When a trial reports at a rung epoch for the first time, its objective vector is
recorded there and the decision is ASHA's rule on a score (continues): the newcomer continues
iff its score is at least the (1 - 1/rf) percentile (linear interpolation) of the scores of
the vectors recorded at that rung before it, as Ray's AsyncHyperBandScheduler decides. The
first trial at a rung continues; a decision is never revisited.

The score (rung_scores): with one objective the value itself, so the decisions are Ray's
ASHA's exactly (tests/search/engine/test_moasha.py replays one stream through both). With several, every
vector of the rung is ranked together (pareto: non-dominated front, then crowding distance)
and scores -front + c / (2 (1 + c)), c its crowding distance (+inf: 0.5): a better front
always scores higher, and within a front the more isolated vector does. Ties are equal
scores, and an equal score continues, so there is no first-arrival bias: of two mutually
non-dominated vectors (fronts of 1-2 points are all +inf crowding) the second continues too.

A result at a rung epoch missing an objective, or with a NaN or infinite one, is invalid
(pareto.oriented): it stops, is recorded, and ranks below every valid vector after it.

Constraints (the search's `constraints`) rank each rung by constrained dominance (Deb et al.
2002): every trial that meets them at the rung scores above every trial that does not, the
feasible ones ranked among themselves as above, the infeasible ones by their summed
violation, less first (a missing constrained metric violates without bound). So two
infeasible trials can never stop the only feasible one.
The rungs, the count of stopped trials and the decisions survive --resume: each decision is
appended to a journal (places/journal.py) and replayed by a restored scheduler.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Sequence

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from spatialsearch import metrics as m
from spatialsearch.pareto import (
    crowding_distance,
    non_dominated_fronts,
    oriented,
    valid_rows,
)
from spatialsearch.search.places.journal import Journal
from spatialsearch.search.places.place import Place
from spatialsearch.search.places.saved_state import SavedAttributes
from spatialsearch.search.space.constraints import Constraint

#: the vectors of a rung a decision ranks the newcomer among (MultiObjectiveASHA's window)
WINDOW = 1000


def _number(value: Any) -> float:
    """An objective as reported; missing or not a number: NaN (invalid)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else math.nan


def rung_epochs(max_t: int, grace_period: int, reduction_factor: int) -> tuple[int, ...]:
    """ASHA's milestones below max_t: grace * rf^k for k < int(log(max_t / grace) / log(rf)
    + 1), the same count as Ray's one-bracket AsyncHyperBand."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return tuple(grace_period * reduction_factor**k for k in range(count))


def rung_scores(points: np.ndarray, violations: np.ndarray | None = None) -> np.ndarray:
    """(n, k) oriented vectors of one rung -> (n,) scores, larger is better: the value for
    k = 1 (invalid rows NaN, which the cutoff ignores as Ray's nanpercentile does); else
    -front + c / (2 (1 + c)) with c the crowding distance within the front (+inf -> 0.5).
    violations (n,) >= 0 (0: meets every constraint): the feasible rows are scored among
    themselves so; an infeasible row scores below all of them, by floor - v / (1 + v)
    (floor one below the lowest feasible score; v = inf -> floor - 1)."""
    feasible = np.ones(len(points), bool) if violations is None else violations <= 0
    scores = np.full(len(points), np.nan)
    chosen = points[feasible]
    if points.shape[1] == 1:
        scores[feasible] = np.where(valid_rows(chosen), chosen[:, 0], np.nan)
    else:
        ranked = np.empty(len(chosen))
        for index, front in enumerate(non_dominated_fronts(chosen)):
            crowding = crowding_distance(chosen[front])
            spread = np.divide(crowding, 2 * (1 + crowding), out=np.full(len(front), 0.5),
                               where=np.isfinite(crowding))
            ranked[front] = -index + spread
        scores[feasible] = ranked
    if feasible.all():
        return scores
    lowest = np.nanmin(scores[feasible]) if np.any(np.isfinite(scores[feasible])) else 0.0
    excess = violations[~feasible]
    share = np.divide(excess, 1 + excess, out=np.ones_like(excess), where=np.isfinite(excess))
    scores[~feasible] = lowest - 1.0 - share
    return scores


def continues(previous: np.ndarray, newcomer: np.ndarray, reduction_factor: int,
              violations: np.ndarray | None = None) -> bool:
    """ASHA's decision for a newcomer (k,) at a rung that recorded `previous` (n, k) before
    it, all oriented larger-is-better: False for an invalid newcomer; True for the first;
    else score(newcomer) >= the (1 - 1/rf) percentile of the previous scores. violations
    (n + 1,): each vector's summed constraint violation, the newcomer's last (rung_scores)."""
    if not np.all(np.isfinite(newcomer)):
        return False
    if len(previous) == 0:
        return True
    scores = rung_scores(np.vstack([previous, newcomer[None, :]]), violations)
    if np.all(np.isnan(scores[:-1])):
        return True  # nothing valid to compare with: Ray's cutoff is NaN, and it continues
    cutoff = np.nanpercentile(scores[:-1], (1 - 1 / reduction_factor) * 100)
    return bool(scores[-1] >= cutoff)


class MultiObjectiveASHA(SavedAttributes, FIFOScheduler):
    """Ray Tune scheduler: CONTINUE or STOP at each rung by multi-objective rank.

    Args:
        metrics, modes: the objectives and their directions ("max" / "min"), one each.
        constraints: the search's; each rung is ranked by constrained dominance.
        max_t: a trial's full length in `time_attr` units (epochs).
        grace_period, reduction_factor: ASHA's.
        time_attr: the result key counting progress.
        state: where each decision is appended (places.journal.Journal: the search's resume
            folder, in its storage), and read back before the first decision of a resumed
            search: Tune 2.60 restores a scheduler as it was pickled when the search began.
        window: a rung's decision ranks the newcomer among the last `window` vectors
            recorded there, so a decision costs the same at trial 10,000 as at trial 1,000
            (ranking all vectors costs O(n^2) per decision); up to `window` trials per rung
            the decisions are exactly ASHA's over all of them.
    """

    def __init__(self, metrics: Sequence[str], modes: Sequence[str], *, max_t: int,
                 grace_period: int, reduction_factor: int, time_attr: str = m.EPOCH,
                 state: Place | None = None, constraints: Sequence[Constraint] = (),
                 window: int = WINDOW) -> None:
        super().__init__()
        self.metrics, self.modes = tuple(metrics), tuple(modes)
        self.constraints = tuple(constraints)
        self.time_attr, self.reduction_factor = time_attr, reduction_factor
        self.rungs = {epoch: {} for epoch in rung_epochs(max_t, grace_period, reduction_factor)
                      if epoch < max_t}  # rung epoch -> trial id -> raw objective vector
        self.stopped_trials: list[str] = []
        self._stopped: dict[str, int] = {}  # trial -> the rung epoch it was stopped at
        self.window = window
        self.state, self._loaded = state, state is None
        self.journal = Journal(state) if state is not None else None

    @property
    def stopped(self) -> int:
        return len(self.stopped_trials)

    def __getstate__(self) -> dict[str, Any]:
        """A pickled copy (what a restored Tuner gets) reads the saved state before deciding."""
        return dict(self.__dict__, _loaded=self.state is None)

    def state_dict(self) -> dict[str, Any]:
        """The decisions so far, as JSON: rung -> trial -> vector (NaN as null), in the order
        they were recorded, and the trials stopped (what a replay of the journal rebuilds)."""
        return {"rungs": {str(epoch): {trial: [None if math.isnan(v) else v for v in vector]
                                       for trial, vector in recorded.items()}
                          for epoch, recorded in self.rungs.items()},
                "stopped": list(self.stopped_trials)}

    def replay(self, entries: Sequence[dict[str, Any]]) -> None:
        """The decisions of a journal, in order: each records a vector at a rung and whether
        the trial stopped there."""
        for entry in entries:
            epoch = int(entry["rung"])
            if epoch in self.rungs:
                self.rungs[epoch][entry["trial"]] = tuple(
                    math.nan if v is None else float(v) for v in entry["vector"])
            if entry["stopped"] and entry["trial"] not in self._stopped:
                self.stopped_trials.append(entry["trial"])
                self._stopped[entry["trial"]] = epoch

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # the objectives are our own; Tune's single metric does not apply

    def decide(self, trial_id: str, result: dict[str, Any]) -> str:
        """The decision for one result: CONTINUE unless it is the trial's first report at a
        rung and it does not pass ASHA's cutoff there (continues); a trial stopped before
        (its results replayed after --resume, from an earlier checkpoint) is stopped again
        when it reaches the rung it was stopped at, so it trains exactly to that rung."""
        if not self._loaded:
            self.replay(self.journal.entries())
            self._loaded = True
        if trial_id in self._stopped:
            reached = result.get(self.time_attr)
            if not isinstance(reached, (int, float)) or reached >= self._stopped[trial_id]:
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE
        recorded = self.rungs.get(result.get(self.time_attr))
        if recorded is None or trial_id in recorded:
            return TrialScheduler.CONTINUE
        recorded[trial_id] = tuple(_number(result.get(key)) for key in self.metrics) + tuple(
            _number(result.get(c.metric)) for c in self.constraints)
        # the newest vector is the last row: dicts keep insertion order
        recent = itertools.islice(reversed(recorded.values()), self.window + 1)
        raw = np.array(list(recent)[::-1], dtype=float)
        points = oriented(raw[:, :len(self.metrics)], self.modes)
        going_on = continues(points[:-1], points[-1], self.reduction_factor,
                             self._violations(raw[:, len(self.metrics):]))
        if not going_on:
            self.stopped_trials.append(trial_id)
            self._stopped[trial_id] = result.get(self.time_attr)
        if self.journal is not None:
            self.journal.append({"rung": result.get(self.time_attr), "trial": trial_id,
                                 "vector": [None if math.isnan(v) else v
                                            for v in recorded[trial_id]],
                                 "stopped": not going_on})
        return TrialScheduler.CONTINUE if going_on else TrialScheduler.STOP

    def _violations(self, bounded: np.ndarray) -> np.ndarray | None:
        """(n, c) raw constrained values -> (n,) summed violations (constraints.Constraint),
        None without constraints."""
        if not self.constraints:
            return None
        return np.array([sum(max(0.0, c.violation(float(v))) for c, v in
                             zip(self.constraints, row)) for row in bounded])

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return self.decide(trial.trial_id, result)

    def debug_string(self) -> str:
        sizes = ", ".join(f"{epoch}: {len(r)}" for epoch, r in self.rungs.items())
        return f"MO-ASHA on {', '.join(self.metrics)}: {self.stopped} stopped; rungs {sizes}"
