"""MO-ASHA: asynchronous successive halving whose rung decisions rank trials by several
objectives (Schmucker et al. 2021, "Multi-objective multi-fidelity hyperparameter
optimization with application to fairness"), as a Ray Tune scheduler.

Rungs are ASHA's: epochs grace * rf^k below max_t (one bracket, as the single-objective
`asha`). When a trial reports at a rung epoch for the first time, its objective vector is
recorded there and ranked among every vector recorded at that rung so far, itself included
(pareto.rank_order: non-dominated front first, then crowding distance, larger first, then
the earlier trial). With n vectors recorded, the trial continues iff its position is below
ceil(n / rf): the top 1/rf, as in syne-tune's MOASHA. For one objective this is ASHA's rule up
to one position: Ray's AsyncHyperBandScheduler compares the newcomer with the interpolated
(1 - 1/rf) percentile of the values recorded before it. Like ASHA, the first trial at a rung
always continues, and a decision is never revisited.
A result that lacks an objective (a trial that measured no segregation at that epoch) gets no
decision. NaN ranks last (pareto.oriented).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from spatialsearch import metrics as m
from spatialsearch.pareto import oriented, rank_order
from spatialsearch.search.saved_state import SavedAttributes


def rung_epochs(max_t: int, grace_period: int, reduction_factor: int) -> tuple[int, ...]:
    """ASHA's milestones below max_t: grace * rf^k for k < int(log(max_t / grace) / log(rf)
    + 1), the same count as Ray's one-bracket AsyncHyperBand."""
    count = int(math.log(max_t / grace_period) / math.log(reduction_factor) + 1)
    return tuple(grace_period * reduction_factor**k for k in range(count))


def continues(recorded: np.ndarray, reduction_factor: int) -> bool:
    """Whether the last row of `recorded` (n, k), oriented larger-is-better, is within the top
    ceil(n / rf) of the rung by rank_order: the one decision of the scheduler."""
    position = rank_order(recorded).index(len(recorded) - 1)
    return position < math.ceil(len(recorded) / reduction_factor)


class MultiObjectiveASHA(SavedAttributes, FIFOScheduler):
    """Ray Tune scheduler: CONTINUE or STOP at each rung by multi-objective rank.

    Args:
        metrics, modes: the objectives and their directions ("max" / "min"), one each.
        max_t: a trial's full length in `time_attr` units (epochs).
        grace_period, reduction_factor: ASHA's.
        time_attr: the result key counting progress.
    """

    def __init__(self, metrics: Sequence[str], modes: Sequence[str], *, max_t: int,
                 grace_period: int, reduction_factor: int, time_attr: str = m.EPOCH) -> None:
        super().__init__()
        self.metrics, self.modes = tuple(metrics), tuple(modes)
        self.time_attr, self.reduction_factor = time_attr, reduction_factor
        self.rungs = {epoch: {} for epoch in rung_epochs(max_t, grace_period, reduction_factor)
                      if epoch < max_t}  # rung epoch -> trial id -> raw objective vector
        self.stopped = 0

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        return True  # the objectives are our own; Tune's single metric does not apply

    def decide(self, trial_id: str, result: dict[str, Any]) -> str:
        """The decision for one result: CONTINUE unless it is the trial's first report at a
        rung and it ranks outside the top 1 / reduction_factor there."""
        epoch = result.get(self.time_attr)
        recorded = self.rungs.get(epoch)
        if recorded is None or trial_id in recorded:
            return TrialScheduler.CONTINUE
        if any(not isinstance(result.get(key), (int, float)) for key in self.metrics):
            return TrialScheduler.CONTINUE
        recorded[trial_id] = tuple(float(result[key]) for key in self.metrics)
        points = oriented(np.array(list(recorded.values())), self.modes)
        # the newest vector is the last row: dicts keep insertion order
        if continues(points, self.reduction_factor):
            return TrialScheduler.CONTINUE
        self.stopped += 1
        return TrialScheduler.STOP

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return self.decide(trial.trial_id, result)

    def debug_string(self) -> str:
        sizes = ", ".join(f"{epoch}: {len(r)}" for epoch, r in self.rungs.items())
        return f"MO-ASHA on {', '.join(self.metrics)}: {self.stopped} stopped; rungs {sizes}"
