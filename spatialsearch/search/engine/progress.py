"""Progress of a running search: one log line per ended trial (TrialLines), and work
started once the search's tail leaves a core idle (OnTail)."""

from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable

from ray import tune

from spatialsearch import metrics as m

_logger = logging.getLogger(__name__)


def ended_with(trials: list) -> int:
    """Trials ended, counting the one whose on_trial_complete/error runs (Tune marks it after
    the callbacks)."""
    return sum(t.status in ("TERMINATED", "ERROR") for t in trials) + 1


class TrialLines(tune.Callback):
    """One log line per ended trial (logger spatialsearch.search.engine.progress, INFO): how many
    trials have ended, the trial's best metric, its epochs and seconds, and the best trial so
    far. Tune's own progress output is off: it printed ~45 lines per trial (1 line here).
    `also`: the other objectives of a multi-objective search, shown at their last epoch."""

    def __init__(self, metric: str, mode: str, total: int, also: list[str] = ()) -> None:
        self.metric, self.total, self.also = metric, total, list(also)
        self.sign = 1.0 if mode == "max" else -1.0  # sign * value: larger is better
        self.trial_best: dict[str, float] = {}
        self.last: dict[str, dict] = {}
        self.best: tuple[str, float] | None = None  # (trial id, value) over ended trials

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self.last[trial.trial_id] = result
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            old = self.trial_best.get(trial.trial_id)
            if old is None or self.sign * value > self.sign * old:
                self.trial_best[trial.trial_id] = float(value)

    def _ended(self, trials: list) -> str:
        return f"[{min(ended_with(trials), self.total)}/{self.total}]"

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = self.last.get(trial.trial_id, {})
        value = self.trial_best.get(trial.trial_id, float("nan"))
        if value == value and (self.best is None or self.sign * value > self.sign * self.best[1]):
            self.best = (trial.trial_id, value)
        best = f"; best {self.best[0]} {self.best[1]:.4f}" if self.best else ""
        others = "".join(f", {name} {result.get(name, float('nan')):.4f}" for name in self.also)
        if self.also:
            best = ""  # no single best among several objectives: the Pareto table at the end
        _logger.info("%s trial %s done: %s %.4f%s after %d epochs (%.1f s)%s",
                     self._ended(trials), trial.trial_id, self.metric, value, others,
                     result.get(m.EPOCH, 0), result.get("time_total_s", 0), best)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        _logger.info("%s trial %s failed (see its MLflow run's spatialsearch.failure tag)",
                     self._ended(trials), trial.trial_id)


class OnTail(tune.Callback):
    """Runs `actions`, in order, in a background thread once the search's tail has begun:
    when at most slots - 1 trials are left, a core stays idle. The runner warms the report's
    imports there (~1 s of CPU); started with the search, they took that CPU from the trials'
    workers starting up."""

    def __init__(self, num_samples: int, slots: int, actions: list[Callable[[], None]]) -> None:
        self.finished_from = max(num_samples - slots + 1, 1)
        self.actions = actions
        self.thread: threading.Thread | None = None

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.thread is None and ended_with(trials) >= self.finished_from:
            self.thread = threading.Thread(target=self._run, name="search-tail", daemon=True)
            self.thread.start()

    on_trial_error = on_trial_complete

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks into its experiment state: without the thread."""
        return {**self.__dict__, "thread": None}

    def wait(self) -> None:
        """Until the actions have run, if they were started."""
        if self.thread is not None:
            self.thread.join()

    def _run(self) -> None:
        for action in self.actions:
            action()
