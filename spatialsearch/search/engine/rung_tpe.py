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
i when j's vector at c dominates i's there. A trial's count is the number of recorded
trials that beat it (Fonseca and Fleming's ranking, 1993, with each pair compared at the
fidelity they share), kept up to date as values arrive (RungBook.record), so a suggestion
costs a sort, not all pairs. Ordering every finished trial by

    (violation of the search's constraints, trials beating it, -epochs reached, number),

the stopped trials among the first gamma(n) join TPE's good group: each was better at its
rung than a complete trial was there. Optuna's own split fills the rest of the group from
the other trials (complete ones first, by non-dominated rank, then hypervolume subset
selection), so with no stopped trial among the first the group is exactly Optuna's. The
trials stay PRUNED in optuna.db. The hooks: TPESampler._sample builds its two Parzen
estimators with _build_parzen_estimator(study, space, trials, handle_below), and Optuna's
split is samplers/_tpe/sampler.py's _split_trials (tests/search/engine/test_rung_tpe.py fails if Optuna
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


def dominates(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(m, k), (m, k) oriented vectors -> (m,) bool: first[r] dominates second[r]."""
    return np.all(first >= second, axis=1) & np.any(first > second, axis=1)


@dataclass
class RungBook:
    """Each Optuna trial's objective values at the epochs where it was judged, and how many
    recorded trials beat it (rung-matched dominance), kept up to date as values arrive.

    Args:
        modes: "max" / "min" per objective.
        epochs: the judged epochs, ascending: MO-ASHA's rungs, then the full length.
    `values[number][epoch]` holds the raw values (NaN where missing) recorded there.

    The counts are incremental: when trial j records epoch index a (its latest), the pairs
    whose latest common epoch moves to a are exactly (i, j) for the trials i that reached a;
    each such pair's relation at its old common epoch is taken back and the one at a added,
    O(n k) per record instead of O(n^2 k) per suggestion. A record that comes before an
    epoch the trial already has (never in a search: results arrive in epoch order) marks
    the counts stale, and the next query recomputes them all (beaten_counts).
    """

    modes: tuple[str, ...]
    epochs: tuple[int, ...]
    values: dict[int, dict[int, tuple[float, ...]]] = field(default_factory=dict)
    _rows: dict[int, int] = field(default_factory=dict, repr=False)
    _vectors: np.ndarray = field(default=None, repr=False)  # (capacity, e, k) oriented
    _reached: np.ndarray = field(default=None, repr=False)  # (capacity, e) bool
    _beaten: np.ndarray = field(default=None, repr=False)   # (capacity,) int
    _stale: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._grow(64)

    def _grow(self, capacity: int) -> None:
        shape = (capacity, len(self.epochs), len(self.modes))
        vectors, reached = np.full(shape, -np.inf), np.zeros(shape[:2], dtype=bool)
        beaten = np.zeros(capacity, dtype=np.int64)
        if self._vectors is not None:
            used = len(self._rows)
            vectors[:used], reached[:used] = self._vectors[:used], self._reached[:used]
            beaten[:used] = self._beaten[:used]
        self._vectors, self._reached, self._beaten = vectors, reached, beaten

    def _row(self, number: int) -> int:
        if number not in self._rows:
            if len(self._rows) == len(self._beaten):
                self._grow(2 * len(self._beaten))
            self._rows[number] = len(self._rows)
        return self._rows[number]

    def record(self, number: int, epoch: int, values: Sequence[float]) -> None:
        """Keep a trial's values at a judged epoch (the first report there counts) and update
        every count the new value changes."""
        if epoch not in self.epochs or epoch in self.values.get(number, {}):
            return
        self.values.setdefault(number, {})[epoch] = tuple(values)
        row, index = self._row(number), self.epochs.index(epoch)
        vector = oriented(np.array([values], dtype=float), self.modes)[0]
        used = len(self._rows)
        if self._reached[row, index + 1:].any():
            self._stale = True
        self._vectors[row, index] = vector
        self._reached[row, index] = True
        if self._stale:
            return
        others = np.flatnonzero(self._reached[:used, index])
        others = others[others != row]
        if not len(others):
            return
        earlier = self._reached[others, :index] & self._reached[row, :index]
        had = earlier.any(axis=1)
        old = (np.where(had, index - 1 - np.argmax(earlier[:, ::-1], axis=1), 0) if index
               else np.zeros(len(others), dtype=np.int64))
        mine_old = self._vectors[row, old]
        theirs_old = self._vectors[others, old]
        theirs_new = self._vectors[others, index]
        mine_new = np.broadcast_to(vector, theirs_new.shape)
        self._beaten[others] += (dominates(mine_new, theirs_new).astype(np.int64)
                                 - (had & dominates(mine_old, theirs_old)))
        self._beaten[row] += int(dominates(theirs_new, mine_new).sum()
                                 - (had & dominates(theirs_old, mine_old)).sum())

    def beaten(self) -> dict[int, int]:
        """Trial number -> how many recorded trials beat it at the latest epoch both were
        judged at (beaten_counts over the whole book)."""
        used = len(self._rows)
        if self._stale:
            self._beaten[:used] = beaten_counts(self._vectors[:used], self._reached[:used])
            self._stale = False
        return {number: int(self._beaten[row]) for number, row in self._rows.items()}

    def good_group(self, numbers: Sequence[int], violations: Sequence[float],
                   size: int) -> set[int]:
        """The `size` trial numbers first in the order of the module docstring, from the
        finished trials' `numbers` and constraint `violations` (Optuna's infeasibility
        score: the sum of positive constraint values); trials the book never saw come after
        those it did. O(n log n): the counts are kept up to date by record()."""
        if not len(numbers):
            return set()
        self.beaten()  # brings stale counts up to date
        numbers = np.asarray(numbers, dtype=np.int64)
        rows = np.array([self._rows.get(int(n), -1) for n in numbers])
        known = rows >= 0
        reached = np.zeros((len(numbers), len(self.epochs)), dtype=bool)
        reached[known] = self._reached[rows[known]]
        beaten = np.where(known, self._beaten[np.where(known, rows, 0)], 0)
        furthest = np.where(reached.any(axis=1), reached.shape[1] - np.argmax(
            reached[:, ::-1], axis=1), 0)
        order = np.lexsort((numbers, -furthest, beaten, ~reached.any(axis=1),
                            np.asarray(violations, dtype=float)))
        return {int(n) for n in numbers[order[:size]]}


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
