"""What a search may spend and vary: trials after the grid's expansion, reseed runs, and the
training keys that set its budget and chance levels.

    epochs    every trial's length, the scheduler's max_t and what a full trial is: fixed only
    labels    C, the tasks and the chance level 1/C of accuracy: fixed only
    datasets  the tasks: searched only among choices of one task count T (segregation's
              chance level 1/T and the hypervolume's reference are then exact)
"""

from __future__ import annotations

from typing import Iterable, Sequence

from spatialsearch.config import DataConfig
from spatialsearch.errors import ConfigError

MAX_TRIALS = 100_000  # a search is refused beyond: its bookkeeping alone would not fit
MAX_RESEED = 100      # more seeds per front trial tell nothing a hundred do not
#: training keys a search cannot vary, and what they set
FIXED_ONLY = {"epochs": "every trial's length and the scheduler's max_t",
              "labels": "the tasks and the chance level of accuracy"}


def check_fixed_keys(searched: Iterable[str], labels: int,
                     dataset_choices: Sequence[tuple[str, ...]]) -> None:
    """The keys that set the budget or a chance level are held fixed.

    searched: the space's keys; labels: C; dataset_choices: every `datasets` value the space
    can take.

    Raises:
        ConfigError: space.<key> for a FIXED_ONLY key, or datasets choices of different task
            counts.
    """
    searched = set(searched)
    for key in sorted(FIXED_ONLY.keys() & searched):
        raise ConfigError(f"space.{key}: cannot be searched: it sets {FIXED_ONLY[key]}; give "
                          f"it under fixed, one search per value")
    if "datasets" in searched:
        tasks = {choice: DataConfig(datasets=choice, labels=labels).num_tasks
                 for choice in dataset_choices}
        if len(set(tasks.values())) > 1:
            shown = ", ".join(f"{list(choice)}: {count}" for choice, count in tasks.items())
            raise ConfigError(f"space.datasets: choices must make the same number of tasks "
                              f"(segregation's chance level 1/T comes from it), got {shown}")


def check_counts(num_samples: int, grid_size: int, reseed: int, multi_objective: bool) -> None:
    """Trials after the grid's expansion (num_samples x grid_size), and the reseed runs the
    front could ask for (every trial of a Pareto search can be on its front; one objective
    reseeds its best), are capped: each message gives the number that would have run."""
    total = num_samples * grid_size
    if total > MAX_TRIALS:
        raise ConfigError(f"num_samples: {num_samples:,} x {grid_size:,} grid "
                          f"combinations = {total:,} trials would run; at most "
                          f"{MAX_TRIALS:,}")
    front = total if multi_objective else 1
    runs = reseed * front
    if reseed > MAX_RESEED or runs > MAX_TRIALS:
        raise ConfigError(f"reseed: {reseed:,} seeds for each of up to {front:,} "
                          f"front trial(s) = {runs:,} runs would run; at most {MAX_RESEED} "
                          f"seeds and {MAX_TRIALS:,} runs")
