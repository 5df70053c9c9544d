"""Where spatialsearch leans on Ray Tune behaviour that Ray does not promise; one place, so
that a Ray upgrade is checked here. Written against Ray 2.60.0.

local_node: Ray's own CPU and GPU detection for a local node (capacity.py), private in 2.60.
send_token_to_cluster: Ray 2.60's ray.init(address=...) sends a cluster's auth token only
under RAY_AUTH_MODE=token; Ray's own (private) helper enables it when a token exists.
give_restored_tuner_callbacks: Tuner.restore keeps the callbacks it pickled, with no public
way to give it live ones.
buffered_trainable: Ray 2.60's own result buffering (train_buffered) cannot be used as it is:
the controller passes its two arguments swapped (one result per call), and a list that ends in
a checkpointed result makes it schedule two trainings at once. Ours overrides train_buffered
of a class from wrap_function (an internal helper).
PruneAwareOptunaSearch: Ray 2.60's OptunaSearch.on_trial_complete tells Optuna COMPLETE with
the trial's last values whenever a result is given, so a trial the scheduler stopped at epoch
5 enters TPE's model as if its epoch-5 accuracy were final. It tells PRUNED only when the
result is None and the trial did not fail; this subclass passes None for trials that ended
before their full epochs (tests/search/engine/test_ray_compat.py fails if Ray changes either behaviour).
It also writes each trial's objective values at MO-ASHA's rungs and at its full length in a
rung_tpe.RungBook, from which RungMatchedTPESampler chooses TPE's good group (Trial.report,
which orders stopped trials in one-objective studies, is refused with several objectives).
"""

from __future__ import annotations

import math
import time
from typing import Any

import ray
from ray.tune.result import DONE, RESULT_DUPLICATE, SHOULD_CHECKPOINT
from ray.tune.search.optuna import OptunaSearch
from ray.tune.trainable.function_trainable import wrap_function

from spatialsearch import metrics as m
from spatialsearch.errors import ConfigError
from spatialsearch.search.engine.rung_tpe import RungBook
from spatialsearch.search.space.constraints import Constraint

TESTED_RAY = ("2.60.0",)
#: a worker hands the driver its finished epochs after this long, or once it holds this many
BUFFER_SECONDS = 0.5
BUFFER_RESULTS = 100


def check_ray_version(version: str = ray.__version__) -> None:
    """Refuse, with one line, a Ray this module was not tested against."""
    if version not in TESTED_RAY:
        raise ConfigError(f"ray: version {version} is installed, spatialsearch is tested with "
                          f"{', '.join(TESTED_RAY)}; install that (pip install -e .)")


def send_token_to_cluster() -> None:
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


def local_node() -> dict[str, float]:
    """The CPUs and GPUs a local Ray started here would report for its node (Ray's own
    detection, private in 2.60)."""
    from ray._private.accelerators import get_accelerator_manager_for_resource
    from ray._private.utils import get_num_cpus

    gpus = get_accelerator_manager_for_resource("GPU").get_current_node_num_accelerators()
    return {"CPU": float(get_num_cpus()), "GPU": float(gpus)}


def give_restored_tuner_callbacks(tuner: Any, callbacks: list) -> None:
    """A restored Tuner keeps the callbacks it pickled (idle copies: MlflowCallback's
    unpickled state does nothing); Ray 2.60 has no public way to hand it live ones, so they
    are set on its run config."""
    tuner._local_tuner._run_config.callbacks = callbacks


def _finite_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


class PruneAwareOptunaSearch(OptunaSearch):
    """OptunaSearch whose trials stopped before `full_epochs` enter the study as PRUNED, with
    their rung values kept for the sampler and the search's constraints given to Optuna.

    Args:
        full_epochs: a trial's full length; one that ends earlier was stopped early.
        book: where each trial's values are recorded at the book's epochs (MO-ASHA's rungs
            and the full length), by Optuna trial number; None: not recorded.
        constraints: the search's bounds; each becomes a constraint of a finished trial
            (its violation at the last epoch), named by its metric.
        **kwargs: OptunaSearch's (space, metric, mode, sampler).
    """

    def __init__(self, *, full_epochs: int, book: RungBook | None = None,
                 constraints: tuple[Constraint, ...] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full_epochs, self.book, self.constraints = full_epochs, book, constraints

    def _metrics(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]

    def _record(self, trial_id: str, result: dict) -> None:
        trial = self._ot_trials.get(trial_id)
        if self.book is not None and trial is not None:
            self.book.record(trial.number, int(result.get(m.EPOCH, 0)), [
                float(result[k]) if _finite_number(result.get(k)) else math.nan
                for k in self._metrics()])

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._record(trial_id, result)
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """FAIL when an objective of its last result is missing, NaN or infinite, also for a
        trial MO-ASHA stopped at a rung for that reason (Optuna refuses those, and Ray would
        only log it, leaving the trial RUNNING in the study); else PRUNED when stopped early;
        else as Ray does. Constraints are set before Optuna is told."""
        unmeasured = (not error and result is not None
                      and not all(_finite_number(result.get(k)) for k in self._metrics()))
        stopped_early = (not error and not unmeasured and result is not None
                         and int(result.get(m.EPOCH, 0)) < self.full_epochs)
        trial = self._ot_trials.get(trial_id)
        if trial is not None and result is not None and not error:
            self._record(trial_id, result)
            for constraint in self.constraints:
                trial.set_constraint(constraint.metric,
                                     constraint.violation(result.get(constraint.metric)))
        super().on_trial_complete(trial_id, None if stopped_early or unmeasured else result,
                                  error or unmeasured)


def buffered_trainable(function: Any) -> type:
    """A function trainable as Tune's actor runs it, handing the driver several epochs per
    call.

    Tune calls train_buffered when TUNE_RESULT_BUFFER_LENGTH > 1 (session.TUNE_SETTINGS). This
    one ignores Tune's arguments and returns the epochs finished so far when BUFFER_SECONDS
    have passed, BUFFER_RESULTS are held or the trial ends, and hands every checkpointed
    result over on its own: it is kept for the next call when others come first. Those are
    the epochs where a scheduler decides (TrialPlan.checkpoint_due), so a stopped trial
    trains no epoch past its rung: the training thread stays blocked in that tune.report
    until the next call. Measured on 2 cores, 64 quick-start trials: a worker waits ~1.8-2 ms
    per epoch for the driver, against ~3.6 ms with one call per epoch.
    """

    class BufferedTrainable(wrap_function(function)):
        _held: dict[str, Any] | None = None

        def train_buffered(self, *_tune_arguments: Any) -> list[dict[str, Any]]:
            """The results of the epochs handed over now, in order."""
            if self._held is not None:
                held, self._held = self._held, None
                return [held]
            results: list[dict[str, Any]] = []
            deadline = time.monotonic() + BUFFER_SECONDS
            while True:
                result = self.train()
                if results and result.get(SHOULD_CHECKPOINT):
                    self._held = result
                    return results
                results.append(result)
                if (result.get(DONE) or result.get(SHOULD_CHECKPOINT)
                        or RESULT_DUPLICATE in result or len(results) >= BUFFER_RESULTS
                        or time.monotonic() >= deadline):
                    return results

        def reset_config(self, new_config: dict[str, Any]) -> bool:
            self._held = None  # a reused actor starts the next trial with nothing held
            return super().reset_config(new_config)

    BufferedTrainable.__name__ = BufferedTrainable.__qualname__ = "SpatialTrainable"
    return BufferedTrainable
