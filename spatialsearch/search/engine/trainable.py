"""Ray Tune adapter: trial config + TrialPlan -> Trainer epochs -> tune.report + checkpoint.

Every epoch reports its metrics; plan.checkpoint_due epochs add a checkpoint folder holding
    state.pt  the full training state (model, optimizer, RNG, best so far): resume exactly
    best.pt   the best-validation checkpoint (checkpoint.py format), the trial's deliverable
A report with a checkpoint costs ~9 ms of Tune bookkeeping against ~1 ms without, which
against 25 ms epochs was most of a quick search's overhead; so a trial checkpoints at its
last epoch, wherever the scheduler may stop it, and every `checkpoint_every` epochs.
Every checkpointed epoch (the scheduler's rungs among them) also reports the task measures
(positions split, selectivity, modularity, segregation: Trainer.task_measures), so a
multi-objective scheduler ranks them there; checkpoint_every: 1 measures them every epoch. The
last epoch's report adds the task measures and test accuracy of the best checkpoint.
A retried or restored trial continues from its last checkpoint (tune.get_checkpoint).
A NaN/inf loss raises TrainingDiverged: Ray marks the trial failed with that reason.

The search's plan reaches each trial through tune.with_parameters (not hidden config keys, which
would show in the trial's params and folder names), and with it the datasets the driver read
once (data/shared.py, through Ray's object store); ray_compat.buffered_trainable hands the
driver several epochs per round trip.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from ray import tune

from spatialsearch import metrics as m
from spatialsearch.checkpoint import atomic_save, save_state
from spatialsearch.config import trial_config_from_dict
from spatialsearch.data.shared import SharedDatasets
from spatialsearch.search.engine.ray_compat import buffered_trainable
from spatialsearch.search.places.ray_folder import BEST_FILE
from spatialsearch.train import Trainer, resolve_device

STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TrialPlan:
    """What the search tells every trial besides its training keys."""

    cpus: float = 1.0                   # CPUs Tune reserves: torch's and numba's threads
    checkpoint_every: int = 1           # epochs between checkpoints (and segregation)
    checkpoint_at: tuple[int, ...] = ()  # the scheduler's rungs: checkpoint there too
    datasets: SharedDatasets | None = field(default=None, compare=False)  # read once by the
                                        # driver; None: each trial reads the files itself

    def checkpoint_due(self, epoch: int, last_epoch: int) -> bool:
        """Checkpoint (and measure segregation) after this epoch?"""
        return (epoch == last_epoch or epoch % self.checkpoint_every == 0
                or epoch in self.checkpoint_at)

    def set_threads(self) -> None:
        """torch and numba use as many threads as the trial has CPUs (>= 1)."""
        threads = max(1, int(self.cpus))
        torch.set_num_threads(threads)
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def train_trial(config: dict[str, Any], plan: TrialPlan = TrialPlan()) -> None:
    """The function trainable: config holds the trial's flat training keys."""
    plan.set_threads()
    if plan.datasets is not None:
        plan.datasets.remember_own()  # own data: described from the shared arrays
    trial = trial_config_from_dict(config)
    data = None
    if plan.datasets is not None and plan.datasets.covers(trial.data):
        data = plan.datasets.task_data(trial.data, trial.run.seed,
                                       resolve_device(trial.run.device))
    trainer = Trainer(trial, data)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, map_location=trainer.device,
                               weights_only=True)
        trainer.load_state_dict(state)
    while trainer.epoch < trial.run.epochs:
        results = trainer.run_epoch()
        if not plan.checkpoint_due(trainer.epoch, trial.run.epochs):
            tune.report(results)
            continue
        last = trainer.epoch == trial.run.epochs
        results |= trainer.task_measures()
        if last:
            best = trainer.task_measures(trainer.best_model())
            results |= {f"best_{key}": value for key, value in
                        (best | trainer.test_metrics()).items()}
        with tempfile.TemporaryDirectory() as folder:
            atomic_save(trainer.state_dict(), Path(folder) / STATE_FILE)
            save_state(Path(folder) / BEST_FILE, trainer.best_state, trial,
                       int(trainer.best_metrics[m.EPOCH]), trainer.best_metrics)
            tune.report(results, checkpoint=tune.Checkpoint.from_directory(folder))


def spatial_trainable(plan: TrialPlan, function: Any = train_trial) -> type:
    """`function` (train_trial, or a test's wrapper of it, taking (config, plan)) with the
    search's plan, as the Tune trainable class a search runs."""
    return buffered_trainable(tune.with_parameters(function, plan=plan))
