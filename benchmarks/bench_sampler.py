"""The sampler's cost per suggestion and MO-ASHA's per decision as a search grows: before
(rung-matched counts over all pairs at every suggestion; a decision ranking every vector of
its rung) and after (counts kept incrementally; a decision ranking the last 1,000), against
Optuna's own TPESampler, in one run.

A synthetic study of n finished trials, two objectives, MO-ASHA's shape: 3 in 4 trials
PRUNED at a rung (epochs 5, 10, 20, 40 of 50), values drawn at random and improving with
epochs. Between two suggestions one more trial finishes (so no cached group is reused), as
in a search. Reported per suggestion: median milliseconds of study.ask() over `repeats`, and
the peak memory the suggestion adds (tracemalloc).

Usage:
    python benchmarks/bench_sampler.py                    # 1,000 / 4,000 / 10,000 trials
    python benchmarks/bench_sampler.py --trials 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch.search.engine.rung_tpe import (  # noqa: E402
    RungBook,
    RungMatchedTPESampler,
    beaten_counts,
)

EPOCHS = (5, 10, 20, 40, 50)
SPACE = {"lr": FloatDistribution(1e-3, 1e-1, log=True), "transport": FloatDistribution(0.1, 100)}


class AllPairsBook(RungBook):
    """The book before: every count recomputed over all pairs at each query."""

    def beaten(self) -> dict[int, int]:
        used = len(self._rows)
        self._beaten[:used] = beaten_counts(self._vectors[:used], self._reached[:used])
        return {number: int(self._beaten[row]) for number, row in self._rows.items()}

    def record(self, number: int, epoch: int, values) -> None:
        self._stale = True  # skip the incremental update: beaten() recomputes
        super().record(number, epoch, values)


def _add(study: optuna.Study, book: RungBook | None, number: int,
         rng: np.random.Generator) -> None:
    pruned = rng.random() < 0.75
    reach = rng.integers(1, 5) if pruned else len(EPOCHS)
    quality = rng.random(2)
    for index in range(reach):
        values = tuple(quality * (0.5 + 0.1 * index) + rng.normal(0, 0.02, 2))
        if book is not None:
            book.record(number, EPOCHS[index], values)
    params = {"lr": float(10 ** rng.uniform(-3, -1)), "transport": float(rng.uniform(0.1, 100))}
    study.add_trial(create_trial(
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        values=None if pruned else list(values), params=params, distributions=SPACE))


def per_suggestion(kind: str, trials: int, repeats: int) -> tuple[float, float]:
    """(median ms per suggestion, peak MiB it adds) for a study of `trials` finished."""
    rng = np.random.default_rng(0)
    book = {"all pairs": AllPairsBook, "incremental": RungBook}.get(kind)
    book = book(("max", "max"), EPOCHS) if book else None
    sampler = (RungMatchedTPESampler(book, seed=0) if book is not None
               else optuna.samplers.TPESampler(seed=0))
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=sampler)
    for number in range(trials):
        _add(study, book, number, rng)
    times, peaks = [], []
    for repeat in range(repeats):
        _add(study, book, trials + 2 * repeat, rng)  # one more finished: no cached group
        tracemalloc.start()
        started = time.perf_counter()
        trial = study.ask(SPACE)
        times.append(time.perf_counter() - started)
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
        study.tell(trial, state=TrialState.PRUNED)
        if book is not None:
            book.record(trial.number, EPOCHS[0], tuple(rng.random(2)))
    return 1000 * float(np.median(times)), float(np.max(peaks))


def per_decision(trials: int, window: int, repeats: int) -> float:
    """Median ms of MultiObjectiveASHA.decide for a newcomer at a rung already holding
    `trials` vectors (two objectives, random)."""
    from spatialsearch.search.engine.moasha import MultiObjectiveASHA

    rng = np.random.default_rng(0)
    scheduler = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=50, grace_period=5,
                                   reduction_factor=4, window=window)
    rung = scheduler.rungs[5]
    for index, (a, b) in enumerate(rng.random((trials, 2))):
        rung[f"t{index}"] = (float(a), float(b))
    times = []
    for repeat in range(repeats):
        a, b = rng.random(2)
        started = time.perf_counter()
        scheduler.decide(f"new{repeat}", {"epoch": 5, "a": float(a), "b": float(b)})
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 4000, 10000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for trials in args.trials:
        for kind in ("all pairs", "incremental", "Optuna's TPESampler"):
            if kind == "all pairs" and trials > 4000:
                rows.append([f"{trials:,}", kind, "not run (> 4,000: minutes and GiB)", ""])
                continue
            ms, mib = per_suggestion(kind, trials, args.repeats)
            record("sampler", trials=trials, kind=kind, ms=ms, peak_mib=mib)
            rows.append([f"{trials:,}", kind, f"{ms:.1f}", f"{mib:.1f}"])
    print(table(rows, ["finished trials", "sampler", "ms per suggestion", "peak MiB added"]))
    decisions = []
    for trials in args.trials:
        for label, window in (("all vectors (before)", trials + args.repeats),
                              ("window 1,000 (after)", 1000)):
            ms = per_decision(trials, window, args.repeats)
            record("decision", trials=trials, kind=label, ms=ms)
            decisions.append([f"{trials:,}", label, f"{ms:.2f}"])
    print(table(decisions, ["vectors at the rung", "MO-ASHA decision", "ms per decision"]))


if __name__ == "__main__":
    main()
