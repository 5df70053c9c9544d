"""Where spatialsearch leans on Ray Tune behaviour that Ray does not promise; one place, so
that a Ray upgrade is checked here. Written against Ray 2.60.0.

PruneAwareOptunaSearch: Ray 2.60's OptunaSearch.on_trial_complete tells Optuna COMPLETE with
the trial's last values whenever a result is given, so a trial the scheduler stopped at epoch
5 enters TPE's model as if its epoch-5 accuracy were final. It tells PRUNED only when the
result is None and the trial did not fail; this subclass passes None for trials that ended
before their full epochs (tests/test_ray_compat.py fails if Ray changes either behaviour).
"""

from __future__ import annotations

from typing import Any

import ray
from ray.tune.search.optuna import OptunaSearch

from spatialsearch import metrics as m
from spatialsearch.errors import ConfigError

TESTED_RAY = ("2.60.0",)


def check_ray_version(version: str = ray.__version__) -> None:
    """Refuse, with one line, a Ray this module was not tested against."""
    if version not in TESTED_RAY:
        raise ConfigError(f"ray: version {version} is installed, spatialsearch is tested with "
                          f"{', '.join(TESTED_RAY)}; install that (pip install -e .)")


class PruneAwareOptunaSearch(OptunaSearch):
    """OptunaSearch whose trials stopped before `full_epochs` enter the study as PRUNED.

    Args:
        full_epochs: a trial's full length; one that ends earlier was stopped early.
        **kwargs: OptunaSearch's (space, metric, mode, sampler).
    """

    def __init__(self, *, full_epochs: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.full_epochs = full_epochs

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """PRUNED when stopped early; FAIL when an objective is NaN (Optuna refuses NaN, and
        Ray would only log that); else as Ray does."""
        stopped_early = (not error and result is not None
                         and int(result.get(m.EPOCH, 0)) < self.full_epochs)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        unmeasured = (not error and not stopped_early and result is not None
                      and any(result.get(name) != result.get(name) for name in metrics))
        super().on_trial_complete(trial_id, None if stopped_early or unmeasured else result,
                                  error or unmeasured)
