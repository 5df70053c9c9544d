"""What users see: the MLflow UI in a real headless Chromium over a finished search.

Needs Debian's chromium (/usr/bin/chromium); `make test` installs it when run as root.
Screenshots land in the test's tmp folder (and, with SPATIALSEARCH_SCREENSHOTS=DIR, in DIR).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from spatialsearch.search.runner import run_search
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.tracking.runs import TRIAL_TAG
from spatialsearch.search.tracking.store import KIND_OF_EXPERIMENT, MODEL_TRAINING
from tests.servers import start_mlflow_server

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=15000", "--window-size=1500,950"]


def _chromium(url: str, profile: Path, *, screenshot: Path | None = None) -> str:
    """The DOM after 15 s of virtual time (the MLflow UI renders asynchronously)."""
    extra = [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url],
                          capture_output=True, text=True, timeout=120)
    return done.stdout


def test_mlflow_ui_shows_the_search_its_runs_metrics_and_plots(ray_session, tmp_path):
    config = search_config_from_dict({
        "name": "ui", "num_samples": 3, "output": str(tmp_path), "scheduler": {"type": "fifo"},
        "search": {"algorithm": "random", "seed": 1}, "fixed": {"layers": [16], "epochs": 3},
        "space": {"transport": {"loguniform": [0.1, 10]}}})
    summary = run_search(config, quiet=True)
    server, base = start_mlflow_server(f"sqlite:///{tmp_path / 'ui' / 'mlflow.db'}")
    try:
        client = MlflowClient(base)
        experiment = client.get_experiment_by_name("spatialsearch").experiment_id
        runs = client.search_runs([experiment])
        best = next(r for r in runs if r.data.tags.get(TRIAL_TAG) == summary.best["trial_id"])
        # the model-training view of the UI (not GenAI's), each run named by its trial id
        tags = client.get_experiment(experiment).tags
        assert tags[KIND_OF_EXPERIMENT] == MODEL_TRAINING
        assert all(r.info.run_name == r.data.tags[TRIAL_TAG] for r in runs
                   if TRIAL_TAG in r.data.tags)
        shots = Path(os.environ.get("SPATIALSEARCH_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)

        runs_page = f"{base}/#/experiments/{experiment}/runs"
        dom = _chromium(runs_page, tmp_path / "p1")
        parent = next(r for r in runs if r.data.tags.get("spatialsearch.kind") == "search")
        assert f">{parent.info.run_name}<" in dom  # the search, its trials nested below
        assert f"runs/{parent.info.run_id}" in dom
        _chromium(runs_page, tmp_path / "p2", screenshot=shots / "mlflow_runs.png")

        run_page = f"{base}/#/experiments/{experiment}/runs/{best.info.run_id}"
        dom = _chromium(run_page, tmp_path / "p3")
        assert f">{best.info.run_name}<" in dom
        assert "val_accuracy" in dom and "transport" in dom
        _chromium(run_page, tmp_path / "p4", screenshot=shots / "mlflow_run.png")

        plot = "analysis/positions/layers.png"
        artifact_page = f"{run_page}/artifacts/{urllib.parse.quote(plot)}"
        dom = _chromium(artifact_page, tmp_path / "p5")
        assert f'<img alt="{plot}"' in dom  # the position plot is rendered on the page
        _chromium(artifact_page, tmp_path / "p6", screenshot=shots / "mlflow_plot.png")
        for name in ("mlflow_runs.png", "mlflow_run.png", "mlflow_plot.png"):
            assert (shots / name).stat().st_size > 20_000
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
