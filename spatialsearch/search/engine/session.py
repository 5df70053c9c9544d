"""The Ray side of a search's driver: joining or starting Ray, where its dashboard is, and
the environment Tune runs under (set for the search, restored afterwards)."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator

import ray
from ray import tune

from spatialsearch.redact import masked
from spatialsearch.search.engine.ray_compat import send_token_to_cluster

_logger = logging.getLogger(__name__)


def start_ray(address: str | None) -> None:
    """Join the cluster at `address`, or start a fresh local Ray ("local"), unless Ray is
    already initialised in this process. Workers' log lines stay in Ray's logs (trial errors
    still reach Tune's report)."""
    if ray.is_initialized():
        return
    if address:
        send_token_to_cluster()
    context = ray.init(address=address or "local", include_dashboard=None,
                       configure_logging=False, log_to_driver=False)
    announce_dashboard(context.dashboard_url)


@contextlib.contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """Set the variables the user has not set, for the duration; restore afterwards."""
    added = [key for key in settings if key not in os.environ]
    os.environ.update({key: settings[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


@contextlib.contextmanager
def restored_environment() -> Iterator[None]:
    """Whatever the search or the libraries it imports change in os.environ (OpenMP's
    KMP_* on import, MLflow's telemetry session) is undone when it ends."""
    before = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(before):
            os.environ.pop(key, None)
        os.environ.update({k: v for k, v in before.items() if os.environ.get(k) != v})


#: MLflow's HTTP client retries a dead server for minutes per call; the core's breaker needs
#: a failure quickly (tracking.SearchTracking). It also prints "View run ... at <tracking URI>"
#: on stdout for each run it ends, credentials of the URI included: never (redact.py).
MLFLOW_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
               "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def file_loggers() -> list[tune.Callback]:
    """Tune's result.json/params.json and progress.csv writers, without its TensorBoard one
    (see TUNE_SETTINGS)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [JsonLoggerCallback(), CSVLoggerCallback()]


#: Tune's environment for a search (the user's own values win):
#: TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1: no TensorBoard logger, which cost 1.9 ms of driver
#: time per result (MLflow holds every metric); file_loggers adds the other two back.
#: TUNE_RESULT_BUFFER_LENGTH > 1 makes Tune call the trainable's train_buffered (several
#: epochs per round trip; ray_compat); the value is not used. Strict metric checking is off:
#: segregation, an objective, is measured at checkpointed epochs only, not in every result.
#: The checkpoint-sync warning is off: checkpoints every few epochs are the design.
TUNE_SETTINGS = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_RESULT_BUFFER_LENGTH": "2",
                 "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
                 "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


#: with a storage: Tune snapshots the experiment (and uploads it) every 2 s instead of every
#: >= 10 s. Workers upload checkpoints at once, but a --resume after the driver died starts
#: from the last snapshot: trials that ended, or checkpointed, after it run again from their
#: checkpoint the snapshot knew (their MLflow epochs are not logged twice).
STORAGE_SETTINGS = {"TUNE_GLOBAL_CHECKPOINT_S": "2"}


def tune_settings(with_storage: bool) -> dict[str, str]:
    """Tune's environment for a search: TUNE_SETTINGS, plus STORAGE_SETTINGS with one."""
    return TUNE_SETTINGS | (STORAGE_SETTINGS if with_storage else {})


def announce_dashboard(url: str | None) -> None:
    """Log where the Ray dashboard is and how to authenticate (Ray's token auth)."""
    if not url:
        _logger.info("Ray dashboard: not running (install ray[default] to get it)")
        return
    token = Path.home() / ".ray" / "auth_token"
    how = (f"token auth: send 'Authorization: Bearer <token>' with the token from {token} "
           f"(`ray get-auth-token`)" if token.is_file() else "no auth token configured")
    # Ray gives host:port: masked only once it has a scheme
    _logger.info("Ray dashboard: %s (%s)", masked(url if "://" in url else "http://" + url), how)
