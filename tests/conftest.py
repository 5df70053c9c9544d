"""Shared fixtures: one local Ray for the session (num_cpus=2), tiny configs and data."""

from __future__ import annotations

import os

import pytest

from tests.ids import plain_id

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def pytest_make_parametrize_id(config, val, argname):  # noqa: ARG001 (pytest's hook signature)
    """Default ids of text parameters in plain characters too (tests/ids.py)."""
    if isinstance(val, bytes):
        val = val.decode("ascii", "replace")
    return plain_id(val) if isinstance(val, str) else None


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray of 2 CPUs and no GPU, started once and shut down at the end."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 for the session (tests/s3_server.py); buckets are the
    tests' own (s3_server.filesystem(endpoint).create_dir(bucket))."""
    from tests.s3_server import serve

    yield from serve(tmp_path_factory.mktemp("moto") / "moto.log")


@pytest.fixture(scope="session")
def postgres_admin():
    """A real PostgreSQL server on 127.0.0.1 for the session (tests/postgres_server.py),
    skipped with the reason where it cannot run; its admin URI."""
    from tests.postgres_server import serve, why_not

    reason = why_not()
    if reason:
        pytest.skip(reason)
    yield from serve()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request, tmp_path):
    """The same test against each database store MLflow runs on: a new SQLite file, and a new
    database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mlflow.db'}"
    from tests.postgres_server import new_database

    return new_database(request.getfixturevalue("postgres_admin"))
