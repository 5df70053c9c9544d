"""`spatialsearch train`: the must-show run, config files, and bad input -> exit 2, no files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spatialsearch import metrics as m
from spatialsearch.checkpoint import load_checkpoint, load_model
from spatialsearch.cli import main
from spatialsearch.data.modes import TaskBatches
from spatialsearch.data.sources import load_task_data
from spatialsearch.evaluation import evaluate
from tests.ids import plain_id

REFERENCE = ("--datasets digits --labels 5 --input concatenate --layers 150 100 50 "
             "--activation Sigmoid --proximity 1 --transport 10 --norm l2 --epochs 50").split()


@pytest.mark.slow
@pytest.mark.parametrize("model_type,floor", [("linear", 0.97), ("convolution", 0.9)])
def test_reference_command_reaches_its_accuracy_and_checkpoint_reproduces_it(
        tmp_path, capsys, model_type, floor):
    """Linear: 0.994 measured (the issue asks >= 0.97). Convolution, same flags plus
    --type convolution: 0.976 measured (chance 0.2), with the centred init of models.py."""
    argv = ["train", *REFERENCE, "--type", model_type, "--save", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    best = summary["best"]
    assert best[m.VAL_ACCURACY] >= floor
    checkpoint = load_checkpoint(tmp_path / "best.pt")
    assert checkpoint.metrics[m.VAL_ACCURACY] == best[m.VAL_ACCURACY]
    config = checkpoint.config
    data = load_task_data(config.data, config.run.seed, load_model(checkpoint).head.weight.device)
    import torch

    batches = TaskBatches(data.validation, config.data.input, config.data.sampler, 128,
                          torch.Generator())
    assert evaluate(load_model(checkpoint), batches).accuracy == pytest.approx(
        best[m.VAL_ACCURACY], abs=1e-9)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 50
    out = capsys.readouterr().out
    assert "best epoch" in out and "checkpoint:" in out


def test_config_file_with_flag_override(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("layers: [8]\nepochs: 5\nproximity: 1\n")
    assert main(["train", "--config", str(config), "--epochs", "1", "--save",
                 str(tmp_path / "out"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["epochs"] == 1 and summary["config"]["layers"] == [8]
    assert summary["config"]["proximity"] == 1.0


def test_tensorboard_event_files_are_written(tmp_path):
    assert main(["train", "--layers", "4", "--epochs", "1", "--tensorboard", "true",
                 "--save", str(tmp_path), "--quiet"]) == 0
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


BAD_INPUT = [
    (["--datasets", "CIFAR11"], "datasets[0]: must be one of digits, MNIST"),
    (["--datasets", "CIFAR10", "--root", "{tmp}/nodata"], "CIFAR10 not found under root"),
    (["--datasets", "MNIST", "digits"], "datasets: all datasets of a run must share one image"),
    (["--activation", "Sigmod"], "did you mean 'Sigmoid'"),
    (["--optimizer", "Adamm"], "optimizer: must be one of"),
    (["--where", "0", "9"], "where[1]: spatial layer indices are 0..3"),
    (["--proximity", "-1"], "proximity: must be in [0, inf), got -1"),
    (["--transport", "abc"], "transport: must be a number, got 'abc'"),
    (["--norm", "l3"], "norm: must be one of l1, l2, got 'l3'"),
    (["--datasets", "MNIST", "--root", "{tmp}/nodata"], "MNIST not found under root"),
    (["--optimizer-args", "foo"], "optimizer_args: expected key=value, got 'foo'"),
    (["--optimizer", "SGD", "--optimizer-args", "mommentum=0.9"], "SGD does not take it"),
    (["--config", "{tmp}/missing.yaml"], "--config: no file at"),
]


@pytest.mark.parametrize("flags,message", BAD_INPUT, ids=[plain_id(f[1]) for f, _ in BAD_INPUT])
def test_bad_input_is_one_message_exit_2_nothing_written(tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    assert main(["train", *flags, "--save", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
    assert not (tmp_path / "nodata").exists()


def test_unwritable_save_path_exit_2_nothing_written(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--epochs", "1", "--save", str(blocker / "out")]) == 2
    assert "save: cannot write to" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_exponent_notation_is_a_number_in_flags_and_files(tmp_path):
    from spatialsearch.yaml_io import load_yaml

    assert load_yaml("[1e-3, -2E5, .5e3, 1.0e+30, 1e, e5, 1_000]") == [
        0.001, -200000.0, 500.0, 1e30, "1e", "e5", 1000]
    with pytest.raises(yaml.YAMLError):  # still the safe loader: no Python objects
        load_yaml("!!python/object/apply:os.system [echo]")
    run = tmp_path / "run.yaml"
    run.write_text("lr: 1e-3\nepochs: 1\nlayers: [4]\n")
    assert main(["train", "--config", str(run), "--save", str(tmp_path / "out"), "--quiet",
                 "--proximity", "1e-2"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["lr"] == 0.001 and summary["config"]["proximity"] == 0.01


def test_a_diverging_run_exits_1_with_one_line(tmp_path, capsys):
    argv = ["train", "--layers", "8", "--lr", "1e6", "--optimizer", "SGD", "--activation",
            "ReLU", "--transport", "1e30", "--epochs", "5", "--quiet", "--save",
            str(tmp_path / "run")]
    assert main(argv) == 1  # valid input, failed training: not 2 (bad input)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training loss is" in err


def test_console_script_exit_code_and_help():
    script = Path(sys.executable).with_name("spatialsearch")
    done = subprocess.run([str(script), "train", "--norm", "l9"], capture_output=True,
                          text=True)
    assert done.returncode == 2 and "norm: must be one of l1, l2" in done.stderr
    helped = subprocess.run([str(script), "train", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0
    for flag in ("--proximity", "--transport", "--where", "--sampler", "--positions-lr",
                 "--optimizer-args", "--cuda", "--tensorboard", "--config", "--save"):
        assert flag in helped.stdout
