"""What a first-time user sees, in a real headless Chromium with a fresh profile each time,
after a real multi-objective search: the MLflow UI at the address the search's `browse:` line
prints, started with the command it prints, and optuna-dashboard through `spatialsearch
dashboard <folder>`. Servers are started here and stopped by their pid.

Needs Debian's chromium (/usr/bin/chromium); `make test` installs it when run as root.
SPATIALSEARCH_SCREENSHOTS=docs makes the screenshots the README shows.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

from spatialsearch.cli import main
from tests.processes import kill_tree
from tests.s3_server import free_port
from tests.test_ui import CHROMIUM, _chromium

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it as root)")]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A small Pareto search (MO-ASHA stops some trials: PRUNED in the study); the lines it
    printed and its folder."""
    root = tmp_path_factory.mktemp("viewers")
    space = root / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": "viewed", "num_samples": 8, "output": str(root), "analyze": 0,
        "objectives": [{"metric": "val_accuracy", "mode": "max"},
                       {"metric": "segregation", "mode": "max"}],
        "scheduler": {"type": "moasha", "grace_period": 1, "reduction_factor": 2},
        "search": {"algorithm": "optuna", "seed": 3},
        "fixed": {"layers": [16], "epochs": 4},
        "space": {"transport": {"loguniform": [0.1, 10]},
                  "proximity": {"loguniform": [0.01, 1]}}}))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["search", str(space), "--quiet"]) == 0
    return out.getvalue(), root / "viewed"


def _serve(command: list[str], probe: str) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    for _ in range(240):
        try:
            urllib.request.urlopen(probe, timeout=2).close()  # noqa: S310 - 127.0.0.1
            return process
        except OSError:
            time.sleep(0.5)
    kill_tree(process.pid)
    raise RuntimeError(f"{command[0]} did not answer {probe}")


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("SPATIALSEARCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def test_the_printed_mlflow_command_and_address_open_on_the_searchs_trials(search, tmp_path):
    printed, folder = search
    browse = next(line for line in printed.splitlines() if line.startswith("browse: "))
    found = re.fullmatch(r"browse: (mlflow ui .*--port) 5000, then open "
                         r"http://127\.0\.0\.1:5000/(#/experiments/\d+/runs\?viewStateShareKey="
                         r"spatialsearch-viewed)", browse)
    assert found, browse
    port = free_port()
    command = shlex.split(found.group(1)) + [str(port)]
    assert command[:2] == ["mlflow", "ui"] and "127.0.0.1" in command
    server = _serve([str(BIN / "mlflow"), *command[1:]], f"http://127.0.0.1:{port}/health")
    try:
        base = f"http://127.0.0.1:{port}"
        dom = _chromium(f"{base}/{found.group(2)}", tmp_path / "fresh1")
        trials = [t.user_attrs["trial_id"] for t in optuna.load_study(
            study_name="viewed", storage=f"sqlite:///{folder / 'optuna.db'}").trials]
        assert len(trials) == 8 and all(f">{trial}<" in dom for trial in trials)
        assert "Training runs" in dom and "You're viewing a shared view" in dom
        assert ">val_accuracy<" in dom and ">segregation<" in dom  # both objectives' columns
        assert ">transport<" in dom and ">proximity<" in dom      # and the searched keys
        _chromium(f"{base}/{found.group(2)}", tmp_path / "fresh2",
                  screenshot=_shots(tmp_path) / "mlflow_ui_runs.png")
        # the experiment's own runs page: the search's parent run, its trials below it
        dom = _chromium(f"{base}/{found.group(2).split('?')[0]}", tmp_path / "fresh3")
        assert ">viewed<" in dom
    finally:
        kill_tree(server.pid)


def test_spatialsearch_dashboard_shows_objectives_pareto_front_and_pruned_trials(search,
                                                                                  tmp_path):
    printed, folder = search
    assert f"study: spatialsearch dashboard {folder} (optuna-dashboard on 127.0.0.1)" in printed
    port = free_port()
    server = _serve([str(BIN / "spatialsearch"), "dashboard", str(folder), "--port", str(port)],
                    f"http://127.0.0.1:{port}/api/studies")
    try:
        study = optuna.load_study(study_name="viewed", storage=f"sqlite:///{folder / 'optuna.db'}")
        pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
        assert study.metric_names == ["val_accuracy", "segregation"] and pruned >= 1
        base = f"http://127.0.0.1:{port}/dashboard/studies/{study._study_id}"
        dom = _chromium(base, tmp_path / "fresh1")
        assert "Pareto Front" in dom and ">val_accuracy<" in dom and ">segregation<" in dom
        _chromium(base, tmp_path / "fresh2", screenshot=_shots(tmp_path) / "optuna_dashboard.png")
        dom = _chromium(f"{base}/trials", tmp_path / "fresh3")
        # a chip per PRUNED trial in the list, and one more in the details of the first trial
        # (open by default) when it is PRUNED
        first = study.trials[0].state == optuna.trial.TrialState.PRUNED
        assert dom.count(">Pruned<") == pruned + first
        assert f"{len(study.trials)} Trials" in dom
    finally:
        kill_tree(server.pid)


def test_the_dashboard_refuses_a_folder_without_a_study(tmp_path, capsys):
    assert main(["dashboard", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no optuna.db" in err
