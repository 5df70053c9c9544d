"""MLflow logging of a search: the typed core; the only module that calls MLflow's client.

One parent run per search, one child run per trial (nested through the mlflow.parentRunId
tag): params = the trial's config, per-epoch metrics, the best checkpoint as artifact, tags
= search name, trial id, hash of the YAML. Compared with Ray's MLflowLoggerCallback: metrics go
in one log_batch per call instead of one call per metric (~20 ms each on SQLite); runs nest
under the search; and after a restore a trial finds its existing run by tag instead of opening
a duplicate stuck in RUNNING.

Every write is guarded: a failing store is remembered in `unlogged` (for summary.json and
`sync-mlflow`), never raised, and after a failure the store counts as down for DOWN_SECONDS
(writes are skipped at once instead of each waiting out HTTP retries). The Tune callback
(tracking_callback) and `sync-mlflow` (runner.sync_search) both call this core.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence, TypeVar

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from spatialsearch import metrics as m
from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked
from spatialsearch.search.places.driver_record import PARENT_RECORD
from spatialsearch.search.places.place import Place, local_copy
from spatialsearch.search.tracking.store import Store, connect
from spatialsearch.search.tracking.view import VIEW_TAG_PREFIX

_logger = logging.getLogger(__name__)
PARENT_TAG = "mlflow.parentRunId"
TRIAL_TAG = "spatialsearch.trial_id"
SEARCH_TAG = "spatialsearch.search"
HASH_TAG = "spatialsearch.yaml_sha256"
KIND_TAG = "spatialsearch.kind"
FAILURE_TAG = "spatialsearch.failure"
MAX_BATCH = 900  # log_batch accepts at most 1000 metrics
DOWN_SECONDS = 30.0  # after a failed write, skip writes this long before trying again
#: Ray's own bookkeeping keys in every result: not training metrics.
RAY_KEYS = {"pid", "timestamp", "iterations_since_restore", "time_this_iter_s",
            "time_since_restore", "done", "training_iteration"}
T = TypeVar("T")


class TrialRun(NamedTuple):
    """What the core needs of a trial: its id, its config (params) and, once it has ended,
    its best checkpoint (best.pt, in the search's storage) to log as an artifact."""

    trial_id: str
    config: dict[str, Any]
    checkpoint: Place | None = None


def epoch_metrics(result: dict[str, Any]) -> tuple[int, dict[str, float]]:
    """(epoch, the finite numeric training metrics) of one reported result."""
    step = int(result.get(m.EPOCH, result.get("training_iteration", 0)))
    values = {k: float(v) for k, v in result.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
              and k not in RAY_KEYS}
    return step, values


class SearchTracking:
    """A search's runs in one MLflow store. open() first (from any thread); then every call
    from that same thread: MlflowClient is not shared across threads here.

    After open(): parent_id (None if the store could not be opened), runs (trial id -> run
    id, including runs an earlier attempt of this search created), unlogged.
    """

    def __init__(self, store: Store, search_name: str, yaml_hash: str, folder: Path) -> None:
        self.store, self.folder = store, folder
        self.search_name, self.yaml_hash = search_name, yaml_hash
        self.client: MlflowClient | None = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self.runs: dict[str, str] = {}  # trial id -> run id
        self.logged_steps: dict[str, int] = {}  # run id -> last epoch it holds
        self.unlogged: list[str] = []  # what could not be logged, for the summary
        self.down_until = 0.0  # monotonic time until which the store counts as down

    def open(self) -> None:
        """Connect; find or create the parent run; find the children it already has."""
        try:
            self.client, self.experiment_id = connect(*self.store)
            self.parent_id = self._parent_run()
            self.runs = self._existing_children()
            self.logged_steps = {run: self._last_step(run) for run in self.runs.values()}
        except (ConfigError, MlflowException, OSError, ConnectionError) as error:
            _logger.warning("MLflow: could not open %s: %s", masked(self.store.uri),
                            masked(str(error).splitlines()[0][:200]))
            self.client = None
            self.unlogged.append(f"open the MLflow store {masked(self.store.uri)}")

    def _guarded(self, what: str, call: Callable[[MlflowClient], T]) -> T | None:
        """call(client), or None and `what` remembered when the store is down or fails."""
        if self.client is None or time.monotonic() < self.down_until:
            self.unlogged.append(what)
            return None
        try:
            return call(self.client)
        except (MlflowException, OSError, ConnectionError) as error:
            _logger.warning("MLflow: could not %s: %s", what, str(error).splitlines()[0][:200])
            self.unlogged.append(what)
            self.down_until = time.monotonic() + DOWN_SECONDS
            return None

    def _parent_run(self) -> str:
        """The search's parent run id, reused when the search folder already recorded one."""
        record = self.folder / PARENT_RECORD
        if record.is_file():
            run_id = record.read_text().strip()
            try:
                self.client.update_run(run_id, status="RUNNING")
                return run_id
            except MlflowException:  # another store than the one the search began with
                _logger.info("parent run %s not in this store: a new one is created", run_id)
        run = self.client.create_run(self.experiment_id, run_name=self.search_name, tags={
            SEARCH_TAG: self.search_name, HASH_TAG: self.yaml_hash, KIND_TAG: "search"})
        record.write_text(run.info.run_id + "\n")
        return run.info.run_id

    def _existing_children(self) -> dict[str, str]:
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_id}'",
            max_results=5000)
        return {run.data.tags[TRIAL_TAG]: run.info.run_id for run in runs
                if TRIAL_TAG in run.data.tags}

    def _last_step(self, run_id: str) -> int:
        history = self.client.get_metric_history(run_id, m.EPOCH)
        return max((metric.step for metric in history), default=0)

    def run_of(self, trial: TrialRun) -> str | None:
        """The trial's run, created with its params on first use (named by the trial id)."""
        if trial.trial_id in self.runs:
            return self.runs[trial.trial_id]
        run = self._guarded(f"create the run of trial {trial.trial_id}", lambda c: c.create_run(
            self.experiment_id, run_name=trial.trial_id, tags={
                PARENT_TAG: self.parent_id, TRIAL_TAG: trial.trial_id,
                SEARCH_TAG: self.search_name, HASH_TAG: self.yaml_hash, KIND_TAG: "trial"}))
        if run is None:
            return None
        run_id = self.runs[trial.trial_id] = run.info.run_id
        params = [Param(k, str(v)[:6000]) for k, v in sorted(trial.config.items())]
        self._guarded(f"log params of trial {trial.trial_id}",
                      lambda c: c.log_batch(run_id, params=params))
        return run_id

    def start_trial(self, trial: TrialRun) -> None:
        """Create the trial's run (it starts RUNNING); a restored trial's existing run is
        marked RUNNING again. update_run costs ~12 ms of CPU: only where needed."""
        existed = trial.trial_id in self.runs
        run_id = self.run_of(trial)
        if existed and run_id is not None:
            self._guarded("mark a run running", lambda c: c.update_run(run_id, "RUNNING"))

    def log_epochs(self, trial: TrialRun, epochs: Sequence[tuple[int, dict[str, float]]]
                   ) -> None:
        """Log each (epoch, metrics) the run does not hold yet (a resumed trial re-reports
        the epochs after its checkpoint, with identical values), in log_batch calls."""
        run_id = self.run_of(trial)
        if run_id is None:
            self.unlogged.extend(f"log epoch {step} of trial {trial.trial_id}"
                                 for step, _ in epochs)
            return
        stamp = int(time.time() * 1000)
        metrics = []
        for step, values in epochs:
            if step <= self.logged_steps.get(run_id, 0):
                continue
            self.logged_steps[run_id] = step
            metrics.extend(Metric(k, v, stamp, step) for k, v in sorted(values.items()))
        for start in range(0, len(metrics), MAX_BATCH):
            chunk = metrics[start:start + MAX_BATCH]
            self._guarded(f"log metrics of run {run_id}",
                          lambda c, chunk=chunk: c.log_batch(run_id, metrics=chunk))

    def finish_trial(self, trial: TrialRun, status: str, reason: str = "") -> None:
        """End the trial's run: its checkpoint as artifact, the failure reason as a tag."""
        run_id = self.run_of(trial)
        if run_id is None:
            self.unlogged.append(f"end the run of trial {trial.trial_id}")
            return
        if trial.checkpoint is not None:
            with local_copy(trial.checkpoint) as best:
                if best is not None:
                    self._guarded(f"log the checkpoint of trial {trial.trial_id}",
                                  lambda c: c.log_artifact(run_id, best, "checkpoint"))
        if reason:
            self._guarded("tag a failure",
                          lambda c: c.set_tag(run_id, FAILURE_TAG, reason[:5000]))
        self._guarded("end a run", lambda c: c.set_terminated(run_id, status))

    def log_artifacts(self, trial_id: str | None, folder: Path, path: str) -> None:
        """A folder as artifacts under `path` of a trial's run (None: the parent run)."""
        run_id = self.parent_id if trial_id is None else self.runs.get(trial_id)
        if run_id is not None:
            self._guarded(f"log {path} of {trial_id or 'the search'}",
                          lambda c: c.log_artifacts(run_id, str(folder), path))

    def tag_trial(self, trial_id: str, key: str, value: str) -> None:
        run_id = self.runs.get(trial_id)
        if run_id is not None:
            self._guarded(f"tag trial {trial_id}", lambda c: c.set_tag(run_id, key, value))

    def share_view(self, key: str, state: str) -> None:
        """Store a shared view of the runs page (mlflow_view.py) on the experiment."""
        self._guarded("share the runs view", lambda c: c.set_experiment_tag(
            self.experiment_id, f"{VIEW_TAG_PREFIX}{key}", state))

    def log_search_metric(self, name: str, values: Sequence[tuple[int, float]]) -> None:
        """(step, value) pairs of one metric on the parent run."""
        stamp = int(time.time() * 1000)
        metrics = [Metric(name, value, stamp, step) for step, value in values]
        if self.parent_id is not None and metrics:
            self._guarded(f"log {name} on the search run",
                          lambda c: c.log_batch(self.parent_id, metrics=metrics))

    def end_search(self, status: str) -> None:
        if self.parent_id is not None:
            self._guarded("end the search run",
                          lambda c: c.set_terminated(self.parent_id, status))

    def settle(self, ended: dict[str, tuple[str, Place | None]]) -> list[str]:
        """End the runs still RUNNING whose trial has ended (trial id -> (status, best.pt)):
        a driver killed before it wrote a trial's end, whose snapshot already held it.
        Returns their trial ids."""
        running = self._guarded("find running trial runs", lambda c: c.search_runs(
            [self.experiment_id], max_results=5000,
            filter_string=f"tags.`{PARENT_TAG}` = '{self.parent_id}' and "
                          f"attributes.status = 'RUNNING'")) or []
        settled = []
        for run in running:
            trial_id = run.data.tags.get(TRIAL_TAG)
            if trial_id in ended and self.runs.get(trial_id) == run.info.run_id:
                status, checkpoint = ended[trial_id]
                self.finish_trial(TrialRun(trial_id, {}, checkpoint), status)
                settled.append(trial_id)
        return settled

    def retire_orphans(self, known: set[str]) -> list[str]:
        """Delete (recoverably) the runs of trials Ray no longer knows: after a driver crash,
        trials created after Ray's last snapshot are replaced by new ones on --resume."""
        retired = []
        for trial_id, run_id in list(self.runs.items()):
            if trial_id not in known:
                self._guarded(f"retire the run of lost trial {trial_id}",
                              lambda c, run_id=run_id: c.delete_run(run_id))
                retired.append(trial_id)
                del self.runs[trial_id]
        return retired
