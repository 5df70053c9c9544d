"""Rung-matched dominance (search/engine/rung_tpe.py): TPE's good group chosen from every finished
trial, each pair compared at the latest epoch both were judged at."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.samplers._tpe.sampler import _split_trials
from optuna.trial import TrialState, create_trial

from spatialsearch.pareto import oriented
from spatialsearch.search.engine.rung_tpe import RungBook, RungMatchedTPESampler, beaten_counts

EPOCHS = (2, 4, 8)
#: t0 and t1 complete (t0 an early first arrival), t2 stopped at 2 while better than both
#: there, t3 stopped at 4, t4 stopped at 2 without a segregation (NaN)
HISTORY = {
    0: {2: (0.50, 0.50), 4: (0.60, 0.60), 8: (0.70, 0.70)},
    1: {2: (0.60, 0.60), 4: (0.70, 0.70), 8: (0.90, 0.90)},
    2: {2: (0.80, 0.80)},
    3: {2: (0.55, 0.55), 4: (0.65, 0.50)},
    4: {2: (0.95, math.nan)},
}
COMPLETE = {0, 1}


def _book() -> RungBook:
    book = RungBook(("max", "max"), EPOCHS)
    for number, judged in HISTORY.items():
        for epoch, values in judged.items():
            book.record(number, epoch, values)
    return book


def _study(sampler: optuna.samplers.BaseSampler, violations: dict[int, float] | None = None
           ) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    for number, judged in HISTORY.items():
        last = judged[max(judged)]
        complete = number in COMPLETE
        system_attrs = ({"constraints": [violations[number]]}
                        if violations and number in violations else {})
        study.add_trial(create_trial(
            state=TrialState.COMPLETE if complete else TrialState.PRUNED,
            values=list(last) if complete else None, params={"x": number / 10},
            distributions={"x": FloatDistribution(0.0, 1.0)}, system_attrs=system_attrs))
    return study


def test_each_pair_is_compared_at_the_latest_epoch_both_were_judged_at():
    book = _book()
    numbers = sorted(HISTORY)
    vectors = np.full((5, 3, 2), -np.inf)
    reached = np.zeros((5, 3), dtype=bool)
    for row in numbers:
        for column, epoch in enumerate(EPOCHS):
            if epoch in book.values[row]:
                values = np.array(book.values[row][epoch])
                vectors[row, column] = values if np.all(np.isfinite(values)) else -np.inf
                reached[row, column] = True
    # t0 is beaten by t1 (at 8) and t2 (at 2); t1 by t2 (at 2); t3 by t1 (at 4) and t2 (at
    # 2); t0 and t3 are not comparable at 4; t4 (NaN) is beaten by every valid trial at 2
    assert beaten_counts(vectors, reached).tolist() == [2, 1, 0, 2, 4]


def test_a_pair_without_a_common_epoch_is_not_compared():
    vectors = np.array([[[0.9, 0.9], [-np.inf, -np.inf]], [[-np.inf, -np.inf], [0.1, 0.1]]])
    reached = np.array([[True, False], [False, True]])
    assert beaten_counts(vectors, reached).tolist() == [0, 0]


def test_the_good_group_takes_a_stopped_trial_that_beat_complete_ones_at_its_rung():
    study = _study(optuna.samplers.RandomSampler())
    trials = study.get_trials(deepcopy=False)
    book, feasible = _book(), [0.0] * 5
    assert book.good_group(range(5), feasible, 1) == {2}
    assert book.good_group(range(5), feasible, 2) == {1, 2}
    # t0 and t3 are both beaten twice: t0 went further, so it comes first
    assert book.good_group(range(5), feasible, 3) == {0, 1, 2}
    # Optuna's own split fills the group with the complete trials first
    below, _ = _split_trials(study, trials, 2)
    assert {t.number for t in below} == {0, 1}


def test_constraint_violators_and_unrecorded_trials_come_last():
    sampler = RungMatchedTPESampler(_book())
    study = _study(sampler, violations={2: 0.3, 1: -0.1})
    assert sampler.good_numbers(study) == {1}  # t2 violates a constraint; ceil(0.1 * 5) = 1
    assert _book().good_group(range(5), [0, 0, 0.3, 0, 0], 2) == {0, 1}
    book = RungBook(("max", "max"), EPOCHS)
    for number, judged in HISTORY.items():
        for epoch, values in judged.items():
            if number != 1:  # t1 never reached the book
                book.record(number, epoch, values)
    assert book.good_group([0, 1], [0, 0], 1) == {0}


def test_without_a_stopped_trial_among_the_first_the_good_group_is_optunas():
    """Four complete trials on one front (and a dominated one): Optuna picks t1 by
    hypervolume subset selection, where a count alone would tie t0-t3. A stopped trial worse
    than all at its rung changes nothing."""
    def make(stopped_at_rung):
        book = RungBook(("max", "max"), EPOCHS)
        sampler = RungMatchedTPESampler(book)
        study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
        finals = [(0.30, 0.90), (0.60, 0.60), (0.90, 0.30), (0.62, 0.58), (0.20, 0.20)]
        for number, final in enumerate(finals):
            book.record(number, 2, (0.5, 0.5))
            book.record(number, 8, final)
            study.add_trial(create_trial(state=TrialState.COMPLETE, values=list(final),
                                         params={"x": number / 10},
                                         distributions={"x": FloatDistribution(0.0, 1.0)}))
        book.record(5, 2, stopped_at_rung)
        study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 0.5},
                                     distributions={"x": FloatDistribution(0.0, 1.0)}))
        return book, sampler, study

    book, sampler, study = make((0.1, 0.1))
    trials = study.get_trials(deepcopy=False)
    assert sampler.good_numbers(study) == {1}  # ceil(0.1 * 6) = 1
    assert sampler.good_numbers(study) == {t.number for t in _split_trials(study, trials, 1)[0]}
    assert book.good_group(range(6), [0.0] * 6, 1) == {0}  # the count alone: first by number
    # a stopped trial better than all of them at epoch 2 takes the place
    book, sampler, study = make((0.9, 0.9))
    assert sampler.good_numbers(study) == {5}


def test_only_judged_epochs_are_recorded_and_the_first_report_counts():
    book = RungBook(("max", "min"), EPOCHS)
    book.record(7, 3, (0.1, 0.2))
    book.record(7, 4, (0.5, 0.6))
    book.record(7, 4, (0.9, 0.1))
    assert book.values == {7: {4: (0.5, 0.6)}}


def _observed(sampler_class: type, *args, **kwargs) -> list[tuple[bool, list[float]]]:
    """The x values each of TPE's two Parzen estimators was built on, for one suggestion."""
    built: list[tuple[bool, list[float]]] = []

    class Spy(sampler_class):  # test-side: records what Optuna's TPE built
        def _build_parzen_estimator(self, study, search_space, trials, handle_below):
            estimator = super()._build_parzen_estimator(study, search_space, trials,
                                                        handle_below)
            kernels = estimator._mixture_distribution.distributions[0].mu[:-1]  # last: prior
            built.append((handle_below, sorted(np.round(kernels, 6).tolist())))
            return estimator

    study = _study(Spy(*args, n_startup_trials=2, seed=0, **kwargs))
    study.ask().suggest_float("x", 0.0, 1.0)
    return built


def test_optuna_builds_its_estimators_on_the_rung_matched_groups():
    """TPESampler._sample builds its good-group estimator, then the other, through
    _build_parzen_estimator: with the rung-matched sampler the good group (ceil(0.1 * 5) = 1
    trial) is t2, x = 0.2; Optuna's own TPE takes the best complete trial, t1 (x = 0.1). This
    fails if Optuna stops building its estimators there."""
    assert _observed(RungMatchedTPESampler, _book()) == [
        (True, [0.2]), (False, [0.0, 0.1, 0.3, 0.4])]
    assert _observed(optuna.samplers.TPESampler) == [
        (True, [0.1]), (False, [0.0, 0.2, 0.3, 0.4])]


def test_a_sampler_with_an_empty_book_is_optunas_tpe():
    """Until a trial reaches a judged epoch, the split is Optuna's own: same suggestions."""
    plain, ours = (optuna.samplers.TPESampler(n_startup_trials=2, seed=3),
                   RungMatchedTPESampler(RungBook(("max", "max"), EPOCHS),
                                         n_startup_trials=2, seed=3))
    suggested = []
    for sampler in (plain, ours):
        study = _study(sampler)
        trial = study.ask()
        suggested.append(trial.suggest_float("x", 0.0, 1.0))
    assert suggested[0] == pytest.approx(suggested[1])


@pytest.mark.parametrize("seed", range(6))
def test_incremental_counts_equal_the_all_pairs_computation_on_random_histories(seed):
    """Trials arrive interleaved, each recording a prefix of the judged epochs (MO-ASHA's
    rungs, then the full length), some values NaN or tied; after every record the book's
    counts equal beaten_counts over all pairs. A record out of epoch order is recomputed."""
    rng = np.random.default_rng(seed)
    epochs, objectives, trials = (2, 4, 8, 16), 1 + seed % 3, 40
    book = RungBook(tuple(rng.choice(["max", "min"], objectives)), epochs)
    reach = rng.integers(1, len(epochs) + 1, trials)
    queue = [(t, e) for t in range(trials) for e in range(reach[t])]
    order = sorted(range(len(queue)), key=lambda i: (queue[i][1] + rng.random() * 3))
    for step, index in enumerate(order):
        trial, column = queue[index]
        values = rng.integers(0, 4, objectives).astype(float)  # ties on purpose
        if rng.random() < 0.05:
            values[0] = np.nan
        book.record(trial, epochs[column], tuple(values))
        if step % 7 == 0 or step == len(order) - 1:
            numbers = sorted(book.values)
            vectors = np.full((len(numbers), len(epochs), objectives), -np.inf)
            reached = np.zeros((len(numbers), len(epochs)), dtype=bool)
            for row, number in enumerate(numbers):
                for col, epoch in enumerate(epochs):
                    if epoch in book.values[number]:
                        raw = np.array([book.values[number][epoch]])
                        vectors[row, col] = oriented(raw, book.modes)[0]
                        reached[row, col] = True
            expected = beaten_counts(vectors, reached).tolist()
            assert [book.beaten()[n] for n in numbers] == expected
