"""`spatialsearch train`: its flags (one per training key) and the command; YAML/JSON run
configs and flag values are read as YAML (yaml_io)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from spatialsearch import metrics as m
from spatialsearch.config import (
    ACTIVATIONS,
    OPTIMIZERS,
    TrialConfig,
    trial_config_from_dict,
)
from spatialsearch.datasets import CATALOG
from spatialsearch.errors import ConfigError
from spatialsearch.yaml_io import load_yaml

#: flat training key -> (nargs, help). Every key of config.FLAT_KEYS has a flag.
TRAIN_FLAGS: dict[str, tuple[str | None, str]] = {
    "datasets": ("+", f"dataset names, one or more tasks each: {', '.join(CATALOG)} "
                      "(default: digits); own data in a --config file"),
    "labels": (None, "C, classes per task: class k is label k %% C of task k // C (default 5)"),
    "input": (None, "input mode: sequential, concatenate or mix (default concatenate)"),
    "sampler": (None, "sequential mode order: random (tasks interleaved) or task (blocked)"),
    "root": (None, "folder holding torchvision datasets as <root>/<Name>/raw (default data)"),
    "download": (None, "true: let torchvision download missing datasets (online only)"),
    "validation_fraction": (None, "share of train carved (seeded) for validation (default 0.1)"),
    "test_fraction": (None, "share carved for test, digits only (default 0.2)"),
    "batch": (None, "samples per training step (default 32)"),
    "type": (None, "linear or convolution (default linear)"),
    "layers": ("+", "hidden widths h_0..h_{L-1}: neurons, or channels (default 150 100 50)"),
    "activation": (None, f"torch.nn activation class (default Sigmoid): {', '.join(ACTIVATIONS)}"),
    "kernel": (None, "convolution kernel size, odd (default 3)"),
    "dim": (None, "dimensions of neuron position space (default 2)"),
    "proximity": (None, "alpha >= 0: weight of the proximity cost (default 0)"),
    "transport": (None, "beta >= 0: weight of the transport cost (default 0)"),
    "norm": (None, "transport weight norm: l1 (|w|) or l2 (w^2) (default l2)"),
    "where": ("+", "spatial layer indices 0..L with costs (L = head), or 'all' (default)"),
    "optimizer": (None, f"torch.optim class (default Adam): {', '.join(OPTIMIZERS)}"),
    "lr": (None, "learning rate of weights and biases (default 5e-3)"),
    "positions_lr": (None, "learning rate of positions; 0 = same as --lr (default 0)"),
    "optimizer_args": ("+", "extra optimizer arguments as key=value, e.g. momentum=0.9"),
    "epochs": (None, "passes over the training split (default 50)"),
    "seed": (None, "seed of torch, numpy, random and the data splits (default 1)"),
    "device": (None, "auto (cuda when present), cpu, cuda or cuda:N (default auto)"),
    "tensorboard": (None, "true: also write TensorBoard event files (default false)"),
}


def scalar(text: str) -> Any:
    """A command-line word as YAML reads it: 5 -> int, 1e-3 -> float, true -> bool."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def load_config_file(path: str, key: str = "--config") -> dict[str, Any]:
    """A YAML or JSON mapping from a file (safe loader only)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{key}: no file at {path!r}")
    try:
        raw = load_yaml(file.read_text(), key)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{key}: {path!r} is not valid YAML/JSON: "
                          f"{str(error).splitlines()[0]}") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: {path!r} must hold a mapping of keys, got {type(raw).__name__}")
    return raw


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The training keys given on the command line, parsed like YAML scalars."""
    given: dict[str, Any] = {}
    for key in TRAIN_FLAGS:
        if not hasattr(args, key):
            continue
        value = getattr(args, key)
        if key == "optimizer_args":
            pairs = [item.partition("=") for item in value]
            bad = [item for item, (_, sep, _) in zip(value, pairs) if not sep]
            if bad:
                raise ConfigError(f"optimizer_args: expected key=value, got {bad[0]!r}")
            given[key] = {name: scalar(text) for name, _, text in pairs}
        elif key == "where" and value == ["all"]:
            given[key] = "all"
        elif isinstance(value, list):
            given[key] = [scalar(item) for item in value]
        else:
            given[key] = scalar(value)
    return given


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    for key, (nargs, help_text) in TRAIN_FLAGS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, nargs=nargs,
                            default=argparse.SUPPRESS, help=help_text, metavar=key.upper())
    parser.add_argument("--cuda", dest="device", action="store_const", const="cuda",
                        default=argparse.SUPPRESS, help="same as --device cuda")


def _print_epoch(results: dict[str, float]) -> None:
    per_task = sorted(k for k in results if k.startswith(m.TASK_ACCURACY_PREFIX))
    tasks = " ".join(f"{results[k]:.3f}" for k in per_task)
    print(f"epoch {int(results[m.EPOCH]):4d}  loss {results[m.TRAIN_LOSS]:.4f}  "
          f"val acc {results[m.VAL_ACCURACY]:.4f} [{tasks}]  "
          f"prox {results[m.PROXIMITY]:.4f}  transport {results[m.TRANSPORT]:.4f}", flush=True)


def command_train(args: argparse.Namespace) -> int:
    from spatialsearch.fit import fit

    raw = load_config_file(args.config) if args.config else {}
    config: TrialConfig = trial_config_from_dict({**raw, **_flag_values(args)})
    output = Path(args.save or f"runs/train-{datetime.now():%Y%m%d-%H%M%S}")
    summary = fit(config, output, on_epoch=None if args.quiet else _print_epoch)
    best = summary["best"]
    print(f"best epoch {summary['best_epoch']}: val accuracy {best[m.VAL_ACCURACY]:.4f}, "
          f"test accuracy {best[m.TEST_ACCURACY]:.4f}, segregation {best[m.SEGREGATION]:.3f} "
          f"({summary['seconds']:.1f} s)")
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


