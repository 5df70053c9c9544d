"""Where a search logs: an MLflow store, checked and opened.

A new SQLite store is a copy of an empty one built once per machine and MLflow version
(seed_sqlite_store): MLflow's schema migrations cost ~1 s of CPU per new store. A database
store (postgresql://, mysql://, mssql://) is reached once, with a short timeout, before MLflow
opens it (reach_database). An experiment spatialsearch creates is tagged for the MLflow UI's
model-training view.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked

_logger = logging.getLogger(__name__)
SQLITE_PREFIX = "sqlite:///"
#: the MLflow UI files an experiment under its model-training view (not GenAI) by this tag
KIND_OF_EXPERIMENT, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


class Store(NamedTuple):
    """Where a search logs: tracking URI, experiment, artifact folder of a new experiment."""

    uri: str
    experiment: str
    artifacts: Path | None = None


def connect(tracking_uri: str, experiment: str,
            artifact_folder: Path | None = None) -> tuple[MlflowClient, str]:
    """Client and experiment id; a clear ConfigError when the store cannot be reached.

    artifact_folder: where a new experiment keeps its artifacts (for the default SQLite store:
    inside the search folder; MLflow's own default would be ./mlruns of the current folder).
    """
    if tracking_uri.startswith(SQLITE_PREFIX):
        seed_sqlite_store(Path(tracking_uri[len(SQLITE_PREFIX):]))
    elif tracking_uri.split(":", 1)[0].split("+")[0] in DATABASE_SCHEMES:
        reach_database(tracking_uri)
    location = artifact_folder.resolve().as_uri() if artifact_folder is not None else None
    try:
        client = MlflowClient(tracking_uri)  # a database store opens its driver here
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(
            experiment, artifact_location=location, tags={KIND_OF_EXPERIMENT: MODEL_TRAINING})
        if found and KIND_OF_EXPERIMENT not in found.tags:
            client.set_experiment_tag(experiment_id, KIND_OF_EXPERIMENT, MODEL_TRAINING)
    except (MlflowException, OSError, ConnectionError, ImportError) as error:
        reason = masked(str(error).splitlines()[0][:300])
        raise ConfigError(f"tracking_uri: cannot reach the MLflow store "
                          f"{masked(tracking_uri)!r}: {reason}") from None
    return client, experiment_id


#: database stores MLflow opens itself (through SQLAlchemy), reached once before it does
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")
CONNECT_SECONDS = 10


def reach_database(uri: str) -> None:
    """One connection to a database store, with a short timeout: MLflow retries a failing
    one 10 times with backoff (~100 s) before it gives up. Raises ConfigError with the
    driver's first line, masked."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": CONNECT_SECONDS}
                                          if uri.startswith(("postgresql", "mysql")) else {})
        with engine.connect():
            pass
        engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as error:
        cause = getattr(error, "orig", None) or error
        reason = masked(str(cause).strip().splitlines()[0][:300])
        raise ConfigError(f"tracking_uri: cannot reach the MLflow store {masked(uri)!r}: "
                          f"{reason}") from None


def seed_sqlite_store(path: Path) -> None:
    """Start a new SQLite store as a copy of an empty one; an existing store is left alone.

    The empty store is built once per machine and MLflow version, in ~/.cache/spatialsearch
    (or $XDG_CACHE_HOME), and copied after that. When the cache cannot be written, MLflow
    builds the store as usual.
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


def check_store(uri: str, experiment: str) -> None:
    """A clear ConfigError now if the store cannot be used: a server's /health; a database
    reached once; opened, without creating the experiment (the search creates it later,
    with its artifact folder)."""
    if uri.startswith(("http://", "https://")):
        check_server(uri)
        return
    if uri.split(":", 1)[0].split("+")[0] in DATABASE_SCHEMES:
        reach_database(uri)
    if uri.startswith(SQLITE_PREFIX):
        seed_sqlite_store(Path(uri[len(SQLITE_PREFIX):]))
    try:
        MlflowClient(uri).get_experiment_by_name(experiment)
    except (MlflowException, OSError, ConnectionError, ImportError) as error:
        reason = masked(str(error).splitlines()[0][:300])
        raise ConfigError(f"tracking_uri: cannot reach the MLflow store {masked(uri)!r}: "
                          f"{reason}") from None


def check_server(uri: str) -> None:
    """A quick GET of the MLflow server's /health (MLflow's client would retry for minutes).
    User-info in the URI goes as HTTP basic auth, as MLflow's client sends it."""
    parts = urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    request = urllib.request.Request(urlunsplit(parts._replace(netloc=host)).rstrip("/")
                                     + "/health")
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status != 200:
                raise ConfigError(f"tracking_uri: {masked(uri)!r} answered {response.status} "
                                  f"on /health")
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ConfigError(f"tracking_uri: cannot reach the MLflow server {masked(uri)!r}: "
                          f"{masked(str(error))}; start it (mlflow server --host 127.0.0.1) "
                          f"or fix the URI") from None
