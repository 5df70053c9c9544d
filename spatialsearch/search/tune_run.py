"""The search's own Tune run: Ray started or joined, the Tuner built (or restored for
--resume) with its callbacks (MLflow, progress lines, Tune's files), fit, and the trials read
back as rows. Reseeding is the other Tune run (reseed.py)."""

from __future__ import annotations

import time
from typing import Any

from ray import tune

from spatialsearch.errors import ConfigError
from spatialsearch.search.engine.progress import OnTail, TrialLines
from spatialsearch.search.engine.ray_compat import give_restored_tuner_callbacks
from spatialsearch.search.engine.session import environment, file_loggers, start_ray, tune_settings
from spatialsearch.search.engine.trainable import spatial_trainable, train_trial
from spatialsearch.search.engine.tune_space import (
    param_space,
    scheduler,
    searcher,
    trial_folder,
    trial_plan,
)
from spatialsearch.search.outcome.rows import TrialRow, collect_rows
from spatialsearch.search.places.driver_record import DriverRecord, write_record
from spatialsearch.search.places.place import Place, tune_storage
from spatialsearch.search.places.ray_folder import recorded_trials
from spatialsearch.search.reporting import warm_report
from spatialsearch.search.run_context import RunContext
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.tracking.callback import MlflowCallback
from spatialsearch.search.tracking.view import view_key, view_state


def search_trainable(config: SearchConfig, function: Any = train_trial) -> Any:
    """The trainable of a search (train_trial, or a wrapper of it taking (config, plan)) with
    the search's plan and the resources Tune reserves for each trial."""
    return tune.with_resources(spatial_trainable(trial_plan(config), function),
                               config.resources.tune_resources())


def fit_trials(context: RunContext, trainable: Any, *, address: str | None,
               resume: bool) -> tuple[list[TrialRow], float]:
    """Run (or resume) the trials; every trial's row, and the seconds Tune's fit took. Every
    queued MLflow write, and the tail's warm-up of the report's imports, are done when this
    returns: the analysis after it imports the same modules, and two threads importing
    matplotlib.pyplot at once fail ("partially initialized module")."""
    config, tracking = context.config, context.tracking
    mlflow = MlflowCallback(tracking)  # opens the store while Ray starts
    start_ray(address)
    tail = OnTail(config.num_samples, config.max_concurrent_trials, [warm_report])
    callbacks = [mlflow, TrialLines(config.metric, config.mode, config.num_samples,
                                    also=[o.metric for o in config.objectives[1:]]),
                 tail, *file_loggers()]
    tuner = _tuner(config, trainable, callbacks, resume, context.experiment,
                   context.resume_folder)
    if resume:
        mlflow.replay(recorded_trials(context.experiment))
    mlflow.after_open(lambda: write_record(context.resume_folder, DriverRecord(
        context.started, tracking.parent_id or "")))
    mlflow.after_open(lambda: tracking.share_view(view_key(config.name), view_state(
        config.name, [(o.metric, o.mode) for o in config.objectives],
        [key for key, _ in config.space])))
    fitting = time.time()
    try:
        with environment(tune_settings(bool(config.storage.uri))):
            grid = tuner.fit()
        seconds = time.time() - fitting
    finally:
        mlflow.close()
        tail.wait()
    return collect_rows(grid, config), seconds


def _tuner(config: SearchConfig, trainable: Any, callbacks: list, resume: bool,
           experiment: Place, kept: Place) -> tune.Tuner:
    """A new Tuner, or the restored one (--resume); `experiment` is its folder in storage,
    `kept` the search's resume folder (MO-ASHA's state)."""
    storage = tune_storage(experiment.parent)
    if resume:
        path = f"{storage['storage_path']}/{config.name}"
        filesystem = storage["storage_filesystem"]
        if not tune.Tuner.can_restore(path, storage_filesystem=filesystem):
            raise ConfigError(f"--resume: no restorable search at {path!r}")
        tuner = tune.Tuner.restore(path, trainable, resume_errored=True,
                                   param_space=param_space(config),
                                   storage_filesystem=filesystem)
        give_restored_tuner_callbacks(tuner, callbacks)
        return tuner
    return tune.Tuner(
        trainable,
        param_space=param_space(config),
        tune_config=tune.TuneConfig(
            # several objectives: the searcher and MO-ASHA hold them; Tune ranks none
            metric=None if config.multi_objective else config.metric,
            mode=None if config.multi_objective else config.mode,
            search_alg=searcher(config), scheduler=scheduler(config, kept),
            num_samples=config.num_samples, trial_dirname_creator=trial_folder,
            max_concurrent_trials=config.max_concurrent_trials, reuse_actors=True,
            time_budget_s=config.time_budget_s or None),
        run_config=tune.RunConfig(
            name=config.name, **storage,
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            # keep every checkpoint while running: Ray's own pruning can delete the one its
            # last experiment snapshot points to, and a resume after a crash then fails
            # ("does not exist on storage anymore"). ray_folder.prune_checkpoints runs after.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=callbacks, verbose=0),  # progress: TrialLines
    )
