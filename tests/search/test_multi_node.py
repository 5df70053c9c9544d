"""A search on a real Ray cluster of three nodes on this machine (`ray start`, each node with
its own temp dir), with its storage in a real S3-compatible server (moto) on 127.0.0.1: no
checkpoint passes through a shared local folder.

The head node has no `trainer` resource, the two worker nodes one each, and the search asks
for it (resources.custom): every trial runs on a worker node. Mid-search one worker node is
killed (its raylet and every process it started); its trials are retried on the other node
from their checkpoints in S3. Then the driver is SIGKILLed, and `--resume` with the same
storage finishes every trial once, with one MLflow run per trial.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.processes import kill_tree, tree
from tests.s3_server import filesystem, free_port, objects

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
#: the head notices a dead node within ~5 s (Ray's default is ~30 s)
EPOCHS = 40  # ~0.2 s each: a trial lasts long enough to be caught on node A
HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}


def _node(temp_dir: Path, *flags: str) -> subprocess.Popen:
    """`ray start --block` (its processes stay this test's children); ready once it says so.
    A joining node authenticates with the head's token (~/.ray/auth_token) under
    RAY_AUTH_MODE=token, as the README's runbook says."""
    temp_dir.mkdir(parents=True)
    joining = {} if "--head" in flags else {"RAY_AUTH_MODE": "token"}
    node = subprocess.Popen(
        [RAY, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-gpus", "0",
         "--disable-usage-stats", "--temp-dir", str(temp_dir), *flags],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, **HEALTH, **joining})
    said = []
    for line in node.stdout:
        said.append(line)
        if "Ray runtime started" in line:
            return node
    raise AssertionError("".join(said))


def _driver(space: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    return subprocess.Popen([sys.executable, str(ROOT / "run_search.py"), str(space), "--quiet",
                             *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)


def _trials_on(node: subprocess.Popen) -> set[str]:
    """The trial folders the node's trial processes work in (Tune's trial working dir)."""
    found = set()
    for pid in _trial_processes(node):
        try:
            found.add(Path(os.readlink(f"/proc/{pid}/cwd")).name)
        except OSError:
            continue
    return {name for name in found if name.startswith("trial_")}


def _trial_processes(node: subprocess.Popen) -> list[int]:
    """The node's processes running a trial (Ray names an actor's process ray::<class>)."""
    found = []
    for pid in tree(node.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::") and "IDLE" not in command and "Agent" not in command:
            found.append(pid)
    return found


def _stored(endpoint: str, prefix: str, part: str) -> list[str]:
    return sorted(p for p in objects(endpoint, prefix) if part in p)


def _results(endpoint: str, experiment: str, trial: str) -> list[dict]:
    """A trial's results as its result.json in S3 holds them now."""
    path = f"{experiment}/{trial}/result.json"
    if path not in objects(endpoint, f"{experiment}/{trial}"):
        return []
    return [json.loads(line) for line in stored_text(endpoint, path).splitlines() if line]


def _trials_of(endpoint: str, experiment: str, pids: set[int], epochs: range) -> set[str]:
    """The trial folders whose last result in S3 came from one of pids, at one of epochs."""
    trials = {p.split("/")[5] for p in objects(endpoint, experiment) if "/trial_" in p}
    last = {t: _results(endpoint, experiment, t)[-1:] for t in trials}
    return {t for t, r in last.items() if r and r[0]["pid"] in pids and r[0]["epoch"] in epochs}


def _wait(what: str, condition, driver: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert driver.poll() is None, f"driver ended before {what}: {driver.stdout.read()}"
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_search_on_three_nodes_with_s3_storage_survives_a_node_and_the_driver(
        tmp_path, s3_endpoint):
    filesystem(s3_endpoint).create_dir("cluster")
    port = free_port()
    nodes = []
    temp = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # Ray's socket paths: < 108 bytes
    try:
        nodes.append(_node(temp / "head", "--head", "--port", str(port), "--num-cpus", "1",
                           "--include-dashboard", "false"))
        for name in ("node-a", "node-b"):
            nodes.append(_node(temp / name, "--address", f"127.0.0.1:{port}",
                               "--num-cpus", "1", "--resources", '{"trainer": 1}'))
        head, node_a, node_b = nodes
        doc = {"name": "mn", "num_samples": 4, "max_concurrent_trials": 2, "max_failures": 3,
               "output": str(tmp_path), "checkpoint_every": 4,
               "scheduler": {"type": "fifo"}, "search": {"algorithm": "random", "seed": 3},
               "resources": {"cpu": 1, "custom": {"trainer": 1}},
               "storage": {"uri": "s3://cluster/searches", "endpoint": s3_endpoint},
               "fixed": {"layers": [64, 64], "epochs": EPOCHS, "batch": 16},
               "space": {"lr": {"loguniform": [1e-3, 1e-2]}}, "analyze": 1}
        space = tmp_path / "space.yaml"
        space.write_text(yaml.safe_dump(doc))
        driver = _driver(space, "--address", f"127.0.0.1:{port}")
        experiment = "cluster/searches/mn/ray/mn"

        # node A trains a trial whose checkpoint the driver knows (its checkpointed epoch
        # is in the trial's results in S3): kill the node, its raylet and its workers
        on_a: set[str] = set()

        def node_a_trial_checkpointed() -> bool:
            on_a.clear()  # two checkpoints in S3: the driver knows the first
            on_a.update(t for t in _trials_on(node_a)
                        if len(_stored(s3_endpoint, f"{experiment}/{t}/", "best.pt")) >= 2)
            return bool(on_a)

        _wait("a checkpointed trial on node A", node_a_trial_checkpointed, driver)
        assert not _trial_processes(head), "a trial ran on the head node"
        killed = kill_tree(node_a.pid)
        # the driver retries it on node B, from that checkpoint: wait until its results
        # there are in S3 (and so in the experiment's snapshot that --resume reads)
        _wait("the retry on node B", lambda: any(
            results and results[-1]["pid"] not in killed
            for results in map(lambda t: _results(s3_endpoint, experiment, t), on_a)), driver)
        kill_tree(driver.pid)  # the driver dies mid-search; the cluster lives on
        driver.wait()
        assert not (tmp_path / "mn" / "ray").exists()  # nothing of Ray's went to the disk

        resumed = _driver(space, "--resume", "--address", f"127.0.0.1:{port}")
        output, _ = resumed.communicate(timeout=400)
        assert resumed.returncode == 0, output
    finally:
        for node in reversed(nodes):  # only this cluster: `ray stop` would stop every Ray
            kill_tree(node.pid)
            node.wait()
        shutil.rmtree(temp, ignore_errors=True)

    summary = json.loads((tmp_path / "mn" / "summary.json").read_text())
    assert summary["trials"] == 4 and summary["errored"] == 0, [
        (r["trial_id"], r["epochs"], r["params"]) for r in summary["table"]]
    assert all(row["epochs"] == EPOCHS for row in summary["table"])
    assert summary["storage"]["folder"] == "s3://cluster/searches/mn"
    assert all(row["checkpoint"].startswith(f"s3://{experiment}/trial_")
               for row in summary["table"])
    stored = objects(s3_endpoint, "cluster/searches/mn")
    for name in ("results.csv", "summary.json", "best/best.pt", "report/report.html"):
        assert f"cluster/searches/mn/{name}" in stored, sorted(stored)
    # every trial's results, in S3: 16 epochs; the one that ran on the killed node went on
    # from its checkpoint (not from epoch 1), in a process that was not on that node
    for trial in {p.split("/")[5] for p in stored if p.startswith(experiment + "/trial_")}:
        assert _results(s3_endpoint, experiment, trial)[-1]["epoch"] == EPOCHS, trial
    for trial in on_a:
        results = _results(s3_endpoint, experiment, trial)
        last_on_a = max(i for i, r in enumerate(results) if r["pid"] in killed)
        after = results[last_on_a + 1]
        assert after["pid"] not in killed
        assert after["epoch"] > 1 and (after["epoch"] - 1) % 4 == 0, [
            (r["epoch"], r["pid"]) for r in results]
    # MLflow: one run per trial, every epoch once
    client = MlflowClient(f"sqlite:///{tmp_path / 'mn' / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("spatialsearch").experiment_id
    runs = client.search_runs([experiment_id], max_results=100)
    trials = [r for r in runs if r.data.tags.get("spatialsearch.kind") == "trial"]
    assert len(trials) == 4 and all(r.info.status == "FINISHED" for r in trials)
    for run in trials:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert sorted(steps) == list(range(1, EPOCHS + 1))
        assert client.list_artifacts(run.info.run_id, "checkpoint")  # fetched from S3


def stored_text(endpoint: str, path: str) -> str:
    with filesystem(endpoint).open_input_stream(path) as stream:
        return stream.read().decode()
