"""Bad search spaces: one clear message naming the key path, exit 2, nothing created."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from spatialsearch.cli import main
from tests.ids import plain_id
from tests.refusals import assert_refused

GOOD = {
    "name": "t", "num_samples": 2, "fixed": {"layers": [4], "epochs": 2},
    "space": {"transport": {"loguniform": [0.1, 10]}},
    "scheduler": {"type": "asha", "grace_period": 1},
}


def _with(**changes):
    doc = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        node = doc
        *parents, leaf = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        if value is KeyError:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return doc


BAD = [
    (_with(nmae="x"), r"nmae: unknown key \(did you mean 'name'\?\)"),
    (_with(space__transprt={"uniform": [0, 1]}), r"space\.transprt: unknown key \(did you mean 'transport'"),
    (_with(fixed__layres=[3]), r"fixed\.layres: unknown key \(did you mean 'layers'"),
    (_with(scheduler__grace_perod=2), r"scheduler\.grace_perod: unknown key \(did you mean 'grace_period'"),
    (_with(num_samples=0), r"num_samples: must be an integer >= 1, got 0"),
    (_with(num_samples="8"), r"num_samples: must be an integer >= 1, got '8'"),
    (_with(mode="maximum"), r"mode: must be one of max, min, got 'maximum'"),
    (_with(metric="accuracy"), r"metric: must be one of val_accuracy, .*got 'accuracy'"),
    (_with(scheduler__type="hyperband"), r"scheduler\.type: must be one of asha, moasha, fifo"),
    (_with(scheduler__grace_period=5), r"scheduler\.grace_period: must be in \[1, epochs=2\], got 5"),
    (_with(scheduler__reduction_factor=1), r"scheduler\.reduction_factor: must be an integer >= 2"),
    (_with(search__algorithm="bayes"), r"search\.algorithm: must be one of optuna, random, grid"),
    (_with(space__norm={"grid": ["l1", "l2"]}), r"space\.norm: a grid cannot be combined with search\.algorithm 'optuna'"),
    (_with(space__transport={"loguniform": [0, 10]}), r"space\.transport\.loguniform: loguniform needs low > 0"),
    (_with(space__transport={"uniform": [5, 1]}), r"space\.transport\.uniform: `low < high` must hold, but got \(low=5, high=1\)"),
    (_with(space__transport={"normal": [0, 1]}), r"space\.transport: unknown distribution 'normal'"),
    (_with(space__transport=3), r"space\.transport: must be one mapping like"),
    (_with(space__norm={"choice": ["l1", "l7"]}), r"space\.norm\.choice\[1\] -> norm: must be one of l1, l2, got 'l7'"),
    (_with(space__activation={"choice": ["ReLU", "Relu"]}), r"space\.activation\.choice\[1\] -> activation: must be one of .*got 'Relu' \(did you mean 'ReLU'"),
    (_with(space__lr={"int": [1, 2.5]}), r"space\.lr\.int: high must be an integer, got 2\.5"),
    (_with(fixed__proximity=-2), r"fixed\.proximity: must be in \[0, inf\), got -2"),
    (_with(fixed__datasets=["MNIST", "digits"]), r"datasets: all datasets of a run must share one image shape"),
    (_with(fixed__where=[5]), r"where\[0\]: spatial layer indices are 0\.\.1"),
    (_with(fixed__transport=1), r"space\.transport: is also in fixed"),
    (_with(resources__gpu=-1), r"resources\.gpu: must be a number >= 0, got -1"),
    (_with(resources__gpu=1.5), r"resources\.gpu: above 1 must be a whole number, got 1\.5"),
    (_with(resources__cpu=0), r"resources\.cpu: must be a number >= 0\.01, got 0"),
    (_with(name="../evil"), r"name: letters, digits, '-', '_' and '\.' only, got '\.\./evil'"),
    (_with(name=".hidden"), r"name: letters, digits, '-', '_' and '\.' only, got '\.hidden'"),
    (_with(name=5), r"name: must be a non-empty string, got 5"),
    (_with(fixed=5), r"fixed: must be a mapping, got 5"),
    (_with(space=[1]), r"space: must be a mapping, got \[1\]"),
    (_with(experiment=""), r"experiment: must be a non-empty string, got ''"),
    (_with(output=""), r"output: must be a non-empty string, got ''"),
    (_with(search={"algorithm": "grid"}),
     r"space\.transport: search\.algorithm grid takes only grid distributions"),
    (_with(search={"algorithm": "grid"}, space={"norm": {"grid": ["l1", "l2"]},
                                                "transport": {"uniform": [0, 1]}}),
     r"space\.transport: search\.algorithm grid takes only grid distributions"),
    (_with(max_failures=-1), r"max_failures: must be an integer >= 0"),
    (_with(checkpoint_every=0), r"checkpoint_every: must be an integer >= 1, got 0"),
    (_with(space=None), r"space: optuna needs at least one searched key; add one or use "
                        r"search\.algorithm: random$"),
    (_with(scheduler="asha"), r"scheduler: must be a mapping, got 'asha'"),
    (_with(num_samples=100_001), r"num_samples: at most 100000, got 100001"),
    (_with(tracking_uri="foo://bar"), r"tracking_uri: unsupported scheme 'foo' in 'foo://bar'; "
                                      r"allowed: http, https, sqlite"),
    (_with(tracking_uri="runs/mlflow"), r"tracking_uri: unsupported scheme '\(none\)'"),
    (_with(tracking_uri="http://"), r"tracking_uri: 'http://' names no host"),
    (_with(tracking_uri="http://127.0.0.1:99999"), r"tracking_uri: malformed URI .*Port out"),
    (_with(tracking_uri="sqlite://rel.db"), r"tracking_uri: 'sqlite://rel.db' is not sqlite:///"),
    (_with(tracking_uri="http://h st"), r"tracking_uri: must not contain spaces"),
]


@pytest.mark.parametrize("doc,message", BAD, ids=[plain_id(m) for _, m in BAD])
def test_bad_space_is_one_message_exit_2_and_nothing_created(tmp_path, capsys, doc, message):
    assert_refused(tmp_path, capsys, doc, message)


@pytest.mark.parametrize("uri,message", [
    ("gopher://x", "--tracking-uri: unsupported scheme 'gopher'"),
    ("https://", "--tracking-uri: 'https://' names no host")])
def test_a_bad_tracking_uri_flag_is_refused_like_the_yaml_key(tmp_path, capsys, uri, message):
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(GOOD))
    out = tmp_path / "out"
    assert main(["search", str(space), "--output", str(out), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not out.exists()


def test_a_network_that_cannot_fit_is_refused_before_ray_with_the_estimate(tmp_path, capsys):
    """Searched widths up to 10^6: the largest corner is estimated (footprint.trial_bytes)
    against this machine's available memory, before anything starts."""
    from spatialsearch.footprint import available_bytes

    doc = _with(fixed={"epochs": 2},
                space={"layers": {"choice": [[8], [1_000_000, 1_000_000]]}})
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["search", str(space), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not out.exists(), err
    import re

    found = re.search(r"a trial of layers \[1000000, 1000000\] \(linear, ([0-9,]+) parameters\) "
                      r"needs about ([0-9.]+) GiB; 2 at once \(max_concurrent_trials\) need "
                      r"([0-9.]+) GiB, this machine has ([0-9.]+) GiB available", err)
    assert found, err
    # 128 inputs (two digit tasks' 8x8 images, concatenated) -> 10^6 -> 10^6 -> 10 outputs;
    # each layer: weights + biases + 2-D positions
    params = int(found.group(1).replace(",", ""))
    assert params == (128 * 10**6 + 10**6 + 2 * 10**6) + (10**12 + 10**6 + 2 * 10**6) + (
        10**6 * 10 + 10 + 2 * 10)
    assert float(found.group(3)) == pytest.approx(2 * float(found.group(2)), abs=0.2)  # 1 dp
    assert float(found.group(4)) == pytest.approx(available_bytes() / 2**30, rel=0.2)


def test_not_yaml_and_not_a_mapping(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    assert main(["search", str(broken)]) == 2
    assert "is not valid YAML" in capsys.readouterr().err
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    assert main(["search", str(listed)]) == 2
    assert "must hold a mapping" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "absent.yaml")]) == 2
    assert "search space: no file at" in capsys.readouterr().err


def test_yaml_is_loaded_safely(tmp_path, capsys):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    assert main(["search", str(evil)]) == 2
    assert not (tmp_path / "pwned").exists()


SPACES = Path(__file__).resolve().parents[3] / "search_spaces"


@pytest.mark.parametrize("path", sorted(SPACES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_spaces_validate_and_dry_run(path, capsys):
    assert main(["search", str(path), "--dry-run"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["trials"] >= 1


def test_set_overrides_and_grid_counts(tmp_path, capsys):
    doc = _with(search__algorithm="grid",
                space={"norm": {"grid": ["l1", "l2"]}, "transport": {"grid": [1, 10, 100]}})
    space = tmp_path / "grid.yaml"
    space.write_text(yaml.safe_dump(doc))
    assert main(["search", str(space), "--dry-run", "--set", "fixed.epochs=3",
                 "--set", "num_samples=2"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["trials"] == 12 and described["fixed"]["epochs"] == 3
    assert main(["search", str(space), "--dry-run", "--set", "fixed.epochs"]) == 2
    assert "--set: expected key=value" in capsys.readouterr().err


def test_command_line_overrides_replace_their_yaml_keys():
    """--output, --tracking-uri, --num-samples, --storage and --storage-endpoint replace the
    YAML's values, normalised as the keys are; a flag not given (None) keeps the YAML's."""
    from spatialsearch.search.space.config import (
        MAX_TRIALS,
        search_config_from_dict,
        with_overrides,
    )
    from spatialsearch.search.space.storage import StorageConfig

    base = search_config_from_dict(_with(storage={"uri": "s3://yaml-bucket/p",
                                                  "endpoint": "http://127.0.0.1:9000"}))
    assert with_overrides(base, output=None, tracking_uri=None, num_samples=None,
                          storage=None, storage_endpoint=None) == base
    given = with_overrides(base, output="runs/x", tracking_uri="sqlite:///runs/x.db",
                           num_samples=MAX_TRIALS, storage="s3://flag-bucket/q/",
                           storage_endpoint="https://s3.example.org/")
    assert (given.output, given.tracking_uri, given.num_samples) == (
        "runs/x", "sqlite:///runs/x.db", MAX_TRIALS)
    assert given.storage == StorageConfig("s3://flag-bucket/q", "https://s3.example.org")
    assert with_overrides(base, num_samples=1).num_samples == 1
    # one of the two storage flags keeps the YAML's other half
    assert with_overrides(base, storage="/shared/searches").storage == StorageConfig(
        "/shared/searches", "http://127.0.0.1:9000")
    assert with_overrides(base, storage_endpoint="http://10.0.0.2:9000").storage == (
        StorageConfig("s3://yaml-bucket/p", "http://10.0.0.2:9000"))
    assert (given.name, given.fixed, given.space) == (base.name, base.fixed, base.space)


@pytest.mark.parametrize("flags,message", [
    ({"num_samples": 0}, "--num-samples: must be an integer >= 1, got 0"),
    ({"num_samples": 100_001}, "--num-samples: at most 100000, got 100001"),
    ({"output": ""}, "--output: must be a non-empty string, got ''"),
    ({"tracking_uri": "sqlite:///a b.db"}, "--tracking-uri: must not contain spaces"),
    ({"storage": "relative/folder"}, "--storage: a shared folder must be an absolute path"),
    ({"storage_endpoint": "ftp://127.0.0.1"}, "--storage-endpoint: must be http(s)://"),
], ids=["num_samples_0", "num_samples_too_many", "output", "tracking_uri", "storage",
        "storage_endpoint"])
def test_command_line_overrides_are_refused_with_the_flags_name(flags, message):
    from spatialsearch.errors import ConfigError
    from spatialsearch.search.space.config import search_config_from_dict, with_overrides

    with pytest.raises(ConfigError) as refused:
        with_overrides(search_config_from_dict(_with()), **flags)
    assert str(refused.value).startswith(message)


def test_corner_configs_span_the_space_and_drop_keys_whose_condition_fails():
    """Every combination of the corners, in product order; `sampler` (only when input is
    sequential) is dropped for concatenate, so those trials take the default, random."""
    from spatialsearch.search.space.config import search_config_from_dict

    config = search_config_from_dict(_with(space={
        "input": {"choice": ["concatenate", "sequential"]},
        "sampler": {"choice": ["random", "task"], "when": {"input": "sequential"}},
        "transport": {"loguniform": [0.1, 10]}}))
    corners = [(t.data.input, t.data.sampler, t.cost.transport)
               for t in config.corner_configs()]
    assert corners == [("concatenate", "random", 0.1), ("concatenate", "random", 10.0)] * 2 + [
        ("sequential", "random", 0.1), ("sequential", "random", 10.0),
        ("sequential", "task", 0.1), ("sequential", "task", 10.0)]
    assert len(list(config.corner_configs(limit=3))) == 3


def test_a_corner_that_is_no_valid_trial_is_refused_as_fixed_space():
    from spatialsearch.errors import ConfigError
    from spatialsearch.search.space.config import search_config_from_dict

    with pytest.raises(ConfigError) as refused:
        search_config_from_dict(_with(fixed__layers=KeyError, fixed__where=[2],
                                      space={"layers": {"choice": [[4, 4], [4]]}}))
    assert str(refused.value) == ("fixed/space: where[0]: spatial layer indices are 0..1 "
                                  "(0..L-1 hidden, 1 the head), got 2")


def test_experiment_name_and_source_hash_are_kept():
    """experiment names the MLflow experiment; source_hash (an MLflow tag) is the first 16
    hex digits of the YAML text's sha256."""
    import hashlib

    from spatialsearch.search.space.config import search_config_from_dict

    text = yaml.safe_dump(_with(experiment="my-study"))
    config = search_config_from_dict(yaml.safe_load(text), text)
    assert config.experiment == "my-study"
    assert config.source_hash == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert len(config.source_hash) == 16


def test_a_document_that_is_no_mapping_is_refused_by_the_validator_too():
    """The CLI's loader refuses it first (naming the file); the validator, for callers that
    pass a parsed document, says the same in its words."""
    from spatialsearch.errors import ConfigError
    from spatialsearch.search.space.config import search_config_from_dict

    with pytest.raises(ConfigError) as refused:
        search_config_from_dict([1, 2])
    assert str(refused.value) == "search space: must be a mapping, got [1, 2]"
