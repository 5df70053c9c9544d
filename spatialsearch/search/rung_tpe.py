"""TPE that learns from the trials MO-ASHA stopped: its good group is chosen from every
finished trial, each compared with the others at the epochs both were judged at.

Optuna 5's multi-objective TPE splits the finished trials into a good group (the first
gamma(n) = ceil(0.1 n)) and the rest, taking complete trials first: a stopped trial can enter
the good group only when fewer than gamma(n) trials completed. Under MO-ASHA a quarter or
more of the trials complete (every first arrival at a rung continues), so the stopped
trials' values never reached TPE's model (1 of 792 suggestions in the Fashion-MNIST
benchmark, docs/benchmarks.md), and the good group held whichever trials completed, early
first arrivals included.

Rung-matched dominance (the rule this module adds): every trial has oriented objective
vectors at the epochs it was judged at, the MO-ASHA rungs it reached and, when complete,
its full length. For two trials i and j, c is the latest of those epochs both have; j beats
i when j's vector at c dominates i's there. A trial's count is the number of trials that
beat it (Fonseca and Fleming's ranking, 1993, with each pair compared at the fidelity they
share). Ordering every finished trial by

    (violation of the search's constraints, trials beating it, -epochs reached, number),

the stopped trials among the first gamma(n) join TPE's good group: each was better at its
rung than a complete trial was there. Optuna's own split fills the rest of the group from
the other trials (complete ones first, by non-dominated rank, then hypervolume subset
selection), so with no stopped trial among the first the group is exactly Optuna's. The
trials stay PRUNED in optuna.db. The hooks: TPESampler._sample builds its two Parzen
estimators with _build_parzen_estimator(study, space, trials, handle_below), and Optuna's
split is samplers/_tpe/sampler.py's _split_trials (tests/test_rung_tpe.py fails if Optuna
changes either).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from optuna.samplers import TPESampler
from optuna.samplers._tpe.sampler import (
    _get_infeasible_trial_score,
    _split_trials,
    default_gamma_multiobjective,
)
from optuna.trial import FrozenTrial, TrialState

from spatialsearch.pareto import oriented

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def beaten_counts(vectors: np.ndarray, reached: np.ndarray) -> np.ndarray:
    """How many trials beat each one at the latest epoch both were judged at.

    vectors: (n, e, k) oriented objective vectors (larger is better, -inf invalid) of n
        trials at e judged epochs (ascending); reached: (n, e) bool, where a vector exists.
    Returns (n,) int: for trial i, the number of j whose vector at c(i, j), the latest epoch
    both reached, dominates i's there (>= in every objective, > in one). A pair without a
    common epoch is not compared.
    """
    n = len(vectors)
    common = np.full((n, n), -1)
    for epoch in range(reached.shape[1]):
        both = reached[:, epoch][:, None] & reached[:, epoch][None, :]
        common[both] = epoch
    rows = np.arange(n)
    at = np.clip(common, 0, None)
    own = vectors[rows[:, None], at]      # (n, n, k): i's vector at c(i, j)
    other = vectors[rows[None, :], at]    # (n, n, k): j's vector at c(i, j)
    beats = (np.all(other >= own, axis=2) & np.any(other > own, axis=2) & (common >= 0))
    return beats.sum(axis=1)


@dataclass
class RungBook:
    """Each Optuna trial's objective values at the epochs where it was judged.

    Args:
        modes: "max" / "min" per objective.
        epochs: the judged epochs, ascending: MO-ASHA's rungs, then the full length.
    `values[number][epoch]` holds the raw values (NaN where missing) recorded there.
    """

    modes: tuple[str, ...]
    epochs: tuple[int, ...]
    values: dict[int, dict[int, tuple[float, ...]]] = field(default_factory=dict)

    def record(self, number: int, epoch: int, values: Sequence[float]) -> None:
        """Keep a trial's values at a judged epoch (the first report there counts)."""
        if epoch in self.epochs:
            self.values.setdefault(number, {}).setdefault(epoch, tuple(values))

    def good_group(self, numbers: Sequence[int], violations: Sequence[float],
                   size: int) -> set[int]:
        """The `size` trial numbers first in the order of the module docstring, from the
        finished trials' `numbers` and constraint `violations` (Optuna's infeasibility
        score: the sum of positive constraint values); trials the book never saw come after
        those it did."""
        shape = (len(numbers), len(self.epochs), len(self.modes))
        raw = np.full(shape, np.nan)
        reached = np.zeros(shape[:2], dtype=bool)
        for row, number in enumerate(numbers):
            for column, epoch in enumerate(self.epochs):
                if epoch in self.values.get(number, {}):
                    raw[row, column] = self.values[number][epoch]
                    reached[row, column] = True
        vectors = oriented(raw.reshape(-1, shape[2]), self.modes).reshape(shape)
        beaten = beaten_counts(vectors, reached) if numbers else np.zeros(0, dtype=int)
        furthest = np.where(reached.any(axis=1), reached.shape[1] - np.argmax(
            reached[:, ::-1], axis=1), 0)
        order = sorted(range(len(numbers)), key=lambda row: (
            violations[row], not reached[row].any(), beaten[row], -furthest[row],
            numbers[row]))
        return {numbers[row] for row in order[:size]}


class RungMatchedTPESampler(TPESampler):
    """Optuna's TPE (multi-objective) whose good group takes the stopped trials that rank
    among the first by rung-matched dominance (RungBook.good_group), then Optuna's own.

    Args:
        book: the rung values, filled by the searcher (ray_compat.PruneAwareOptunaSearch).
        **kwargs: TPESampler's.
    Until the book holds a value, TPE's own split is used.
    """

    def __init__(self, book: RungBook, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.book = book
        self._groups: tuple[tuple[int, int], set[int]] | None = None

    def good_numbers(self, study: Any) -> set[int]:
        """The good group for the study as it is now (cached until a trial finishes or the
        book grows)."""
        trials = study._get_trials(deepcopy=False, states=FINISHED, use_cache=True)
        version = (len(trials), sum(len(v) for v in self.book.values.values()))
        if self._groups is None or self._groups[0] != version:
            size = (self._gamma or default_gamma_multiobjective)(len(trials))
            first = self.book.good_group([t.number for t in trials],
                                         [_get_infeasible_trial_score(t) for t in trials], size)
            promoted = {t.number for t in trials
                        if t.number in first and t.state == TrialState.PRUNED}
            rest = [t for t in trials if t.number not in promoted]
            below, _ = _split_trials(study, rest, size - len(promoted))
            self._groups = version, promoted | {t.number for t in below}
        return self._groups[1]

    def _build_parzen_estimator(self, study: Any, search_space: Any,
                                trials: list[FrozenTrial], handle_below: bool) -> Any:
        """Optuna's estimator over this sampler's group instead of Optuna's."""
        if self.book.values and study._is_multi_objective():
            good = self.good_numbers(study)
            trials = [t for t in study._get_trials(deepcopy=False, states=FINISHED,
                                                   use_cache=True)
                      if (t.number in good) == handle_below]
        return super()._build_parzen_estimator(study, search_space, trials, handle_below)
