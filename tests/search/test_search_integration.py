"""The search end to end on a real local Ray and real MLflow stores (no mocks).

Marked slow: each starts real trials. Ray comes from the session fixture (num_cpus=2), except
where a test runs the driver as its own process (SIGKILL, cluster).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from spatialsearch.errors import ConfigError
from spatialsearch.search.engine.trainable import train_trial
from spatialsearch.search.run_context import tracking_uri
from spatialsearch.search.runner import run_search, search_trainable
from spatialsearch.search.space.config import search_config_from_dict
from spatialsearch.search.tracking.runs import PARENT_TAG, TRIAL_TAG
from tests.processes import kill_tree
from tests.servers import start_mlflow_server

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _space(tmp_path: Path, **extra) -> dict:
    doc = {
        "name": "it", "num_samples": 6, "max_concurrent_trials": 2, "output": str(tmp_path),
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        "search": {"algorithm": "optuna", "seed": 1},
        "fixed": {"layers": [8], "epochs": 4, "batch": 64},
        "space": {"transport": {"loguniform": [0.1, 300]}, "lr": {"loguniform": [1e-4, 2e-2]},
                  "norm": {"choice": ["l1", "l2"]}},
    }
    doc.update(extra)
    return doc


def _children(client: MlflowClient, experiment: str) -> tuple[list, list]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("spatialsearch.kind") == "search"]
    children = [r for r in runs if r.data.tags.get("spatialsearch.kind") == "trial"]
    return parents, children


def _each_trial_finished_once(client: MlflowClient, children: list, epochs: int) -> None:
    """Every child run FINISHED with epochs 1..epochs of val_accuracy, each logged once."""
    for child in children:
        assert child.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert sorted(steps) == list(range(1, epochs + 1))


def _check_store(client: MlflowClient, experiment: str, trials: int, epochs: int) -> None:
    parents, children = _children(client, experiment)
    assert len(parents) == 1 and len(children) == trials
    assert all(c.data.tags[PARENT_TAG] == parents[0].info.run_id for c in children)
    assert len({c.data.tags[TRIAL_TAG] for c in children}) == trials
    for child in children:
        assert child.info.status == "FINISHED"
        assert {"transport", "lr", "norm", "layers", "epochs"} <= set(child.data.params)
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        steps = sorted(m.step for m in history)
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= epochs
        for name in ("proximity", "transport", "val_accuracy_task0", "val_accuracy_task1"):
            assert len(client.get_metric_history(child.info.run_id, name)) == len(steps)
        artifacts = [a.path for a in client.list_artifacts(child.info.run_id, "checkpoint")]
        assert artifacts == ["checkpoint/best.pt"]
    full = [c for c in children if len(client.get_metric_history(
        c.info.run_id, "val_accuracy")) == epochs]
    assert all("best_test_accuracy" in c.data.metrics for c in full)


def test_search_on_local_ray_logs_one_parent_and_a_child_per_trial(ray_session, tmp_path):
    config = search_config_from_dict(_space(tmp_path))
    summary = run_search(config, quiet=True)
    assert summary.trials == 6 and summary.errored == 0
    assert summary.stopped_early >= 1  # ASHA cut some trials before 4 epochs
    best = Path(summary.best["checkpoint"])
    assert best == tmp_path / "it" / "best" / "best.pt" and best.is_file()
    from spatialsearch.checkpoint import load_checkpoint

    assert load_checkpoint(best).metrics["val_accuracy"] == pytest.approx(
        summary.best["val_accuracy"])
    assert (tmp_path / "it" / "results.csv").read_text().count("\n") == 7
    # checkpoints at ASHA's rungs (1, 2, 4 here) and each trial's last epoch, not every epoch
    for folder in (tmp_path / "it" / "ray" / "it").glob("trial_*"):
        lines = (folder / "result.json").read_text().splitlines()
        reported = [json.loads(line) for line in lines]
        saved = {r["training_iteration"] for r in reported if r.get("checkpoint_dir_name")}
        last = reported[-1]["training_iteration"]
        assert saved == {epoch for epoch in (1, 2, 4) if epoch <= last} | {last}
    client = MlflowClient(tracking_uri(config))
    _check_store(client, "spatialsearch", 6, 4)
    # analyze: 1 (default): the best trial's analysis folder, also as artifacts of its run
    assert summary.analyzed == [str(tmp_path / "it" / "analysis" / summary.best["trial_id"])]
    assert (Path(summary.analyzed[0]) / "positions" / "layers.png").is_file()
    _, children = _children(client, "spatialsearch")
    best_run = next(c for c in children if c.data.tags[TRIAL_TAG] == summary.best["trial_id"])
    names = {a.path for a in client.list_artifacts(best_run.info.run_id, "analysis")}
    assert {"analysis/analysis.json", "analysis/positions", "analysis/score_greedy.png"} <= names
    # the Optuna study of the search, for optuna-dashboard
    import optuna

    study = optuna.load_study(study_name="it",
                              storage=f"sqlite:///{tmp_path / 'it' / 'optuna.db'}")
    assert len(study.trials) == 6
    assert {t.state.name for t in study.trials} <= {"COMPLETE", "PRUNED"}
    # the search report: one HTML page with its figures inlined, also on the parent run
    report = Path(summary.report)
    page = report.read_text()
    for section in ("Parameters vs val_accuracy", "Parameter importances",
                    "val_accuracy vs segregation", "Learning curves", "neuron positions"):
        assert section in page
    completed = sum(t.state.name == "COMPLETE" for t in study.trials)
    assert f"on the {completed} completed trials of 6; trials stopped early" in page
    assert page.count("data:image/png;base64,") >= 3  # trade-off, curves, positions
    assert page.count("Plotly.newPlot") >= 2  # Optuna's parallel coordinates, importances
    assert 'onclick="sortTable(this)"' in page
    parents, _ = _children(client, "spatialsearch")
    names = {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert {"report/report.html", "report/tradeoff.png", "report/curves.png"} <= names
    # artifacts of the default store live in the search folder, not in ./mlruns
    assert list((tmp_path / "it" / "mlartifacts").rglob("best.pt"))
    assert not (Path.cwd() / "mlruns").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(tmp_path: Path, port: int) -> subprocess.Popen:
    """A real `mlflow server` on 127.0.0.1:port, SQLite backend, proxied artifacts."""
    process, _ = start_mlflow_server(f"sqlite:///{tmp_path / 'server.db'}",
                                     "--artifacts-destination", str(tmp_path / "artifacts"),
                                     port=port)
    return process


@pytest.fixture()
def mlflow_server(tmp_path):
    port = _free_port()
    process = _start_server(tmp_path, port)
    yield f"http://127.0.0.1:{port}"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def test_search_logs_to_a_real_mlflow_server(ray_session, tmp_path, mlflow_server):
    config = search_config_from_dict(_space(tmp_path, num_samples=3, tracking_uri=mlflow_server,
                                            experiment="served"))
    summary = run_search(config, quiet=True)
    assert summary.mlflow["not_logged"] == []
    assert not (tmp_path / "it" / "mlflow.db").exists()
    _check_store(MlflowClient(mlflow_server), "served", 3, 4)


def test_unreachable_server_fails_before_any_trial(tmp_path):
    port = _free_port()
    config = search_config_from_dict(_space(tmp_path, tracking_uri=f"http://127.0.0.1:{port}"))
    with pytest.raises(ConfigError, match="tracking_uri: cannot reach the MLflow server"):
        run_search(config, quiet=True)
    assert not (tmp_path / "it").exists()


def _driver(space: Path, *extra: str, quiet: bool = True) -> subprocess.Popen:
    """run_search.py as its own process group (so a test can SIGKILL driver and all), in a
    fresh user's environment: without the RAY_AUTH_MODE an in-process ray.init leaves set."""
    flags = ["--quiet"] if quiet else []
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    return subprocess.Popen([sys.executable, str(ROOT / "run_search.py"), str(space), *flags,
                             *extra], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)


def test_sigkill_of_the_driver_then_resume_runs_every_trial_once(tmp_path):
    doc = _space(tmp_path, num_samples=6, scheduler={"type": "fifo"},
                 fixed={"layers": [32, 32], "epochs": 15, "batch": 16})
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    driver = _driver(space)
    uri = f"sqlite:///{tmp_path / 'it' / 'mlflow.db'}"
    deadline = time.time() + 240
    finished = 0
    while time.time() < deadline and driver.poll() is None:
        time.sleep(0.25)
        # the parent-run record is written once the driver has created the store's tables;
        # opening the store earlier races the driver's schema migration
        if (tmp_path / "it" / "mlflow_parent_run_id").exists():
            try:
                _, children = _children(MlflowClient(uri), "spatialsearch")
            except Exception:  # noqa: BLE001 - store being created by the driver
                continue
            finished = sum(c.info.status == "FINISHED" for c in children)
            if finished >= 2:
                break
    assert driver.poll() is None, driver.stdout.read()
    assert 2 <= finished < 6
    kill_tree(driver.pid)  # the driver dies mid-search, and so does the local Ray it started
    driver.wait()
    resumed = _driver(space, "--resume")
    output, _ = resumed.communicate(timeout=400)
    assert resumed.returncode == 0, output
    summary = json.loads((tmp_path / "it" / "summary.json").read_text())
    assert summary["trials"] == 6 and summary["errored"] == 0
    assert all(row["epochs"] == 15 for row in summary["table"])
    client = MlflowClient(uri)
    parents, children = _children(client, "spatialsearch")
    assert len(parents) == 1 and len(children) == 6
    _each_trial_finished_once(client, children, 15)


def test_search_on_a_cluster_started_with_ray_start(tmp_path):
    port = _free_port()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # --block: the cluster's processes stay children of this one, which the test owns
    head = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port",
         str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard", "false",
         "--disable-usage-stats"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    try:
        said = []
        for line in head.stdout:  # ready when it says so
            said.append(line)
            if "Ray runtime started" in line:
                break
        assert head.poll() is None, "".join(said)
        space = tmp_path / "space.yaml"
        space.write_text(yaml.safe_dump(_space(tmp_path, num_samples=2)))
        driver = _driver(space, "--address", f"127.0.0.1:{port}")
        output, _ = driver.communicate(timeout=300)
        assert driver.returncode == 0, output
        summary = json.loads((tmp_path / "it" / "summary.json").read_text())
        assert summary["trials"] == 2 and summary["errored"] == 0
    finally:
        # stop only this cluster's processes (`ray stop` would stop every Ray on the machine)
        kill_tree(head.pid)
        head.wait()
        Path("/tmp/ray/ray_current_cluster").unlink(missing_ok=True)


def test_diverging_trial_fails_with_its_reason_and_the_search_goes_on(ray_session, tmp_path):
    doc = _space(tmp_path, num_samples=1, max_failures=0, scheduler={"type": "fifo"},
                 search={"algorithm": "grid"},
                 fixed={"layers": [8], "epochs": 2, "optimizer": "SGD", "lr": 0.001},
                 space={"transport": {"grid": [1e30, 0.0]}})
    summary = run_search(search_config_from_dict(doc), quiet=True)
    assert summary.trials == 2 and summary.errored == 1
    assert len(summary.table) == 1 and summary.table[0]["epochs"] == 2
    client = MlflowClient(tracking_uri(search_config_from_dict(doc)))
    _, children = _children(client, "spatialsearch")
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED"]
    failed = next(c for c in children if c.info.status == "FAILED")
    assert "training loss is" in failed.data.tags["spatialsearch.failure"]


def dies_at_epoch_2_on_first_attempt(config, plan):
    """A test-side wrapper of train_trial: its worker SIGKILLs itself when epoch 2 reports,
    unless the trial was restored from a checkpoint (the retry runs on)."""
    from ray import tune

    if tune.get_checkpoint() is None:
        report = tune.report

        def report_or_die(metrics, *args, **kwargs):
            if metrics.get("epoch") == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            report(metrics, *args, **kwargs)

        tune.report = report_or_die  # this worker dies with it
    train_trial(config, plan)


def test_a_dying_worker_is_retried_from_its_checkpoint(ray_session, tmp_path):
    config = search_config_from_dict(_space(
        tmp_path, num_samples=2, max_failures=1, scheduler={"type": "fifo"},
        fixed={"layers": [8], "epochs": 4}, checkpoint_every=1))
    summary = run_search(config, quiet=True,
                         trainable=search_trainable(config, dies_at_epoch_2_on_first_attempt))
    assert summary.errored == 0 and all(r["epochs"] == 4 for r in summary.table)
    client = MlflowClient(f"sqlite:///{tmp_path / 'it' / 'mlflow.db'}")
    _, children = _children(client, "spatialsearch")
    assert len(children) == 2
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val_accuracy")]
        assert sorted(steps) == [1, 2, 3, 4]  # epoch 2 died unreported, then ran once more


def test_mlflow_server_killed_mid_search_then_sync_mlflow(tmp_path):
    """The search completes without its store, says what it could not log, and
    `spatialsearch sync-mlflow` logs it all once the server is back."""
    port = _free_port()
    server = _start_server(tmp_path, port)
    uri = f"http://127.0.0.1:{port}"
    doc = _space(tmp_path, num_samples=4, scheduler={"type": "fifo"},
                 fixed={"layers": [32, 32], "epochs": 15, "batch": 16})
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    driver = _driver(space, "--tracking-uri", uri)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and driver.poll() is None:
            time.sleep(0.25)
            try:
                _, children = _children(MlflowClient(uri), "spatialsearch")
            except Exception:  # noqa: BLE001 - experiment not created yet
                continue
            if any(len(c.data.metrics) for c in children):
                break
        os.killpg(server.pid, signal.SIGKILL)  # the store dies mid-search
        server.wait()
        output, _ = driver.communicate(timeout=400)
    finally:
        kill_tree(driver.pid)  # what the driver's Ray left behind, if anything
    assert driver.returncode == 0, output
    assert "re-log them with: spatialsearch sync-mlflow" in output
    summary = json.loads((tmp_path / "it" / "summary.json").read_text())
    assert summary["trials"] == 4 and summary["errored"] == 0
    assert summary["mlflow"]["not_logged"]
    server = _start_server(tmp_path, port)  # back, same store
    try:
        synced = subprocess.run(
            [str(Path(sys.executable).with_name("spatialsearch")), "sync-mlflow",
             str(tmp_path / "it")], capture_output=True, text=True, timeout=300)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        client = MlflowClient(uri)
        parents, children = _children(client, "spatialsearch")
        assert len(parents) == 1 and len(children) == 4
        _each_trial_finished_once(client, children, 15)
        for child in children:
            assert [a.path for a in client.list_artifacts(child.info.run_id, "checkpoint")] == [
                "checkpoint/best.pt"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_unwritable_output_is_a_clear_error_before_ray_starts(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    config = search_config_from_dict(_space(blocker))
    with pytest.raises(ConfigError, match=r"output: cannot write to .* is not a folder"):
        run_search(config, quiet=True)
    assert blocker.read_text() == "x"


def test_ray_dashboard_api_shows_the_running_trials_with_the_token(tmp_path):
    """The driver prints where the dashboard is; its HTTP API on 127.0.0.1, asked with the
    token of Ray's token auth, lists the trials running at that moment."""
    import re
    import threading
    import urllib.error
    import urllib.request

    doc = _space(tmp_path, num_samples=4, scheduler={"type": "fifo"},
                 fixed={"layers": [64, 64], "epochs": 40, "batch": 16})
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    driver = _driver(space, quiet=False)  # not quiet: it prints the dashboard's URL
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(driver.stdout), daemon=True).start()
    try:
        url = None
        deadline = time.time() + 120
        while url is None and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
            found = [re.search(r"Ray dashboard: (http://\S+)", line) for line in list(lines)]
            url = next((f.group(1) for f in found if f), None)
        assert url is not None, "".join(lines)
        assert url.startswith("http://127.0.0.1:")  # bound to loopback by default
        announced = next(line for line in lines if "Ray dashboard:" in line)
        token = Path.home() / ".ray" / "auth_token"
        token_auth = "token auth:" in announced
        # the driver says which it is, and says so truthfully
        assert token_auth == token.is_file(), announced
        assert token_auth or "no auth token configured" in announced, announced
        headers = ({"Authorization": f"Bearer {token.read_text().strip()}"}
                   if token_auth else {})
        alive: list[dict] = []
        while not alive and time.time() < deadline:
            request = urllib.request.Request(f"{url}/api/v0/actors?limit=100&detail=1",
                                             headers=headers)
            with urllib.request.urlopen(request, timeout=10) as response:
                actors = json.loads(response.read())["data"]["result"]["result"]
            alive = [a for a in actors
                     if a["state"] == "ALIVE" and a.get("repr_name") == "train_trial"]
            time.sleep(0.5)
        assert 1 <= len(alive) <= 2  # max_concurrent_trials
        if token_auth:  # where the token is, yes; the token itself, never; and without it
            assert token.read_text().strip() not in "".join(lines)  # the API refuses
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}/api/v0/actors", timeout=10)
            assert refused.value.code == 401
        else:  # no token auth: the API answers without one (alive was listed so)
            assert headers == {}
    finally:
        kill_tree(driver.pid)
        driver.wait()


def test_disk_full_mid_search_is_one_clear_error_and_finished_trials_are_kept(
        ray_session, tmp_path, capsys):
    """The search folder sits on a 6 MiB tmpfs that fills while trials run: room for the
    MLflow store (~1 MB) and two trials' 10 checkpoints (~2 MB each), not for four."""
    from spatialsearch.checkpoint import load_checkpoint
    from spatialsearch.cli import main

    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(small)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        doc = _space(small, num_samples=4, max_failures=0, analyze=0, checkpoint_every=1,
                     scheduler={"type": "fifo"}, search={"algorithm": "random", "seed": 1},
                     fixed={"layers": [64], "epochs": 10})
        space = tmp_path / "space.yaml"
        space.write_text(yaml.safe_dump(doc))
        code = main(["search", str(space), "--quiet"])
        err = capsys.readouterr().err
        assert code == 1
        # Ray reports each failed trial (with the trial's traceback) as it happens; the
        # program itself ends with one line saying what happened and what to do
        last = err.strip().splitlines()[-1]
        assert err.count("spatialsearch: error:") == 1
        assert last.startswith("spatialsearch: error: output: writing the search to")
        assert "MiB free there" in last and "continue with --resume" in last
        # finished: ran all its epochs and was not failed by Ray (a trial that died while
        # its 10th checkpoint was being copied has 10 folders, the last one cut short)
        finished = [trial for trial in (small / "it" / "ray" / "it").glob("trial_*")
                    if len(list(trial.glob("checkpoint_*"))) == 10
                    and not (trial / "error.txt").exists()]
        assert finished  # at least one trial ran all its epochs before the disk filled ...
        for trial in finished:  # ... and its checkpoint is intact
            last = sorted(trial.glob("checkpoint_*"))[-1]
            assert load_checkpoint(last / "best.pt").epoch >= 1
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _journal_state(path: Path) -> dict:
    """MO-ASHA's journal (one JSON line per decision) as rungs -> trial -> vector, in the
    order decided, and the trials stopped."""
    state: dict = {"rungs": {}, "stopped": []}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        state["rungs"].setdefault(str(entry["rung"]), {})[entry["trial"]] = entry["vector"]
        if entry["stopped"]:
            state["stopped"].append(entry["trial"])
    return state


def test_moasha_rungs_clock_and_parent_run_survive_a_sigkill_and_resume_elsewhere(tmp_path):
    """SIGKILL the driver after MO-ASHA's first rung decisions, then --resume as another
    machine would: the same shared-folder storage and MLflow server, an empty local output
    folder. The rungs, the stopped trials, the hypervolume's clock and the MLflow parent run
    are those from before the crash, and every trial judged at a rung after the resume was
    judged against the vectors recorded before it (replaying the saved rungs in order gives
    the same decisions, and each stopped trial ran exactly to its rung)."""
    import numpy as np
    from pyarrow.fs import LocalFileSystem

    from spatialsearch.pareto import oriented
    from spatialsearch.search.engine.moasha import continues
    from spatialsearch.search.engine.tune_space import MOASHA_STATE
    from spatialsearch.search.places.driver_record import read_record
    from spatialsearch.search.places.place import Place

    server, uri = start_mlflow_server(f"sqlite:///{tmp_path / 'server.db'}",
                                      "--artifacts-destination", str(tmp_path / "artifacts"))
    try:
        doc = _space(tmp_path / "first", num_samples=10, tracking_uri=uri,
                     storage=str(tmp_path / "shared"),
                     scheduler={"type": "moasha", "grace_period": 1, "reduction_factor": 2},
                     objectives=[{"metric": "val_accuracy", "mode": "max"},
                                 {"metric": "segregation", "mode": "max"}],
                     fixed={"layers": [16], "epochs": 6, "batch": 32})
        space = tmp_path / "space.yaml"
        space.write_text(yaml.safe_dump(doc))
        kept = tmp_path / "shared" / "it" / "resume"
        driver = _driver(space)
        deadline, before, clock = time.time() + 240, None, None
        while time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
            if (kept / MOASHA_STATE).is_file() and (kept / "driver.json").is_file():
                saved = _journal_state(kept / MOASHA_STATE)
                clock = read_record(Place(LocalFileSystem(), str(kept)))
                if len(saved["rungs"]["1"]) >= 4 and clock.parent_run_id:
                    before = saved
                    break
        assert before is not None and driver.poll() is None, driver.stdout.read()
        kill_tree(driver.pid)
        driver.wait()
        resumed = _driver(space, "--resume", "--output", str(tmp_path / "elsewhere"))
        output, _ = resumed.communicate(timeout=400)
        assert resumed.returncode == 0, output
        after = _journal_state(kept / MOASHA_STATE)
        parents, _ = _children(MlflowClient(uri), "spatialsearch")
        assert [p.info.run_id for p in parents] == [clock.parent_run_id]
    finally:
        kill_tree(server.pid)
    for rung, recorded in before["rungs"].items():  # the records before come first, unchanged
        assert list(after["rungs"][rung].items())[:len(recorded)] == list(recorded.items())
    # judged after the resume (trials Tune's last snapshot had not seen were recorded at the
    # rung before the crash, are started anew after it, and count as evaluations)
    assert len(after["rungs"]["1"]) > len(before["rungs"]["1"])
    assert set(before["stopped"]) <= set(after["stopped"])
    stopped_at: dict[str, int] = {}
    for rung, recorded in sorted(after["rungs"].items(), key=lambda item: int(item[0])):
        vectors = [[np.nan if v is None else v for v in vector] for vector in recorded.values()]
        points = oriented(np.array(vectors), ["max", "max"])
        for index, trial in enumerate(recorded):
            if not continues(points[:index], points[index], 2):
                stopped_at.setdefault(trial, int(rung))
    assert set(stopped_at) == set(after["stopped"])
    summary = json.loads((tmp_path / "elsewhere" / "it" / "summary.json").read_text())
    epochs = {row["trial_id"]: row["epochs"] for row in summary["table"]}
    assert {t: epochs[t] for t in stopped_at if t in epochs} == {
        t: rung for t, rung in stopped_at.items() if t in epochs}
    assert len(epochs) == 10 and set(stopped_at) & set(epochs)
    assert all(epochs[t] == 6 for t in epochs if t not in stopped_at)
    assert read_record(Place(LocalFileSystem(), str(kept))).started == clock.started
    assert all(point["seconds"] >= 0 for point in summary["pareto"]["history"])
