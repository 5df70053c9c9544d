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
