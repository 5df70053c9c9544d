"""storage: where a search's Ray experiment and results live (search/space/storage.py, places.py).
Bad storage is refused before Ray starts: one line, exit 2, nothing written anywhere. The
S3 paths run against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from spatialsearch.cli import main
from spatialsearch.search.places.place import Place, locate, search_place
from spatialsearch.search.places.ray_folder import prune_checkpoints, recorded_trials
from spatialsearch.search.space.storage import StorageConfig, parse_storage
from tests.refusals import assert_refused
from tests.s3_server import CREDENTIALS, filesystem, free_port, objects

BASE = {"name": "st", "num_samples": 1, "search": {"algorithm": "random"},
        "scheduler": {"type": "fifo"},
        "fixed": {"datasets": ["digits"], "epochs": 1, "layers": [8]}}


@pytest.mark.parametrize("storage, message", [
    ("gs://bucket/prefix", r"storage: unsupported scheme 'gs' .*allowed: s3://"),
    ("s3://", r"storage: 's3://' names no valid bucket"),
    ("s3://Not_A_Bucket/x", r"storage: 's3://Not_A_Bucket/x' names no valid bucket"),
    ("relative/folder", r"storage: a shared folder must be an absolute path"),
    (7, r"storage: must be a string, got 7"),
    ({"uri": "s3://bucket-a/p", "endpoint": "ftp://10.0.0.5"},
     r"storage.endpoint: must be http\(s\)://host\[:port\]"),
    ({"uri": "s3://bucket-a/p", "endpoint": "http://10.0.0.5:99999"},
     r"storage.endpoint: malformed URL"),
    ({"uri": "s3://bucket-a/p", "endpiont": "http://10.0.0.5"},
     r"storage.endpiont: unknown key \(did you mean 'endpoint'\?\)"),
])
def test_bad_storage_values_are_refused_in_one_line(tmp_path, capsys, storage, message):
    assert_refused(tmp_path, capsys, {**BASE, "storage": storage}, message)


def test_an_endpoint_holding_credentials_is_refused_without_echoing_them(tmp_path, capsys):
    doc = {**BASE, "storage": {"uri": "s3://bucket-a/p",
                               "endpoint": "http://key:hunter2@10.0.0.5:9000"}}
    assert_refused(tmp_path, capsys, doc, r"storage.endpoint: must not hold credentials")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    main(["search", str(space), "--output", str(tmp_path / "out2")])
    assert "hunter2" not in "".join(capsys.readouterr())


def test_storage_forms_are_normalised():
    assert parse_storage(None) == StorageConfig()
    assert parse_storage("s3://my-bucket/a/b/") == StorageConfig("s3://my-bucket/a/b")
    assert parse_storage("file:///mnt/shared/") == StorageConfig("/mnt/shared")
    assert parse_storage({"uri": "s3://my.bucket", "endpoint": "https://h.example:9000/"}) == \
        StorageConfig("s3://my.bucket", "https://h.example:9000")
    assert parse_storage("s3://b-1/x").remote and not parse_storage("/mnt/x").remote


def _refused(tmp_path, capsys, *flags: str) -> str:
    """Run the search CLI with flags; it must refuse: exit 2, one line, no output folder."""
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(BASE))
    out = tmp_path / "out"
    assert main(["search", str(space), "--output", str(out), *flags]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert not out.exists()
    for secret in CREDENTIALS.values():
        assert secret == "us-east-1" or secret not in captured.out + captured.err
    return captured.err.removeprefix("spatialsearch: error: ")


def test_a_missing_bucket_is_refused_before_anything_is_written(tmp_path, capsys,
                                                                  s3_endpoint):
    err = _refused(tmp_path, capsys, "--storage", "s3://no-such-bucket/team",
                   "--storage-endpoint", s3_endpoint)
    assert re.search(r"^storage: bucket 'no-such-bucket' does not exist at http://127\.0\.0\.1"
                     r":\d+; create it first", err), err
    assert objects(s3_endpoint, "no-such-bucket") == {}


def test_an_unreachable_endpoint_is_refused_quickly(tmp_path, capsys, s3_endpoint):
    closed = f"http://127.0.0.1:{free_port()}"
    err = _refused(tmp_path, capsys, "--storage", "s3://bucket-a/team",
                   "--storage-endpoint", closed)
    assert err.startswith(f"storage: cannot write to 's3://bucket-a/team' at {closed}: "
                          f"NETWORK_CONNECTION"), err


def test_an_unwritable_shared_folder_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = _refused(tmp_path, capsys, "--storage", str(blocker / "searches"))
    assert re.search(r"^storage: cannot write to .*file/searches/st.* is not a folder", err)
    assert blocker.read_text() == "x"


#: a folder no one can create, root included: permission bits say yes, the kernel says no
UNCREATABLE = "/proc/spatialsearch-cannot-exist"


def test_a_shared_folder_that_cannot_be_created_is_refused_by_a_real_write(tmp_path, capsys):
    """Tried as a new user would: preflight passed on permission bits, Ray started and wrote
    an MLflow store, then the search failed with exit 1. Now: one line with the OS's
    reason, exit 2, nothing written."""
    err = _refused(tmp_path, capsys, "--storage", f"{UNCREATABLE}/searches")
    assert err.startswith(f"storage: cannot write to '{UNCREATABLE}/searches/st': No such "
                          f"file or directory"), err
    assert not list(tmp_path.glob("out*"))


def test_an_output_folder_that_cannot_be_created_is_refused_by_a_real_write(tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(BASE))
    assert main(["search", str(space), "--output", f"{UNCREATABLE}/runs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"spatialsearch: error: output: cannot write to "
                          f"'{UNCREATABLE}/runs/st': No such file or directory"), err


def test_the_write_probe_leaves_nothing_behind(tmp_path):
    from spatialsearch.fit import check_writable

    check_writable(tmp_path / "a" / "b" / "c", key="output")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    check_writable(tmp_path / "kept", key="output")
    assert list((tmp_path / "kept").iterdir()) == []


def test_storage_already_holding_the_search_needs_resume(tmp_path, capsys, s3_endpoint):
    filesystem(s3_endpoint).create_dir("bucket-held")
    held = Place(filesystem(s3_endpoint), "bucket-held/team/st/ray/st/experiment.json")
    held.write_bytes(b"{}")
    err = _refused(tmp_path, capsys, "--storage", "s3://bucket-held/team",
                   "--storage-endpoint", s3_endpoint)
    assert "storage: 's3://bucket-held/team/st' already holds a search named 'st'" in err
    err = _refused(tmp_path, capsys, "--storage", "s3://bucket-held/other",
                   "--storage-endpoint", s3_endpoint, "--resume")
    assert "--resume: no search to resume at 's3://bucket-held/other/st/ray/st'" in err
    assert list(objects(s3_endpoint, "bucket-held")) == [held.path]  # the probe is gone


def _experiment(folder):
    """A Tune experiment folder as Ray writes it: two trials, one failed, 3 checkpoints."""
    for trial, error in (("trial_a1", ""), ("trial_b2", "ValueError: diverged")):
        (folder / trial).mkdir(parents=True)
        (folder / trial / "params.json").write_text(json.dumps({"lr": 0.1}))
        (folder / trial / "result.json").write_text("".join(
            json.dumps({"trial_id": trial[-2:], "epoch": e}) + "\n" for e in (1, 2, 3)))
        for index in range(3):
            checkpoint = folder / trial / f"checkpoint_00000{index}"
            checkpoint.mkdir()
            (checkpoint / "best.pt").write_bytes(bytes([index]) * 10)
        if error:
            (folder / trial / "error.txt").write_text(f"Traceback ...\n{error}\n")
    (folder / "experiment_state.json").write_text("{}")


def test_a_recorded_experiment_reads_the_same_from_s3_as_from_disk(tmp_path, s3_endpoint):
    local = tmp_path / "exp"
    _experiment(local)
    filesystem(s3_endpoint).create_dir("bucket-exp")
    storage = StorageConfig("s3://bucket-exp/p", s3_endpoint)
    remote = search_place(storage, tmp_path, "exp")
    remote.upload(local)
    on_disk = recorded_trials(locate(str(local), StorageConfig()))
    in_s3 = recorded_trials(remote)
    assert [(t.trial_id, t.config, t.results, t.error) for t in in_s3] == \
        [(t.trial_id, t.config, t.results, t.error) for t in on_disk] == [
            ("a1", {"lr": 0.1}, [{"trial_id": "a1", "epoch": e} for e in (1, 2, 3)], ""),
            ("b2", {"lr": 0.1}, [{"trial_id": "b2", "epoch": e} for e in (1, 2, 3)],
             "ValueError: diverged")]
    assert in_s3[0].best_checkpoint.uri == \
        "s3://bucket-exp/p/exp/trial_a1/checkpoint_000002/best.pt"
    assert in_s3[0].best_checkpoint.fetch(tmp_path / "b.pt").read_bytes() == b"\x02" * 10
    assert prune_checkpoints(remote) == 4 == prune_checkpoints(locate(str(local),
                                                                      StorageConfig()))
    left = sorted(p for p in objects(s3_endpoint, "bucket-exp") if "checkpoint_" in p)
    assert left == ["bucket-exp/p/exp/trial_a1/checkpoint_000002/best.pt",
                    "bucket-exp/p/exp/trial_b2/checkpoint_000002/best.pt"]
    assert sorted(p.name for p in (local / "trial_a1").iterdir()) == [
        "checkpoint_000002", "params.json", "result.json"]


@pytest.mark.slow
def test_a_search_in_s3_storage_then_sync_mlflow_from_the_bucket(ray_session, tmp_path,
                                                                  s3_endpoint, capsys):
    """A search whose storage is the bucket: its Ray experiment, checkpoints and results are
    there, not on the disk; sync-mlflow re-logs it from the bucket alone into a new store."""
    from mlflow.tracking import MlflowClient

    from spatialsearch.search.runner import run_search
    from spatialsearch.search.space.config import search_config_from_dict

    filesystem(s3_endpoint).create_dir("bucket-run")
    config = search_config_from_dict({
        **BASE, "num_samples": 2, "output": str(tmp_path / "out"), "analyze": 1,
        "fixed": {"datasets": ["digits"], "epochs": 2, "layers": [8]},
        "space": {"lr": {"loguniform": [1e-3, 1e-2]}},
        "storage": {"uri": "s3://bucket-run/team", "endpoint": s3_endpoint}})
    summary = run_search(config, quiet=True)
    assert summary.trials == 2 and summary.errored == 0
    assert summary.storage == {"folder": "s3://bucket-run/team/st", "endpoint": s3_endpoint}
    stored = objects(s3_endpoint, "bucket-run/team/st")
    for name in ("results.csv", "summary.json", "best/best.pt", "report/report.html"):
        assert f"bucket-run/team/st/{name}" in stored
    assert sum(p.endswith("/best.pt") and "/ray/st/trial_" in p for p in stored) == 2
    assert not (tmp_path / "out" / "st" / "ray").exists()
    assert (tmp_path / "out" / "st" / "best" / "best.pt").read_bytes() == \
        Place(filesystem(s3_endpoint), "bucket-run/team/st/best/best.pt").fetch(
            tmp_path / "b.pt").read_bytes()
    assert len(summary.analyzed) == 1  # from the checkpoint the driver fetched

    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["sync-mlflow", "s3://bucket-run/team/st", "--storage-endpoint", s3_endpoint,
                 "--tracking-uri", other]) == 0
    assert "synced 2 trials" in capsys.readouterr().out
    client = MlflowClient(other)
    runs = client.search_runs([client.get_experiment_by_name("spatialsearch").experiment_id])
    trials = [r for r in runs if r.data.tags.get("spatialsearch.kind") == "trial"]
    assert len(trials) == 2
    for run in trials:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] \
            == [1, 2]
        assert client.list_artifacts(run.info.run_id, "checkpoint")


@pytest.mark.slow
def test_a_search_in_a_shared_folder(ray_session, tmp_path):
    """storage: a folder every node mounts (NFS): the Ray experiment and the results go
    there; the output folder keeps the MLflow and Optuna stores."""
    from spatialsearch.search.runner import run_search
    from spatialsearch.search.space.config import search_config_from_dict

    shared = tmp_path / "nfs" / "searches"
    config = search_config_from_dict({
        **BASE, "num_samples": 2, "output": str(tmp_path / "out"), "analyze": 0,
        "fixed": {"datasets": ["digits"], "epochs": 2, "layers": [8]},
        "space": {"lr": {"loguniform": [1e-3, 1e-2]}}, "storage": str(shared)})
    summary = run_search(config, quiet=True)
    assert summary.trials == 2 and summary.errored == 0
    assert len(list((shared / "st" / "ray" / "st").glob("trial_*/checkpoint_*/best.pt"))) == 2
    for name in ("results.csv", "summary.json", "best/best.pt", "report/report.html"):
        assert (shared / "st" / name).is_file(), name
    assert sorted(p.name for p in (tmp_path / "out" / "st").iterdir() if p.is_dir()) == [
        "best", "mlartifacts", "report"]
    assert (tmp_path / "out" / "st" / "mlflow.db").is_file()
