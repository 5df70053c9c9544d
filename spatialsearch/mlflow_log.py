"""MLflow logging of a search, from one writer (the driver); the only module importing mlflow.

One parent run per search, one child run per trial (nested through the mlflow.parentRunId
tag): params = the trial's flat config, per-epoch metrics, the best checkpoint as artifact,
tags = search name, trial id, hash of the YAML. Better than Ray's MLflowLoggerCallback on the
three counts that hurt us: metrics go in one log_batch per report instead of one call per
metric (~20 ms each on SQLite); runs nest under the search; and after a restore a trial finds
its existing run by tag instead of opening a duplicate stuck in RUNNING.

Nothing here blocks Tune's event loop: the store is opened (a new SQLite store is a copy of an
empty one, seed_sqlite_store), runs are created and everything is written by one background
thread, which starts while Ray and Tune start.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import shutil
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from ray import tune

from spatialsearch.errors import ConfigError

_logger = logging.getLogger(__name__)
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "spatialsearch.trial_id"
SEARCH_TAG = "spatialsearch.search"
HASH_TAG = "spatialsearch.yaml_sha256"
KIND_TAG = "spatialsearch.kind"
SQLITE_PREFIX = "sqlite:///"
MAX_BATCH = 900  # log_batch accepts at most 1000 metrics
DOWN_SECONDS = 30.0  # after a failed write, skip writes this long before trying again
#: Ray's own bookkeeping keys in every result: not training metrics.
RAY_KEYS = {"pid", "timestamp", "iterations_since_restore", "time_this_iter_s",
            "time_since_restore", "done", "training_iteration"}


def connect(tracking_uri: str, experiment: str,
            artifact_folder: Path | None = None) -> tuple[MlflowClient, str]:
    """Client and experiment id; a clear ConfigError when the store cannot be reached.

    artifact_folder: where a new experiment keeps its artifacts (for the default SQLite store:
    inside the search folder; MLflow's own default would be ./mlruns of the current folder).
    """
    if tracking_uri.startswith(SQLITE_PREFIX):
        seed_sqlite_store(Path(tracking_uri[len(SQLITE_PREFIX):]))
    client = MlflowClient(tracking_uri)
    location = artifact_folder.resolve().as_uri() if artifact_folder is not None else None
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=location)
    except (MlflowException, OSError, ConnectionError) as error:
        raise ConfigError(f"tracking_uri: cannot reach the MLflow store {tracking_uri!r}: "
                          f"{str(error).splitlines()[0][:300]}") from error
    return client, experiment_id


def seed_sqlite_store(path: Path) -> None:
    """Start a new SQLite store as a copy of an empty one; an existing store is left alone.

    MLflow builds a new SQLite store by running its schema migrations, ~1 s of CPU that
    competed with the trials' workers starting. The empty store is built once per machine
    and MLflow version, in ~/.cache/spatialsearch (or $XDG_CACHE_HOME), and copied after
    that. When the cache cannot be written, MLflow builds the store as usual.
    """
    if path.exists():
        return
    import mlflow

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spatialsearch"
    empty = cache / f"mlflow-{mlflow.__version__}-empty.db"
    try:
        if not empty.is_file():
            cache.mkdir(parents=True, exist_ok=True)
            building = empty.with_name(f"{empty.name}.{os.getpid()}.tmp")
            MlflowClient(f"{SQLITE_PREFIX}{building}").search_experiments()
            os.replace(building, empty)  # whole or absent, even with searches side by side
        path.parent.mkdir(parents=True, exist_ok=True)
        copied = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(empty, copied)
        os.replace(copied, path)
    except (OSError, MlflowException) as error:
        _logger.debug("no empty-store copy for %s (%s): MLflow builds it", path, error)


def parent_run(client: MlflowClient, experiment_id: str, name: str, yaml_hash: str,
               folder: Path) -> str:
    """The search's parent run id, reused when the search folder already recorded one."""
    record = folder / "mlflow_parent_run_id"
    if record.is_file():
        run_id = record.read_text().strip()
        try:
            client.update_run(run_id, status="RUNNING")
            return run_id
        except MlflowException:  # another store than the one the search began with
            _logger.info("parent run %s not in this store: a new one is created", run_id)
    run = client.create_run(experiment_id, run_name=name, tags={
        SEARCH_TAG: name, HASH_TAG: yaml_hash, KIND_TAG: "search"})
    record.write_text(run.info.run_id + "\n")
    return run.info.run_id


class Store(NamedTuple):
    """Where a search logs: tracking URI, experiment, artifact folder of a new experiment."""

    uri: str
    experiment: str
    artifacts: Path | None = None


class TrialInfo(NamedTuple):
    """What the writer needs of a Tune trial, copied in the callback (Tune's object mutates)."""

    trial_id: str
    name: str
    config: dict[str, Any]
    checkpoint: str | None = None  # its best.pt, at the end of the trial

    @classmethod
    def of(cls, trial: Any, finished: bool = False) -> "TrialInfo":
        best = None
        if finished and trial.checkpoint is not None:
            path = Path(trial.checkpoint.path, "best.pt")
            best = str(path) if path.is_file() else None
        return cls(trial.trial_id, str(trial), dict(trial.config), best)


class _Writer:
    """One background thread in the driver that performs every MLflow write in order.

    Its first job opens the store (MlflowTrialLogger._open). Callbacks only enqueue; the thread
    wakes every `interval` seconds, creates the runs it needs, merges the queued metrics of
    each run into log_batch calls and runs the other writes in their original order.
    """

    def __init__(self, logger: "MlflowTrialLogger", interval: float = 0.5) -> None:
        self.logger, self.interval = logger, interval
        self.items: queue.Queue = queue.Queue()
        self.closing = threading.Event()  # ends the batching wait at once
        self.thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self.thread.start()

    def metrics(self, trial: TrialInfo, step: int, metrics: list[Metric]) -> None:
        self.items.put(("metrics", trial, step, metrics))

    def call(self, function: Any, *args: Any) -> None:
        self.items.put(("call", function, args))

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        self.items.put(None)
        self.closing.set()
        self.thread.join()

    def _loop(self) -> None:
        self.logger._open()
        while True:
            batch = [self.items.get()]
            self.closing.wait(self.interval)
            while not self.items.empty():
                batch.append(self.items.get_nowait())
            pending: dict[str, list[Metric]] = {}
            stop = False
            for item in batch:
                if item is None:
                    stop = True
                elif item[0] == "metrics":
                    self._collect(pending, *item[1:])
                else:
                    self._flush(pending)
                    item[1](*item[2])
            self._flush(pending)
            if stop:
                return

    def _collect(self, pending: dict[str, list[Metric]], trial: TrialInfo, step: int,
                 metrics: list[Metric]) -> None:
        """Queue one epoch of a trial, unless its run already holds it (resumed trials
        re-report the epochs after their checkpoint, with identical values)."""
        run_id = self.logger.run_id(trial)
        if run_id is None:
            self.logger.unlogged.append(f"log epoch {step} of trial {trial.trial_id}")
            return
        if step <= self.logger.logged_steps.get(run_id, 0):
            return
        self.logger.logged_steps[run_id] = step
        pending.setdefault(run_id, []).extend(metrics)

    def _flush(self, pending: dict[str, list[Metric]]) -> None:
        for run_id, metrics in pending.items():
            for start in range(0, len(metrics), MAX_BATCH):
                self.logger.write(f"log metrics of run {run_id}", "log_batch", run_id,
                                  metrics=metrics[start:start + MAX_BATCH])
        pending.clear()


class RecordedTrial(NamedTuple):
    """A trial as its folder in Ray's experiment records it (for sync_results)."""

    trial_id: str
    config: dict[str, Any]
    checkpoint: Any  # object with .path, or None
    error_file: str | None
    name: str

    def __str__(self) -> str:
        return self.name


class _Folder(NamedTuple):
    path: str


def recorded_trials(experiment: Path) -> list[tuple[RecordedTrial, list[dict[str, Any]]]]:
    """Every trial folder of a Tune experiment: the trial and its reported results."""
    found = []
    for folder in sorted(p for p in experiment.iterdir() if (p / "params.json").is_file()):
        results = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()
                   if line.strip()] if (folder / "result.json").is_file() else []
        if not results:
            continue
        checkpoints = sorted(folder.glob("checkpoint_*"))
        errors = [p for p in (folder / "error.txt",) if p.is_file()]
        found.append((RecordedTrial(
            trial_id=str(results[0]["trial_id"]),
            config=json.loads((folder / "params.json").read_text()),
            checkpoint=_Folder(str(checkpoints[-1])) if checkpoints else None,
            error_file=str(errors[0]) if errors else None,
            name=f"train_trial_{results[0]['trial_id']}"),
            results))
    return found


def sync_results(logger: "MlflowTrialLogger", experiment: Path) -> int:
    """Log to MLflow whatever of a finished search's trials it lacks; returns trials synced.
    Idempotent: epochs a run already holds are skipped."""
    trials = recorded_trials(experiment)
    for trial, results in trials:
        for result in results:
            logger.on_trial_result(0, [], trial, result)
        if trial.error_file:
            logger.on_trial_error(0, [], trial)
        else:
            logger.on_trial_complete(0, [], trial)
    logger.close()
    return len(trials)


def _numeric(result: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in result.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class MlflowTrialLogger(tune.Callback):
    """Child run per trial under the search's parent run; see the module docstring.

    Args:
        store: where to log; opened by the writer thread.
        search_name, yaml_hash: tags of every run.
        folder: the search folder, which records the parent run's id (reused on --resume).
    After close(): client, parent_id (None if the store could not be opened), runs,
    unlogged (what could not be written, for the summary).
    """

    def __init__(self, store: Store, search_name: str, yaml_hash: str, folder: Path) -> None:
        self.store, self.folder = store, folder
        self.search_name, self.yaml_hash = search_name, yaml_hash
        self.client: MlflowClient | None = None
        self.experiment_id = self.parent_id = None
        self.runs: dict[str, str] = {}  # trial id -> run id
        self.logged_steps: dict[str, int] = {}  # run id -> last epoch it holds
        self.unlogged: list[str] = []  # what could not be logged (store down), for the summary
        self.down_until = 0.0  # monotonic time until which the store counts as down
        self.writer: _Writer | None = _Writer(self)

    def _open(self) -> None:
        """Connect, find or create the parent run and the children it already has."""
        try:
            self.client, self.experiment_id = connect(*self.store)
            self.parent_id = parent_run(self.client, self.experiment_id, self.search_name,
                                        self.yaml_hash, self.folder)
            self.runs = self._existing_children()
            self.logged_steps = {run_id: self._last_step(run_id) for run_id in self.runs.values()}
        except (ConfigError, MlflowException, OSError, ConnectionError) as error:
            _logger.warning("MLflow: could not open %s: %s", self.store.uri,
                            str(error).splitlines()[0][:200])
            self.client = None
            self.unlogged.append(f"open the MLflow store {self.store.uri}")

    def close(self) -> None:
        """Write everything still queued (call once the search has ended); later writes
        (write()) run at once."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks into its experiment state: leave the thread and client out."""
        return {k: v for k, v in self.__dict__.items() if k not in ("writer", "client")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """An unpickled copy stays idle: run_search hands a restored Tuner live callbacks."""
        self.__dict__.update(state, writer=None, client=None)

    def _existing_children(self) -> dict[str, str]:
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_id}'",
            max_results=5000)
        return {run.data.tags[TRIAL_TAG]: run.info.run_id for run in runs
                if TRIAL_TAG in run.data.tags}

    def _last_step(self, run_id: str) -> int:
        history = self.client.get_metric_history(run_id, "epoch")
        return max((metric.step for metric in history), default=0)

    def retire_orphans(self, known: set[str]) -> list[str]:
        """Delete (recoverably) the runs of trials Ray no longer knows: after a driver crash,
        trials created after Ray's last snapshot are replaced by new ones on --resume."""
        retired = []
        for trial_id, run_id in list(self.runs.items()):
            if trial_id not in known:
                self.write(f"retire the run of lost trial {trial_id}", "delete_run", run_id)
                retired.append(trial_id)
                del self.runs[trial_id]
        return retired

    def write(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """client.<method>(*args, **kwargs) in this thread; on failure remember it (the search
        must go on).

        A circuit breaker: after a failure the store counts as down for DOWN_SECONDS and calls
        are skipped (and remembered) at once, instead of each waiting out HTTP retries."""
        if self.client is None or time.monotonic() < self.down_until:
            self.unlogged.append(what)
            return None
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except (MlflowException, OSError, ConnectionError) as error:
            _logger.warning("MLflow: could not %s: %s", what, str(error).splitlines()[0][:200])
            self.unlogged.append(what)
            self.down_until = time.monotonic() + DOWN_SECONDS
            return None

    def run_id(self, trial: TrialInfo) -> str | None:
        """The trial's run, created (with its params) on first use. Writer thread only."""
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        run = self.write(f"create the run of trial {trial.trial_id}", "create_run",
                         self.experiment_id, run_name=trial.name, tags={
                             PARENT_TAG: self.parent_id, TRIAL_TAG: trial.trial_id,
                             SEARCH_TAG: self.search_name, HASH_TAG: self.yaml_hash,
                             KIND_TAG: "trial"})
        if run is None:
            return None
        self.runs[trial.trial_id] = run.info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in sorted(trial.config.items())
                  if not k.startswith("__")]
        self.write(f"log params of trial {trial.trial_id}", "log_batch", run.info.run_id,
                   params=params)
        return run.info.run_id

    def _started(self, trial: TrialInfo) -> None:
        """Create the trial's run (it starts RUNNING); a restored trial's existing run is
        marked RUNNING again. update_run costs ~12 ms of CPU: only where needed."""
        existed = trial.trial_id in self.runs
        run_id = self.run_id(trial)
        if existed and run_id is not None:
            self.write("mark a run running", "update_run", run_id, "RUNNING")

    def _finished(self, trial: TrialInfo, status: str, reason: str) -> None:
        run_id = self.run_id(trial)
        if run_id is None:
            self.unlogged.append(f"end the run of trial {trial.trial_id}")
            return
        if trial.checkpoint:
            self.write(f"log the checkpoint of trial {trial.trial_id}", "log_artifact", run_id,
                       trial.checkpoint, "checkpoint")
        if reason:
            self.write("tag a failure", "set_tag", run_id, "spatialsearch.failure",
                       reason[:5000])
        self.write("end a run", "set_terminated", run_id, status)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.writer is not None:
            self.writer.call(self._started, TrialInfo.of(trial))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if self.writer is None:
            return
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        stamp = int(time.time() * 1000)
        values = {k: v for k, v in _numeric(result).items() if k not in RAY_KEYS}
        metrics = [Metric(k, v, stamp, step) for k, v in sorted(values.items())]
        self.writer.metrics(TrialInfo.of(trial), step, metrics)

    def _finish(self, trial: Any, status: str, reason: str = "") -> None:
        if self.writer is not None:
            self.writer.call(self._finished, TrialInfo.of(trial, finished=True), status, reason)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        reason = ""
        if trial.error_file and Path(trial.error_file).is_file():
            lines = Path(trial.error_file).read_text().strip().splitlines()
            reason = lines[-1] if lines else ""
        self._finish(trial, "FAILED", reason or "trial failed")
