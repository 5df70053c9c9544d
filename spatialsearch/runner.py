"""Run a search: SearchConfig -> Ray Tune Tuner (+ Optuna, ASHA) -> results in its folder.

<output>/<name>/ holds: ray/ (Tune's experiment, for --resume), mlflow.db (the default MLflow
store), optuna.db (the Optuna study, for optuna-dashboard), best/best.pt (the best trial's
checkpoint), results.csv and summary.json.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import ray
from ray import tune

from spatialsearch import metrics as m
from spatialsearch.data import missing_files
from spatialsearch.data.sources import system_source
from spatialsearch.errors import ConfigError, DataError, SearchFailed
from spatialsearch.fit import check_writable
from spatialsearch.mlflow_log import MlflowTrialLogger, Store, connect, sync_results
from spatialsearch.results import (
    TrialRow,
    analyze_best,
    collect_rows,
    outcomes,
    prune_checkpoints,
    search_report,
    write_results,
)
from spatialsearch.search.answer import (
    front_summary,
    log_front,
    tag_reseeds,
    write_pareto_csv,
)
from spatialsearch.search.front import pareto_front
from spatialsearch.search.ray_compat import check_ray_version
from spatialsearch.search.reseed import Spread, reseed_configs, run_reseeds, spreads
from spatialsearch.search.tune_space import param_space, scheduler, searcher, trial_folder
from spatialsearch.search_config import SearchConfig
from spatialsearch.study import StudyWriter, build_study, study_record
from spatialsearch.trainable import SpatialTrainable

_logger = logging.getLogger(__name__)
RAY_FOLDER = "ray"


def tracking_uri(config: SearchConfig) -> str:
    return config.tracking_uri or f"sqlite:///{(config.folder / 'mlflow.db').resolve()}"


def _trainable(config: SearchConfig) -> Any:
    return tune.with_resources(SpatialTrainable, {"cpu": config.resources.cpu,
                                                  "gpu": config.resources.gpu})


def _tuner(config: SearchConfig, callbacks: list, resume: bool) -> tune.Tuner:
    trainable = _trainable(config)
    experiment = (config.folder / RAY_FOLDER).resolve()
    if resume:
        path = experiment / config.name
        if not tune.Tuner.can_restore(str(path)):
            raise ConfigError(f"--resume: no restorable search at {str(path)!r}")
        return tune.Tuner.restore(str(path), trainable, resume_errored=True,
                                  param_space=param_space(config))
    return tune.Tuner(
        trainable,
        param_space=param_space(config),
        tune_config=tune.TuneConfig(
            # several objectives: the searcher and MO-ASHA hold them; Tune ranks none
            metric=None if config.multi_objective else config.metric,
            mode=None if config.multi_objective else config.mode,
            search_alg=searcher(config), scheduler=scheduler(config),
            num_samples=config.num_samples, trial_dirname_creator=trial_folder,
            max_concurrent_trials=config.max_concurrent_trials, reuse_actors=True),
        run_config=tune.RunConfig(
            name=config.name, storage_path=str(experiment),
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # keep every checkpoint while running: Ray's own pruning can delete the one its
            # last experiment snapshot points to, and a resume after a crash then fails
            # ("does not exist on storage anymore"). prune_checkpoints runs after fit().
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=callbacks, verbose=0),  # progress: TrialLines
    )


def preflight(config: SearchConfig, resume: bool) -> None:
    """Everything checkable before Ray starts: output folder, datasets on disk, MLflow store
    (a server's /health, or opening any other store the user named; the default SQLite store
    in the writable output folder is opened in the background while Ray starts).

    Raises:
        ConfigError / DataError: with the key and the reason; nothing has been written.
    """
    check_ray_version()
    folder = config.folder
    check_writable(folder, key="output")
    if folder.exists() and not resume and (folder / RAY_FOLDER).exists():
        raise ConfigError(f"output: {str(folder)!r} already holds a search named "
                          f"{config.name!r}; pass --resume to continue it, or change name/output")
    if resume and not (folder / RAY_FOLDER / config.name).exists():
        raise ConfigError(f"--resume: no search to resume at {str(folder / RAY_FOLDER)!r}")
    datasets = {name for value in config.dataset_choices for name in value}
    base = config.base_config.data
    for name in sorted(datasets - {"digits"}):
        if not base.download and (system := system_source(name, base.root)) is not None:
            _logger.info("%s: %s holds no files; reading the system's copy: %s", name,
                         Path(base.root) / name / "raw", ", ".join(str(p) for p in system))
        if not base.download and (missing := missing_files(name, base.root)):
            raise DataError(f"fixed.datasets: {name} not found under root {base.root!r} "
                            f"(missing {', '.join(str(p) for p in missing)}); get the files "
                            f"or set fixed.download: true (online)")
    if config.tracking_uri:  # the default store is opened in the background (mlflow_log)
        check_store(config.tracking_uri, config.experiment)


def check_store(uri: str, experiment: str) -> None:
    """A clear ConfigError now if the store cannot be used: a server's /health, else opening
    the store (cheap for anything but a new SQLite file)."""
    if uri.startswith(("http://", "https://")):
        check_server(uri)
    else:
        connect(uri, experiment)


def check_server(uri: str) -> None:
    """A quick GET of the MLflow server's /health (MLflow's client would retry for minutes)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as response:
            if response.status != 200:
                raise ConfigError(f"tracking_uri: {uri!r} answered {response.status} on /health")
    except (urllib.error.URLError, OSError) as error:
        raise ConfigError(f"tracking_uri: cannot reach the MLflow server {uri!r}: {error}; "
                          f"start it (mlflow server --host 127.0.0.1) or fix the URI") from error


def sync_search(folder: Path, tracking_uri: str | None = None) -> dict[str, Any]:
    """Re-log a finished search's results (its Ray experiment) to MLflow: what a dead store
    missed. Uses the search's store unless tracking_uri names another."""
    summary_file = folder / "summary.json"
    if not summary_file.is_file():
        raise ConfigError(f"folder: {str(folder)!r} holds no finished search (no summary.json)")
    summary = json.loads(summary_file.read_text())
    uri = tracking_uri or summary["mlflow"]["tracking_uri"]
    check_store(uri, summary["mlflow"]["experiment"])  # an error now, not a writer warning
    logger = MlflowTrialLogger(Store(uri, summary["mlflow"]["experiment"],
                                     None if tracking_uri else folder / "mlartifacts"),
                               summary["search"], "", folder)
    synced = sync_results(logger, folder / RAY_FOLDER / summary["search"])
    logger.write("end the search run", "set_terminated", logger.parent_id, "FINISHED")
    summary["mlflow"].update(tracking_uri=uri, parent_run_id=logger.parent_id,
                             not_logged=logger.unlogged)
    summary_file.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return {"trials": synced, "not_logged": logger.unlogged, "tracking_uri": uri}


def run_search(config: SearchConfig, *, address: str | None = None, resume: bool = False,
               quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) the search; returns the summary written to summary.json."""
    preflight(config, resume)
    folder = config.folder
    # a dead server must not hold each write for minutes of retries (mlflow_log's breaker)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    folder.mkdir(parents=True, exist_ok=True)
    artifacts = None if config.tracking_uri else folder / "mlartifacts"
    logger = MlflowTrialLogger(Store(tracking_uri(config), config.experiment, artifacts),
                               config.name, config.source_hash, folder)
    if not ray.is_initialized():
        if address:
            _send_token_to_cluster()
        # "local": always a fresh local Ray unless --address names a cluster
        # workers' own log lines stay in Ray's logs (trial errors still reach Tune's report)
        context = ray.init(address=address or "local", include_dashboard=None,
                           configure_logging=False, log_to_driver=False)
        _announce_dashboard(context.dashboard_url)
    callbacks = [logger, TrialLines(config.metric, config.mode, config.num_samples,
                                    also=[o.metric for o in config.objectives[1:]]),
                 OnTail(config.num_samples, config.max_concurrent_trials, [_warm_report]),
                 *_file_loggers()]
    tuner = _tuner(config, callbacks, resume)
    if resume:  # restored tuners keep their callbacks pickled; give them live ones
        tuner._local_tuner._run_config.callbacks = callbacks
    # the study's writer prepares while the trials run (~0.5 s of CPU): after the search it
    # only writes the trials, while the report is built
    study_writer = StudyWriter(folder)
    study_writer.start()
    started = time.time()
    try:
        with _disk_errors(folder):
            try:
                with _tune_settings():
                    grid = tuner.fit()
                searched = time.time() - started
            finally:
                logger.close()  # every queued MLflow write is done before results are read
            rows = collect_rows(grid, config)
        summary, failed = _conclude(config, rows, logger, study_writer, quiet, started)
        summary["search_seconds"] = round(searched, 2)  # the trials' wall time (Tune's fit)
    finally:
        study_writer.close()
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if summary["best"]:
        logger.write("log the search's best metric", "log_metric", logger.parent_id,
                     f"best_{config.metric}", summary["best"][config.metric])
    logger.write("end the search run", "set_terminated", logger.parent_id,
                 "FAILED" if failed else "FINISHED")
    return summary


def _conclude(config: SearchConfig, rows: list[TrialRow], logger: MlflowTrialLogger,
              study_writer: StudyWriter, quiet: bool, started: float
              ) -> tuple[dict[str, Any], bool]:
    """After the trials: optuna.db (child process), old checkpoints pruned (thread), the
    results, the analysis of the best trials and the report; returns (summary, whether a
    trial failed). The study and the pruning run beside the report."""
    folder = config.folder
    with _disk_errors(folder):
        study = study_record(config, [r.__dict__ for r in rows])
        study_writer.write(study)
        # file deletions, mostly waiting on the disk
        pruning = threading.Thread(target=prune_checkpoints, name="prune-checkpoints",
                                   args=(folder / RAY_FOLDER / config.name,))
        pruning.start()
        retired = logger.retire_orphans({r.trial_id for r in rows})
        summary = write_results(config, rows, logger)
        _answer(config, rows, summary, logger, started)
    summary["analyzed"] = analyze_best(config, summary, logger, quiet)
    summary["report"] = search_report(config, rows, summary, logger, build_study(study))
    summary["mlflow"]["retired_runs"] = retired
    with _disk_errors(folder):
        study_writer.wait()
    pruning.join()
    return summary, any(r.status == "ERROR" for r in rows)


def _answer(config: SearchConfig, rows: list[TrialRow], summary: dict[str, Any],
            logger: MlflowTrialLogger, started: float) -> None:
    """Several objectives: the Pareto front of the full trials (summary["pareto"],
    pareto.csv, MLflow). reseed K: the front (one objective: the best trial) trained again
    with K further seeds."""
    by_id = {r.trial_id: r for r in rows}
    front = None
    if config.multi_objective:
        data = config.base_config.data
        front = pareto_front(config.objectives, outcomes(rows, config), labels=data.labels,
                             num_tasks=data.num_tasks, started_at=started)
        members = list(front.members)
    else:
        members = [summary["best"]["trial_id"]] if summary["best"] else []
    spread = []
    if config.reseed and members:
        spread = _reseed(config, [(t, by_id[t].params, by_id[t].objectives) for t in members],
                         logger.store)
    if front is not None:
        summary["pareto"] = front_summary(front, by_id, spread)
        write_pareto_csv(config.folder / "pareto.csv", summary["pareto"])
        log_front(logger, summary["pareto"])
    elif spread:
        names = [o.metric for o in config.objectives]
        summary["best"]["reseed"] = {"seeds": list(spread[0].seeds),
                                     "mean": dict(zip(names, spread[0].mean)),
                                     "std": dict(zip(names, spread[0].std))}


def _reseed(config: SearchConfig, members: list[tuple[str, dict[str, Any], tuple]],
            store: Store) -> list[Spread]:
    """Train the members again with config.reseed further seeds each (a second Tune
    experiment, <name>-reseed, logged as MLflow children of the search's parent run)."""
    planned = reseed_configs(config, [(t, p) for t, p, _ in members])
    _logger.info("reseeding %d trials with %d further seeds each (%d trials)", len(members),
                 config.reseed, len(planned))
    reseed_logger = MlflowTrialLogger(store, config.name, config.source_hash, config.folder)
    try:
        with _tune_settings():
            found = run_reseeds(config, _trainable(config), planned,
                                [reseed_logger, *_file_loggers()],
                                str((config.folder / RAY_FOLDER).resolve()))
    finally:
        reseed_logger.close()
    tag_reseeds(reseed_logger, {str(v.get("trial_id")): k[0] for k, v in found.items()})
    return spreads(config, members, found)


@contextlib.contextmanager
def _disk_errors(folder: Path) -> Iterator[None]:
    """A full or failing disk (Ray's own files included) -> one SearchFailed saying what is
    kept and how to go on."""
    try:
        yield
    except (OSError, EOFError) as error:
        free = shutil.disk_usage(folder).free / 2**20
        raise SearchFailed(
            f"output: writing the search to {str(folder)!r} failed ({error}); {free:.0f} MiB "
            f"free there. Checkpoints of the trials that finished are kept under "
            f"{str(folder / RAY_FOLDER)!r}; free space, then continue with --resume") from error


def _ended_with(trials: list) -> int:
    """Trials ended, counting the one whose on_trial_complete/error runs (Tune marks it after
    the callbacks)."""
    return sum(t.status in ("TERMINATED", "ERROR") for t in trials) + 1


class TrialLines(tune.Callback):
    """One log line per ended trial (logger spatialsearch.runner, INFO): how many trials have
    ended, the trial's best metric, its epochs and seconds, and the best trial so far. Tune's
    own progress output is off: it printed ~45 lines per trial (1 line here). `also`: the
    other objectives of a multi-objective search, shown at the trial's last epoch."""

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
        return f"[{min(_ended_with(trials), self.total)}/{self.total}]"

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


def _send_token_to_cluster() -> None:
    """Use token auth to join a cluster when a Ray auth token is at hand and the user set no
    RAY_AUTH_MODE.

    `ray start --head` enables token auth, but Ray 2.60's ray.init(address=...) sends the
    token only under RAY_AUTH_MODE=token, read when Ray's config initialises: without it the
    driver retries "InvalidAuthToken" and fails. Ray's own helper for local clusters (private
    in 2.60) sets the mode and re-reads the config when a token exists (RAY_AUTH_TOKEN,
    RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # another Ray: it handles tokens itself
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _file_loggers() -> list[tune.Callback]:
    """Tune's result.json/params.json and progress.csv writers, without its TensorBoard one
    (see _tune_settings)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [JsonLoggerCallback(), CSVLoggerCallback()]


@contextlib.contextmanager
def _tune_settings() -> Iterator[None]:
    """Tune's environment settings for the search, restored afterwards; the user's own win.

    TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1: no TensorBoard logger, which cost 1.9 ms of driver
    time per result (2.6 s in a 64-trial quick search; MLflow holds every metric);
    _file_loggers adds the other two back. TUNE_RESULT_BUFFER_LENGTH > 1 makes Tune call
    SpatialTrainable.train_buffered (several epochs per round trip; its own policy, the
    value is not used). Strict metric checking is off: segregation, an objective, is measured
    at checkpointed epochs only (trainable), not in every result. The checkpoint-sync warning
    is off: checkpoints every few epochs are the design.
    """
    settings = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_RESULT_BUFFER_LENGTH": "2",
                "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
                "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
    added = [key for key in settings if key not in os.environ]
    os.environ.update({key: settings[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


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
        if self.thread is None and _ended_with(trials) >= self.finished_from:
            self.thread = threading.Thread(target=self._run, name="search-tail", daemon=True)
            self.thread.start()

    on_trial_error = on_trial_complete

    def __getstate__(self) -> dict[str, Any]:
        """Tune pickles callbacks into its experiment state: without the thread."""
        return {**self.__dict__, "thread": None}

    def _run(self) -> None:
        for action in self.actions:
            action()


def _warm_report() -> None:
    from analysis.report import warm_up

    try:
        warm_up()
    except ImportError as error:  # the report itself will say so
        _logger.debug("report imports: %s", error)


def _announce_dashboard(url: str | None) -> None:
    """Log where the Ray dashboard is and how to authenticate (Ray's token auth)."""
    if not url:
        _logger.info("Ray dashboard: not running (install ray[default] to get it)")
        return
    token = Path.home() / ".ray" / "auth_token"
    how = (f"token auth: send 'Authorization: Bearer <token>' with the token from {token} "
           f"(`ray get-auth-token`)" if token.is_file() else "no auth token configured")
    _logger.info("Ray dashboard: http://%s (%s)", url, how)


