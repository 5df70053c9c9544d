"""tracking_uri: postgresql://... , MLflow's database store for clusters, against a real
PostgreSQL server (tests/postgres_server.py): a search logs every trial there, its password
is in no output and no file, and a wrong password is refused before Ray starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from spatialsearch.cli import main
from tests.postgres_server import PASSWORD, new_database


def _all_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def _space(tmp_path: Path, uri: str, name: str = "pg") -> Path:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": name, "num_samples": 2, "output": str(tmp_path / "out"), "tracking_uri": uri,
        "scheduler": {"type": "fifo"}, "fixed": {"layers": [6], "epochs": 2, "batch": 64},
        "space": {"transport": {"loguniform": [0.1, 10]}}}))
    return space


def test_a_wrong_password_is_refused_before_ray_starts_and_masked(tmp_path, capsys,
                                                                   postgres_admin):
    uri = new_database(postgres_admin).replace(PASSWORD, "not-the-password")
    assert main(["search", str(_space(tmp_path, uri))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not-the-password" not in err and "***@" in err, err
    assert err.startswith("spatialsearch: error: tracking_uri: cannot reach the MLflow store")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_search_logs_to_postgresql_and_keeps_the_password_out(tmp_path, capsys,
                                                                ray_session, postgres_admin):
    uri = new_database(postgres_admin)
    assert main(["search", str(_space(tmp_path, uri))]) == 0
    captured = capsys.readouterr()
    folder = tmp_path / "out" / "pg"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["mlflow"]["tracking_uri"] == uri.replace(f"spatial:{PASSWORD}@", "***@")
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("spatialsearch")
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(trials) == 2 and all(r.info.status == "FINISHED" for r in trials)
    assert all(len(client.get_metric_history(r.info.run_id, "val_accuracy")) == 2
               for r in trials)
    assert PASSWORD not in captured.out + captured.err
    assert PASSWORD not in _all_text(folder)
    artifacts = client.list_artifacts(trials[0].info.run_id)
    assert artifacts and str(folder / "mlartifacts") in client.get_experiment(
        experiment.experiment_id).artifact_location
    assert not (Path.cwd() / "mlruns").exists()
