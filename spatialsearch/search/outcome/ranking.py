"""Which trial is best, in one place: (one objective) the ranking with its noise rule;
(several) the Pareto front of the full trials, its hypervolume and how it grew, the knee, the
order within and after the front; and which front members survive reseeding.

Only trials trained to their full epochs, and meeting the search's constraints, enter the
front: a trial stopped at epoch 5 is not comparable with one trained for 50. A trial's
objective values are those it reported at its last epoch, with the search's seed. The
hypervolume's reference point is objectives.Objective.reference_value (the user's, else the
chance level of a maximised metric, else the worst value of the full feasible trials moved a
tenth of their range further: MARGIN; a tenth of |worst|, or 1, when all are equal), so that
every front member adds volume. Stopped and infeasible trials never move it.

With reseeding (K further seeds per front member) the answer is decided again on the
members' seed means (on_seed_means): the front is the members whose mean vector is
non-dominated among the members' means, a member with a NaN objective in any seed is invalid
and leaves it, and the hypervolume and the knee are those of the surviving means. The
ParetoFront says which values it used (`basis`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from spatialsearch import metrics as m
from spatialsearch.pareto import hypervolume, oriented, pareto_indices, rank_order
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.run_context import RunContext
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.space.objectives import Objective


@dataclass(frozen=True)
class TrialOutcome:
    """What the front needs of one trial."""

    trial_id: str
    full: bool                      # trained to its full epochs, without error
    values: tuple[float, ...]       # each objective at its last epoch
    ended_at: float                 # unix time of its last result
    feasible: bool = True           # meets every constraint of the search


#: ParetoFront.basis: the values at the last epoch of the search's own seed
SINGLE_SEED = "last epoch, search seed"


def seed_means(seeds: int) -> str:
    """ParetoFront.basis of a front decided on the mean of `seeds` seeds."""
    return f"mean of {seeds} seeds, last epoch"


@dataclass(frozen=True)
class ParetoFront:
    objectives: tuple[Objective, ...]
    reference: tuple[float, ...]    # raw values (not oriented)
    members: tuple[str, ...]        # trial ids on the front, by the first objective, best first
    hypervolume: float
    history: tuple[tuple[int, float, float], ...]  # (full trials so far, seconds, hypervolume)
    knee: str | None = None         # the recommended member (knee_index)
    infeasible: tuple[str, ...] = ()  # full trials left out for failing a constraint
    basis: str = SINGLE_SEED        # which values decided members, hypervolume and knee
    candidates: tuple[str, ...] = ()  # reseeded: the single-seed front that was reseeded
    single_seed_hypervolume: float | None = None  # reseeded: the candidates' own hypervolume


def knee_index(points: np.ndarray, reference: np.ndarray) -> int | None:
    """The front member closest to the ideal point: each objective scaled to
    z = (p - reference) / (best - reference), best the front's best (z = 1 where the front
    has no spread above the reference), then the smallest ||1 - z||_2; ties to the first.
    points (n, k) oriented front members, reference (k,) oriented -> row index, None if n=0."""
    if len(points) == 0:
        return None
    span = points.max(axis=0) - reference
    scaled = np.divide(points - reference, span, out=np.ones_like(points), where=span > 0)
    return int(np.argmin(np.linalg.norm(1.0 - scaled, axis=1)))


#: how far past the worst value the reference of a metric without a chance level lies, as a
#: share of the values' range
MARGIN = 0.1


def beyond_worst(values: Sequence[float], mode: str) -> float:
    """The reference of a metric without a chance level: the worst finite value, moved
    MARGIN x (best - worst) further in the worse direction (MARGIN x |worst|, or MARGIN when
    worst is 0, if all values are equal; 0 when there is none)."""
    seen = [v for v in values if np.isfinite(v)]
    if not seen:
        return 0.0
    worst, best = (min(seen), max(seen)) if mode == "max" else (max(seen), min(seen))
    step = MARGIN * (abs(best - worst) or abs(worst) or 1.0)
    return worst - step if mode == "max" else worst + step


def reference_point(objectives: Sequence[Objective], outcomes: Sequence[TrialOutcome],
                    labels: int, num_tasks: int) -> tuple[float, ...]:
    """Per objective: its own reference, else its chance level when maximised, else
    beyond_worst of the values of the full feasible trials (a trial stopped at its first
    rung, or one that breaks a constraint, never moves it)."""
    judged = [o for o in outcomes if o.full and o.feasible]
    return tuple(objective.reference_value(
        labels, num_tasks, beyond_worst([o.values[index] for o in judged], objective.mode))
        for index, objective in enumerate(objectives))


def pareto_front(objectives: Sequence[Objective], outcomes: Sequence[TrialOutcome], *,
                 labels: int, num_tasks: int, started_at: float) -> ParetoFront:
    """The front of the full feasible trials, its hypervolume, and the hypervolume after each
    such trial ended (in the order they ended; seconds counted from started_at)."""
    modes = [o.mode for o in objectives]
    reference = reference_point(objectives, outcomes, labels, num_tasks)
    full = sorted((o for o in outcomes if o.full and o.feasible), key=lambda o: o.ended_at)
    ref = oriented(np.array([reference]), modes)[0]
    points = oriented(np.array([o.values for o in full]).reshape(len(full), len(modes)), modes)
    history = tuple((i + 1, full[i].ended_at - started_at, hypervolume(points[: i + 1], ref))
                    for i in range(len(full)))
    members = sorted(pareto_indices(points), key=lambda i: -points[i, 0])
    knee = knee_index(points[members], ref)
    return ParetoFront(tuple(objectives), reference, tuple(full[i].trial_id for i in members),
                       history[-1][2] if history else 0.0, history,
                       None if knee is None else full[members[knee]].trial_id,
                       tuple(o.trial_id for o in outcomes if o.full and not o.feasible))


@dataclass(frozen=True)
class Candidate:
    """A trial as the single-objective ranking sees it: its best metric and, at that epoch,
    the validation loss and the accuracy's standard error."""

    trial_id: str
    best: float
    val_loss: float
    accuracy_se: float


def rank_single(metric: str, mode: str, candidates: Sequence[Candidate]) -> list[str]:
    """Trial ids, best first. For val_accuracy no trial wins by noise: the trials within the
    larger of the two standard errors of the top value (on the side `mode` calls worse) tie
    with it, and the tie goes to the lowest validation loss; the others follow by accuracy.
    A NaN standard error counts as 0 (no noise known: only the other's widens the tie).
    A NaN metric ranks last. Other metrics: plain order."""
    sign = 1.0 if mode == "max" else -1.0
    order = sorted(candidates, key=lambda c: (np.isnan(c.best), -sign * c.best, c.val_loss))
    if metric != m.VAL_ACCURACY or not order:
        return [c.trial_id for c in order]
    top = order[0]
    noise = lambda c: max(np.nan_to_num(top.accuracy_se), np.nan_to_num(c.accuracy_se))  # noqa
    tied = [c for c in order if sign * (top.best - c.best) <= noise(c)]
    tied.sort(key=lambda c: (c.val_loss, -c.best))
    return [c.trial_id for c in tied] + [c.trial_id for c in order if c not in tied]


def outcomes(rows: Sequence[TrialRow], config: SearchConfig) -> list[TrialOutcome]:
    """The trials as the front sees them: full = trained to config.epochs without error."""
    return [TrialOutcome(r.trial_id, r.status != "ERROR" and r.epochs == config.epochs,
                         r.objectives, r.ended_at, r.feasible) for r in rows]


def rank(config: SearchConfig, rows: Sequence[TrialRow],
         front: ParetoFront | None = None) -> list[TrialRow]:
    """Finished trials, best first: one objective by rank_single (noise-aware ties on
    val_accuracy); several by multi-objective rank (pareto.rank_order: front by front,
    crowding within a front) of the full trials, then the trials stopped early by their first
    objective. With constraints, the feasible trials come first, each group ranked so.
    Given the search's answer (several objectives), its knee comes first, then the rest of its
    members: "best" is the recommended trial, decided on the values the front used."""
    finished = [r for r in rows if r.status != "ERROR" and r.best_metric == r.best_metric]
    if config.constraints:
        order = (_rank(config, [r for r in finished if r.feasible])
                 + _rank(config, [r for r in finished if not r.feasible]))
    else:
        order = _rank(config, finished)
    if front is None or not config.multi_objective:
        return order
    by_id = {r.trial_id: r for r in order}
    first = [t for t in (front.knee, *front.members) if t is not None and t in by_id]
    leading = [by_id[t] for t in dict.fromkeys(first)]
    return leading + [r for r in order if r not in leading]


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


@dataclass(frozen=True)
class Spread:
    """One front trial over its K + 1 seeds (reseed.py trains the K)."""

    trial_id: str
    seeds: tuple[int, ...]               # the search's seed first
    values: tuple[tuple[float, ...], ...]  # per seed, each objective at the last epoch
    survives: bool = True

    @property
    def invalid_seeds(self) -> tuple[int, ...]:
        """The seeds whose objective vector holds a NaN or an infinite value."""
        return tuple(seed for seed, row in zip(self.seeds, self.values)
                     if not np.all(np.isfinite(row)))

    @property
    def mean(self) -> tuple[float, ...]:
        """Mean over seeds; NaN in an objective when any seed is invalid there (never
        averaged away: the member is then invalid)."""
        return tuple(float(v) for v in np.mean(np.array(self.values, dtype=float), axis=0))

    @property
    def std(self) -> tuple[float, ...]:
        """Sample standard deviation (ddof 1); 0 for a single run."""
        values = np.array(self.values, dtype=float)
        if len(values) < 2:
            return tuple(0.0 for _ in values[0])
        return tuple(float(v) for v in np.std(values, axis=0, ddof=1))


def survivors(objectives: Sequence[Objective], spreads: Sequence[Spread]) -> list[Spread]:
    """The spreads, each marked `survives` when its mean vector is valid and non-dominated
    among the members' means: a front that does not survive reseeding is noise."""
    means = oriented(np.array([s.mean for s in spreads]).reshape(len(spreads), -1),
                     [o.mode for o in objectives])
    kept = set(pareto_indices(means))
    return [Spread(s.trial_id, s.seeds, s.values, i in kept) for i, s in enumerate(spreads)]


def on_seed_means(front: ParetoFront, spreads: Sequence[Spread]) -> ParetoFront:
    """The front decided again on the reseeded members' means (spreads from survivors()):
    members = the survivors, by the first objective's mean, best first; hypervolume and knee
    of their means under the same reference point. The single-seed front stays in
    `candidates` with its hypervolume. Unchanged without spreads."""
    if not spreads:
        return front
    modes = [o.mode for o in front.objectives]
    by_id = {s.trial_id: s for s in spreads}
    kept = [by_id[t] for t in front.members if t in by_id and by_id[t].survives]
    points = oriented(np.array([s.mean for s in kept]).reshape(len(kept), len(modes)), modes)
    order = sorted(range(len(kept)), key=lambda i: -points[i, 0])
    reference = oriented(np.array([front.reference]), modes)[0]
    knee = knee_index(points[order], reference)
    return dataclasses.replace(
        front, members=tuple(kept[i].trial_id for i in order),
        hypervolume=hypervolume(points, reference),
        knee=None if knee is None else kept[order[knee]].trial_id,
        basis=seed_means(max(len(s.seeds) for s in spreads)), candidates=front.members,
        single_seed_hypervolume=front.hypervolume)


def answer(context: RunContext, rows: Sequence[TrialRow]
           ) -> tuple[ParetoFront | None, list[TrialRow]]:
    """The search's answer: (several objectives) the Pareto front of the full feasible trials,
    with its members; (one objective) no front and the best ranked trial. The members are
    what reseeding trains again. The hypervolume history counts from context.started."""
    config, by_id = context.config, {r.trial_id: r for r in rows}
    if not config.multi_objective:
        return None, rank(config, rows)[:1]
    data = config.base_config.data
    front = pareto_front(config.objectives, outcomes(rows, config), labels=data.labels,
                         num_tasks=data.num_tasks, started_at=context.started)
    return front, [by_id[t] for t in front.members]
