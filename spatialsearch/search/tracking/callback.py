"""The Tune callback that feeds a search's MLflow core (tracking.SearchTracking).

Nothing here blocks Tune's event loop: callbacks copy what they need of a trial and queue it;
one background thread of the driver opens the store (while Ray and Tune start), creates the
runs and performs every write in order, merging the queued epochs of each trial into one
log_epochs call per wake-up.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Callable

from ray import tune

from spatialsearch.search.places.place import Place
from spatialsearch.search.places.ray_folder import BEST_FILE, RecordedTrial
from spatialsearch.search.tracking.runs import SearchTracking, TrialRun, epoch_metrics


def trial_run(trial: Any, finished: bool = False) -> TrialRun:
    """A Tune trial as the core sees it (copied now: Tune's object mutates)."""
    best = None
    if finished and trial.checkpoint is not None:  # checked and fetched by the writer thread
        saved = trial.checkpoint
        best = Place(saved.filesystem, saved.path).child(BEST_FILE)
    return TrialRun(trial.trial_id, dict(trial.config), best)


class MlflowCallback(tune.Callback):
    """Tune events -> the core, through one writer thread; close() when the search ends.

    Args:
        tracking: the search's core, opened by the writer thread.
        interval: seconds the thread waits to batch what Tune reports.
    """

    def __init__(self, tracking: SearchTracking, interval: float = 0.5) -> None:
        self.tracking, self.interval = tracking, interval
        self.items: queue.Queue = queue.Queue()
        self.closing = threading.Event()  # ends the batching wait at once
        self.thread: threading.Thread | None = threading.Thread(
            target=self._loop, name="mlflow-writer", daemon=True)
        self.thread.start()

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks into its experiment state: the core's state, no thread."""
        state = dict(self.__dict__, thread=None, items=None, closing=None)
        state["tracking"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """An unpickled copy stays idle: run_search hands a restored Tuner live callbacks."""
        self.__dict__.update(state)

    def _put(self, item: tuple) -> None:
        if self.thread is not None:
            self.items.put(item)

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        if self.thread is not None:
            self.items.put(None)
            self.closing.set()
            self.thread.join()
            self.thread = None

    def _loop(self) -> None:
        self.tracking.open()
        while True:
            batch = [self.items.get()]
            self.closing.wait(self.interval)
            while not self.items.empty():
                batch.append(self.items.get_nowait())
            epochs: dict[str, tuple[TrialRun, list]] = {}
            for item in batch:
                if item is None:
                    self._flush(epochs)
                    return
                if item[0] == "epoch":
                    epochs.setdefault(item[1].trial_id, (item[1], []))[1].append(item[2])
                else:  # keep the order: a trial's epochs before its end
                    self._flush(epochs)
                    item[1]()
            self._flush(epochs)

    def _flush(self, epochs: dict[str, tuple[TrialRun, list]]) -> None:
        for trial, reported in epochs.values():
            self.tracking.log_epochs(trial, reported)
        epochs.clear()

    def replay(self, trials: list[RecordedTrial]) -> None:
        """A resumed search: queue every epoch its restored experiment recorded, before the
        trials report again. A restored trial re-reports only the epochs after its last
        checkpoint; epochs before it that the dead driver had not yet written to MLflow come
        from here (log_epochs skips what a run already holds)."""
        for trial in trials:
            run = TrialRun(trial.trial_id, trial.config)
            for result in trial.results:
                self._put(("epoch", run, epoch_metrics(result)))

    def _call(self, action: Callable[[], None]) -> None:
        self._put(("call", action))

    def after_open(self, action: Callable[[], None]) -> None:
        """Run action in the writer thread once the store is open (the parent run known)."""
        self._call(action)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run = trial_run(trial)
        self._call(lambda: self.tracking.start_trial(run))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        self._put(("epoch", trial_run(trial), epoch_metrics(result)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run = trial_run(trial, finished=True)
        self._call(lambda: self.tracking.finish_trial(run, "FINISHED"))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run, reason = trial_run(trial, finished=True), ""
        if trial.error_file and Path(trial.error_file).is_file():
            lines = Path(trial.error_file).read_text().strip().splitlines()
            reason = lines[-1] if lines else ""
        self._call(lambda: self.tracking.finish_trial(run, "FAILED", reason or "trial failed"))
