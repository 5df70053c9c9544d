"""What cannot run is refused before Ray starts (issue: refuse what cannot run): resources no
node has, trial counts that explode once the grid is expanded, reseeds no machine can run, and
objectives that mean nothing for the data. Each: exit 2, one line naming the key and the
number, nothing written; then a property test over random spaces of these classes."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatialsearch.cli import main
from spatialsearch.errors import ConfigError
from spatialsearch.search.engine.ray_compat import local_node
from spatialsearch.search.preflight import capacity
from spatialsearch.search.preflight.capacity import check_capacity
from spatialsearch.search.space.budget import MAX_RESEED, MAX_TRIALS
from spatialsearch.search.space.sections import ResourcesConfig

BASE = {"name": "x", "num_samples": 2, "fixed": {"layers": [4], "epochs": 2},
        "space": {"transport": {"loguniform": [0.1, 1]}}}
MACHINE = local_node()


def _refused(doc: dict, tmp: Path) -> str:
    """Run the search command on doc; assert the refusal's shape; return its line."""
    space, out = tmp / "space.yaml", tmp / "out"
    space.write_text(yaml.safe_dump(doc))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["search", str(space), "--output", str(out)])
    text = err.getvalue()
    assert code == 2 and text.count("\n") == 1 and "Traceback" not in text, text
    assert not out.exists()
    return text


# --- resources against the nodes ---

def test_a_trial_must_fit_one_node_known_answers():
    two_cpus = [{"CPU": 2.0, "GPU": 0.0}]
    check_capacity(ResourcesConfig(cpu=2), two_cpus, "m")          # exactly fits
    with pytest.raises(ConfigError, match=r"^resources.cpu: each trial asks for 3 CPU; the "
                                          r"largest node of m has 2; ask for at most 2$"):
        check_capacity(ResourcesConfig(cpu=3), two_cpus, "m")
    with pytest.raises(ConfigError, match=r"^resources.gpu: each trial asks for 0.25 GPU; "
                                          r".* has 0; set resources.gpu: 0$"):
        check_capacity(ResourcesConfig(gpu=0.25), two_cpus, "m")
    with pytest.raises(ConfigError, match=r"^resources.custom.trainer: .* has 0; start nodes "
                                          r"with `ray start --resources"):
        check_capacity(ResourcesConfig(custom=(("trainer", 1.0),)), two_cpus, "m")
    # each resource fits some node, but no node holds both
    split = [{"CPU": 8.0, "GPU": 0.0}, {"CPU": 1.0, "GPU": 1.0}]
    check_capacity(ResourcesConfig(cpu=1, gpu=1), split, "c")
    with pytest.raises(ConfigError, match=r"^resources: each trial asks for 2 CPU \+ 1 GPU on "
                                          r"one node; no node of c has all of them at once$"):
        check_capacity(ResourcesConfig(cpu=2, gpu=1), split, "c")
    with pytest.raises(ConfigError, match="has 0"):
        check_capacity(ResourcesConfig(cpu=1), [], "an empty cluster")


def test_an_autoscaling_cluster_warns_and_goes_on(caplog):
    with caplog.at_level(logging.WARNING):
        check_capacity(ResourcesConfig(cpu=64), [{"CPU": 2.0}], "c", grows=True)
    assert "autoscaler may add one" in caplog.text


def test_the_autoscaler_test_is_tunes_own(tmp_path, monkeypatch):
    """can_grow reads the same file as Tune's _is_ray_cluster (fails if Ray changes it)."""
    from ray.tune.execution.cluster_info import _is_ray_cluster

    monkeypatch.setenv("HOME", str(tmp_path))
    _is_ray_cluster.cache_clear()
    assert capacity.can_grow() is False and _is_ray_cluster() is False
    (tmp_path / "ray_bootstrap_config.yaml").write_text("cluster_name: c\n")
    _is_ray_cluster.cache_clear()
    assert capacity.can_grow() is True and _is_ray_cluster() is True
    _is_ray_cluster.cache_clear()


def test_the_local_node_is_what_a_local_ray_reports(ray_session):
    """The session's Ray was started with num_cpus=2, num_gpus=0; this machine has 2 CPUs."""
    import torch

    assert MACHINE["GPU"] == torch.cuda.device_count()
    if MACHINE["CPU"] == 2:
        node = next(n for n in ray_session.nodes() if n["Alive"])["Resources"]
        assert node["CPU"] == MACHINE["CPU"] and node.get("GPU", 0.0) == MACHINE["GPU"]


@pytest.mark.parametrize("resources, message", [
    ({"cpu": 1000}, "resources.cpu: each trial asks for 1000 CPU"),
    ({"gpu": 1}, "resources.gpu: each trial asks for 1 GPU"),
    ({"custom": {"trainer": 1}}, "resources.custom.trainer: each trial asks for 1 trainer"),
])
def test_resources_no_node_has_are_refused(tmp_path, resources, message):
    if "gpu" in resources and MACHINE["GPU"] >= resources["gpu"]:
        pytest.skip("this machine has a GPU")
    assert message in _refused({**BASE, "resources": resources}, tmp_path)


# --- counts after expansion ---

def test_the_trial_cap_applies_after_the_grid_is_expanded(tmp_path):
    doc = {**BASE, "num_samples": 50_000, "search": {"algorithm": "grid"},
           "space": {"transport": {"grid": [0.1, 1, 10]}}}
    line = _refused(doc, tmp_path)
    assert "num_samples: 50,000 x 3 grid combinations = 150,000 trials would run; at most " \
           "100,000" in line


def test_the_num_samples_flag_is_capped_after_expansion_too(tmp_path):
    doc = {**BASE, "search": {"algorithm": "grid"}, "space": {"transport": {"grid": [0.1, 1]}}}
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["search", str(space), "--output", str(tmp_path / "o"), "--num-samples",
                     "60000", "--dry-run"])
    assert code == 2 and "= 120,000 trials would run" in err.getvalue()


def test_reseeds_are_capped_by_the_front_they_could_produce(tmp_path):
    pareto = {**BASE, "num_samples": 2000, "reseed": 60,
              "objectives": [{"metric": "val_accuracy", "mode": "max"},
                             {"metric": "segregation", "mode": "max"}],
              "scheduler": {"type": "moasha"}}
    assert ("reseed: 60 seeds for each of up to 2,000 front trial(s) = 120,000 runs would "
            "run; at most 100 seeds and 100,000 runs") in _refused(pareto, tmp_path)
    assert "reseed: 101 seeds for each of up to 1 front trial(s) = 101 runs" in _refused(
        {**BASE, "reseed": MAX_RESEED + 1}, tmp_path)
    assert MAX_RESEED * 2000 > MAX_TRIALS  # the first case is refused by the runs, not seeds


# --- objectives that mean something for the data ---

@pytest.mark.parametrize("doc, message", [
    ({"metric": "segregation", "fixed": {"layers": [4], "epochs": 2, "labels": 10}},
     "metric: segregation needs >= 2 tasks; datasets ['digits'] with labels 10 make 1 task"),
    ({"objectives": [{"metric": "val_accuracy", "mode": "max"},
                     {"metric": "segregation", "mode": "max"}], "scheduler": {"type": "moasha"},
      "fixed": {"layers": [4], "epochs": 2, "labels": 10}},
     "objectives[1].metric: segregation needs >= 2 tasks; datasets ['digits'] with labels 10"),
    ({"metric": "val_accuracy_task2"}, "metric: val_accuracy_task2 names task 2; datasets "
                                       "['digits'] with labels 5 make 2 tasks"),
    ({"metric": "segregation_layer1"}, "metric: segregation_layer1 names hidden layer 1; "
                                       "layers [4] have 1 (0..0)"),
    ({"metric": "segregation_layer0", "fixed": {"layers": [4], "epochs": 2, "labels": 10}},
     "metric: segregation_layer0 needs >= 2 tasks"),
])
def test_objectives_must_mean_something_for_the_data(tmp_path, doc, message):
    assert message in _refused({**BASE, **doc}, tmp_path)


def test_objectives_that_exist_pass(tmp_path):
    from spatialsearch.search.space.config import search_config_from_dict

    config = search_config_from_dict({**BASE, "metric": "val_accuracy_task1",
                                      "fixed": {"layers": [4, 3], "epochs": 2}})
    assert config.metric == "val_accuracy_task1"
    search_config_from_dict({**BASE, "metric": "segregation_layer1",
                             "fixed": {"layers": [4, 3], "epochs": 2}})


# --- the contract over random spaces of these classes ---
SECRET = "pw-Kx81"
_TOO_MANY_CPUS = st.floats(MACHINE["CPU"] + 0.5, 4096).map(lambda x: round(x, 2))
CLASSES = st.one_of(
    _TOO_MANY_CPUS.map(lambda cpu: {"resources": {"cpu": cpu}}),
    st.floats(MACHINE["GPU"] + 0.01, 64).map(lambda gpu: {"resources": {"gpu": round(
        gpu, 2) if gpu < 1 else int(gpu) + 1}}),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
        lambda n: n.upper() not in ("CPU", "GPU", "MEMORY")).map(
        lambda name: {"resources": {"custom": {name: 1}}}),
    st.tuples(st.integers(2, 6), st.integers(1, MAX_TRIALS)).filter(
        lambda t: t[0] * t[1] > MAX_TRIALS).map(lambda t: {
            "num_samples": t[1], "search": {"algorithm": "grid"},
            "space": {"transport": {"grid": [0.1 * (i + 1) for i in range(t[0])]}}}),
    st.integers(MAX_RESEED + 1, 10**9).map(lambda k: {"reseed": k}),
    st.integers(10, 40).map(lambda labels: {"metric": "segregation", "fixed": {
        "layers": [4], "epochs": 2, "labels": labels}}),
    st.integers(2, 99).map(lambda task: {"metric": f"val_accuracy_task{task}"}),
    st.integers(1, 99).map(lambda layer: {"metric": f"segregation_layer{layer}"}),
)
SECRETS = st.sampled_from([{}, {"tracking_uri": f"http://u:{SECRET}@127.0.0.1:9"},
                           {"storage": {"uri": "s3://bucket/p",
                                        "endpoint": f"http://u:{SECRET}@127.0.0.1:9"}}])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CLASSES, SECRETS)
def test_random_spaces_that_cannot_run_are_refused(case, secret):
    with tempfile.TemporaryDirectory() as folder:
        line = _refused({**BASE, **secret, **case}, Path(folder))
        assert line.startswith("spatialsearch: error: ") and SECRET not in line
