"""Every ConfigError of config.py: message names the key path, the rule, the value."""

from __future__ import annotations

import inspect

import pytest
import torch

from spatialsearch.config import (
    ACTIVATIONS,
    FLAT_KEYS,
    OPTIMIZERS,
    TrialConfig,
    parse_flat_value,
    trial_config_from_dict,
)
from spatialsearch.errors import ConfigError

BAD = [
    ({"proximty": 1}, r"proximty: unknown key \(did you mean 'proximity'\?\)"),
    ({"cost": {"normm": "l1"}}, r"cost\.normm: unknown key \(did you mean 'norm'\?\)"),
    ({"datasets": ["MNIST", "digits"]}, r"datasets: all datasets of a run must share one image"),
    ({"datasets": ["CIFAR11"]},
     r"datasets\[0\]: must be one of digits, MNIST, .*got 'CIFAR11' \(did you mean 'CIFAR10'"),
    ({"datasets": []}, r"datasets: must be a non-empty list of datasets"),
    ({"labels": 0}, r"labels: must be in \[1, inf\), got 0"),
    ({"labels": 11}, r"labels: at most 10, the classes of the run's largest dataset, got 11"),
    ({"labels": 2.5}, r"labels: must be an integer, got 2.5"),
    ({"labels": True}, r"labels: must be an integer, got True"),
    ({"input": "stack"}, r"input: must be one of sequential, concatenate, mix, got 'stack'"),
    ({"sampler": "tsk"}, r"sampler: must be one of random, task, got 'tsk' \(did you mean"),
    ({"root": ""}, r"root: must be a non-empty string"),
    ({"download": "yes"}, r"download: must be true or false, got 'yes'"),
    ({"validation_fraction": 0}, r"validation_fraction: must be in \(0, 0.5\], got 0"),
    ({"test_fraction": 0.9}, r"test_fraction: must be in \(0, 0.5\], got 0.9"),
    ({"batch": 0}, r"batch: must be in \[1, inf\), got 0"),
    ({"type": "rnn"}, r"type: must be one of linear, convolution, got 'rnn'"),
    ({"layers": []}, r"layers: must be a non-empty list of integers"),
    ({"layers": [10, 0]}, r"layers\[1\]: must be in \[1, inf\), got 0"),
    ({"layers": "10"}, r"layers: must be a non-empty list of integers, got '10'"),
    ({"activation": "Sigmod"}, r"activation: must be one of .*got 'Sigmod' \(did you mean 'Sigmoid'"),
    ({"kernel": 4}, r"kernel: must be odd \(padding 'same'\), got 4"),
    ({"proximity": -1}, r"proximity: must be in \[0, inf\), got -1"),
    ({"transport": float("nan")}, r"transport: must be a finite number, got nan"),
    ({"transport": "10"}, r"transport: must be a number, got '10'"),
    ({"norm": "l3"}, r"norm: must be one of l1, l2, got 'l3'"),
    ({"where": [0, 4], "layers": [5, 5]}, r"where\[1\]: spatial layer indices are 0\.\.2"),
    ({"where": [-1]}, r"where\[0\]: must be in \[0, inf\), got -1"),
    ({"optimizer": "adam"}, r"optimizer: must be one of .*got 'adam' \(did you mean"),
    ({"lr": 0}, r"lr: must be in \(0, inf\), got 0"),
    ({"positions_lr": -0.1}, r"positions_lr: must be in \[0, inf\), got -0.1"),
    ({"optimizer_args": [1]}, r"optimizer_args: must be a mapping"),
    ({"optimizer_args": {"lr": 1}}, r"optimizer_args\.lr: not allowed"),
    ({"optimizer_args": {"betas": {"a": 1}}}, r"optimizer_args\.betas: must be a number"),
    ({"epochs": 0}, r"epochs: must be in \[1, 100000\], got 0"),
    ({"seed": -3}, r"seed: must be in \[0, 4.29497e\+09\], got -3"),
    ({"device": "gpu"}, r"device: must be auto, cpu, cuda or cuda:N, got 'gpu'"),
    ({"dim": 0}, r"dim: must be in \[1, inf\), got 0"),
]


@pytest.mark.parametrize("raw,message", BAD, ids=[next(iter(r)) + str(i) for i, (r, _) in enumerate(BAD)])
def test_bad_values_name_key_rule_and_value(raw, message):
    with pytest.raises(ConfigError, match=message):
        trial_config_from_dict(raw)


def test_not_a_mapping():
    with pytest.raises(ConfigError, match=r"config: must be a mapping of keys, got \[1\]"):
        trial_config_from_dict([1])


def test_prefix_is_prepended_to_key_paths():
    with pytest.raises(ConfigError, match=r"^space\.norm: must be one of"):
        trial_config_from_dict({"norm": "x"}, prefix="space.")
    with pytest.raises(ConfigError, match=r"^fixed\.lr: must be in"):
        parse_flat_value("lr", -1, prefix="fixed.")


def test_defaults_and_round_trip():
    config = trial_config_from_dict({})
    assert config == TrialConfig()
    assert config.data.num_tasks == 2 and config.cost_layers == (0, 1, 2, 3)
    flat = config.to_flat_dict()
    assert set(flat) == set(FLAT_KEYS)
    assert trial_config_from_dict(flat) == config
    nested = trial_config_from_dict({"cost": {"proximity": 1.0}, "model": {"layers": [4]}})
    assert nested.cost.proximity == 1.0 and nested.model.layers == (4,)
    assert trial_config_from_dict({"where": "all"}).cost.where == ()
    assert trial_config_from_dict({"positions_lr": 0, "lr": 0.1}).optim.effective_positions_lr == 0.1


def test_configs_are_frozen():
    config = trial_config_from_dict({})
    with pytest.raises(Exception):
        config.cost.proximity = 3.0  # type: ignore[misc]


def test_activation_vocabulary_is_torch_nn_without_required_arguments():
    for name in ACTIVATIONS:
        getattr(torch.nn, name)()  # constructible with no argument


def test_optimizer_vocabulary_is_torch_optim():
    for name in OPTIMIZERS:
        cls = getattr(torch.optim, name)
        assert issubclass(cls, torch.optim.Optimizer)
        assert "lr" in inspect.signature(cls).parameters
