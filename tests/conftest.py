"""Shared fixtures: one local Ray for the session (num_cpus=2), tiny configs and data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray of 2 CPUs and no GPU, started once and shut down at the end."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def ray_sessions() -> set[str]:
    """Names of the Ray session folders under /tmp/ray (one per local cluster started)."""
    from pathlib import Path

    return {p.name for p in Path("/tmp/ray").glob("session_2*")}


def kill_ray_sessions(names: set[str]) -> None:
    """SIGKILL every process of those Ray sessions: what a killed driver leaves behind."""
    import subprocess

    for name in names:
        subprocess.run(["pkill", "-9", "-f", name], check=False)
