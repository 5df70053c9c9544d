"""Training configuration: flat or nested dicts -> validated, frozen dataclasses.

Every user-facing key of one training run lives here, with its type, default and rule. Errors
name the key path, the rule or allowed values, and the value received (STYLE section 4).
This module imports neither torch nor ray: the vocabularies below are closed lists, and a test
checks them against torch.nn / torch.optim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping, get_args

from spatialsearch.datasets import dataset_info, parse_dataset
from spatialsearch.errors import ConfigError
from spatialsearch.validation import (
    boolean,
    bounded,
    check_keys,
    choice,
    int_list,
    text,
)

InputMode = Literal["sequential", "concatenate", "mix"]
Sampler = Literal["random", "task"]
ModelType = Literal["linear", "convolution"]
Norm = Literal["l1", "l2"]


#: torch.nn activation classes that take no required argument (checked against torch in tests).
ACTIVATIONS: tuple[str, ...] = (
    "CELU", "ELU", "GELU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "Identity",
    "LeakyReLU", "LogSigmoid", "Mish", "PReLU", "RReLU", "ReLU", "ReLU6", "SELU", "SiLU",
    "Sigmoid", "Softplus", "Softshrink", "Softsign", "Tanh", "Tanhshrink",
)

#: torch.optim optimizers usable in a plain step() loop. Left out, deliberately: LBFGS (needs a
#: closure), SparseAdam (sparse gradients only) and Muon (2-D parameters only).
OPTIMIZERS: tuple[str, ...] = (
    "ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam",
    "RMSprop", "Rprop", "SGD",
)


@dataclass(frozen=True)
class DataConfig:
    datasets: tuple[str, ...] = ("digits",)  # dataset names, one or more tasks each
    labels: int = 5                     # C: classes per task; task = class // C, label = class % C
    input: InputMode = "concatenate"    # how the tasks' images reach the network (model 2)
    sampler: Sampler = "random"         # sequential mode: tasks interleaved, or blocked by task
    root: str = "data"                  # folder holding torchvision datasets (<root>/<Class>/raw)
    download: bool = False              # let torchvision download missing datasets (online only)
    validation_fraction: float = 0.1    # share of train carved (seeded) as validation split
    test_fraction: float = 0.2          # share carved as test split, digits only (no official)
    batch: int = 32                     # B: samples per step (the original: 256; see docs)
    train_samples: int = 0              # seeded subset of each train split, before validation
                                        # is carved; 0 = all

    @property
    def tasks_per_dataset(self) -> tuple[int, ...]:
        """ceil(K / C) tasks for a dataset of K classes."""
        return tuple(math.ceil(dataset_info(name).classes / self.labels)
                     for name in self.datasets)

    @property
    def num_tasks(self) -> int:
        """T: the total number of tasks over all datasets."""
        return sum(self.tasks_per_dataset)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one dataset image; all datasets of a run share it."""
        return dataset_info(self.datasets[0]).shape

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) the network sees: T channels when concatenated, else the image's."""
        channels, height, width = self.image_shape
        if self.input == "concatenate":
            return (channels * self.num_tasks, height, width)
        return (channels, height, width)


@dataclass(frozen=True)
class ModelConfig:
    type: ModelType = "linear"          # linear: SpatialLinear stack; convolution: SpatialConv2d
    layers: tuple[int, ...] = (150, 100, 50)  # h_0..h_{L-1}: hidden widths (neurons or channels)
    activation: str = "Sigmoid"         # a torch.nn activation class name, one instance per layer
    kernel: int = 3                     # convolution kernel size (odd; padding "same")
    dim: int = 2                        # d: dimensions of the neuron position space


@dataclass(frozen=True)
class CostConfig:
    proximity: float = 0.0              # alpha >= 0, scales the proximity cost
    transport: float = 0.0              # beta >= 0, scales the transport cost
    norm: Norm = "l2"                   # f(w) = |w| (l1) or w**2 (l2) inside transport
    where: tuple[int, ...] = ()         # spatial layer indices k in 0..L with costs; () = all


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "Adam"             # a torch.optim class name
    lr: float = 5e-3                    # learning rate of weights and biases
    positions_lr: float = 0.0           # learning rate of neuron positions; 0 = same as lr
    optimizer_args: tuple[tuple[str, Any], ...] = ()  # extra keyword arguments, sorted by name

    @property
    def effective_positions_lr(self) -> float:
        return self.positions_lr or self.lr


@dataclass(frozen=True)
class RunConfig:
    epochs: int = 50                    # passes over the training split
    seed: int = 1                       # seeds torch, numpy and random; data splits too
    device: str = "auto"                # auto (cuda when present), cpu, cuda or cuda:N
    tensorboard: bool = False           # also write TensorBoard event files next to checkpoints


@dataclass(frozen=True)
class TrialConfig:
    """Everything one training run needs; built only through `trial_config_from_dict`."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def cost_layers(self) -> tuple[int, ...]:
        """Spatial layer indices that receive costs: `where`, or all of 0..L."""
        return self.cost.where or tuple(range(len(self.model.layers) + 1))

    def to_flat_dict(self) -> dict[str, Any]:
        """The flat key -> plain value mapping; `trial_config_from_dict` inverts it."""
        flat: dict[str, Any] = {}
        for section in (self.data, self.model, self.cost, self.optim, self.run):
            for key, value in asdict(section).items():
                if key == "where" and not value:
                    value = "all"
                elif isinstance(value, tuple):
                    value = dict(value) if key == "optimizer_args" else list(value)
                flat[key] = value
        return flat


_SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "cost": CostConfig, "optim": OptimConfig,
    "run": RunConfig,
}
MAX_EPOCHS = 100_000
#: flat key -> section name, e.g. "proximity" -> "cost".
FLAT_KEYS: dict[str, str] = {
    f.name: section for section, cls in _SECTIONS.items() for f in fields(cls)
}


def _optimizer_args(value: Any, path: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: must be a mapping of argument name to value, got {value!r}")
    for key, item in value.items():
        if not isinstance(key, str) or key in ("params", "lr"):
            raise ConfigError(
                f"{path}.{key}: not allowed (params and lr are set by spatialsearch)")
        plain = isinstance(item, (bool, int, float, str)) or (
            isinstance(item, (list, tuple)) and all(isinstance(x, (int, float)) for x in item)
        )
        if not plain:
            raise ConfigError(f"{path}.{key}: must be a number, string, bool or list of "
                              f"numbers, got {item!r}")
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in value.items()))


def _device(value: Any, path: str) -> str:
    ok = isinstance(value, str) and (
        value in ("auto", "cpu", "cuda")
        or (value.startswith("cuda:") and value[5:].isdigit())
    )
    if not ok:
        raise ConfigError(f"{path}: must be auto, cpu, cuda or cuda:N, got {value!r}")
    return value


# One case per training key (52 lines): the table of rules, read top to bottom.
def _parse_value(key: str, value: Any, path: str) -> Any:
    """Check one flat key's value in isolation and return it in its canonical type."""
    match key:
        case "datasets":
            items = [value] if isinstance(value, (str, dict)) else value
            if not isinstance(items, (list, tuple)) or not items:
                raise ConfigError(f"{path}: must be a non-empty list of datasets, got {value!r}")
            return tuple(parse_dataset(item, f"{path}[{i}]") for i, item in enumerate(items))
        case "labels":
            return bounded(value, path, integer=True, low=1)
        case "input":
            return choice(value, path, get_args(InputMode))
        case "sampler":
            return choice(value, path, get_args(Sampler))
        case "root":
            return text(value, path)
        case "download" | "tensorboard":
            return boolean(value, path)
        case "validation_fraction" | "test_fraction":
            return bounded(value, path, integer=False, low=0.0, high=0.5, low_open=True)
        case "train_samples":
            return bounded(value, path, integer=True, low=0)
        case "epochs":  # over 10^5 epochs is a typo (a digits epoch takes ~25 ms)
            return bounded(value, path, integer=True, low=1, high=MAX_EPOCHS)
        case "batch" | "dim":
            return bounded(value, path, integer=True, low=1)
        case "type":
            return choice(value, path, get_args(ModelType))
        case "layers":
            return int_list(value, path, low=1, allow_empty=False)
        case "activation":
            return choice(value, path, ACTIVATIONS)
        case "kernel":
            kernel = bounded(value, path, integer=True, low=1, high=15)
            if kernel % 2 == 0:
                raise ConfigError(f"{path}: must be odd (padding 'same'), got {value!r}")
            return kernel
        case "proximity" | "transport":
            return bounded(value, path, integer=False, low=0.0)
        case "norm":
            return choice(value, path, get_args(Norm))
        case "where":
            return () if value == "all" else int_list(value, path, low=0, allow_empty=False)
        case "optimizer":
            return choice(value, path, OPTIMIZERS)
        case "lr":
            return bounded(value, path, integer=False, low=0.0, low_open=True)
        case "positions_lr":
            return bounded(value, path, integer=False, low=0.0)
        case "optimizer_args":
            return _optimizer_args(value, path)
        case "seed":
            return bounded(value, path, integer=True, low=0, high=2**32 - 1)
        case "device":
            return _device(value, path)
    raise AssertionError(f"unhandled key {key}")  # FLAT_KEYS and this match must agree


def parse_flat_value(key: str, value: Any, prefix: str = "") -> Any:
    """Validate one flat training key (used by search spaces for fixed values and choices)."""
    check_keys({key: value}, FLAT_KEYS, prefix)
    return _parse_value(key, value, f"{prefix}{key}")


def _check_cross_fields(config: TrialConfig, prefix: str) -> None:
    shapes = {dataset_info(name).shape for name in config.data.datasets}
    if len(shapes) > 1:
        described = ", ".join(f"{n} {dataset_info(n).shape}" for n in config.data.datasets)
        raise ConfigError(
            f"{prefix}datasets: all datasets of a run must share one image shape, got {described}"
        )
    most = max(dataset_info(name).classes for name in config.data.datasets)
    if config.data.labels > most:
        raise ConfigError(f"{prefix}labels: at most {most}, the classes of the run's largest "
                          f"dataset, got {config.data.labels}")
    num_layers = len(config.model.layers)
    for i, index in enumerate(config.cost.where):
        if index > num_layers:
            raise ConfigError(
                f"{prefix}where[{i}]: spatial layer indices are 0..{num_layers} "
                f"(0..L-1 hidden, {num_layers} the head), got {index}"
            )


def trial_config_from_dict(raw: Mapping[str, Any], prefix: str = "") -> TrialConfig:
    """Build a TrialConfig from flat keys (`proximity: 1`) or sections (`cost: {proximity: 1}`).

    Raises:
        ConfigError: naming `prefix + key`, the rule, and the value, on the first problem.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix or 'config'}: must be a mapping of keys, got {raw!r}")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _SECTIONS and isinstance(value, Mapping):
            section_keys = {f.name for f in fields(_SECTIONS[key])}
            check_keys(value, section_keys, f"{prefix}{key}.")
            flat.update(value)
        else:
            flat[key] = value
    check_keys(flat, FLAT_KEYS, prefix)
    parsed = {key: _parse_value(key, value, f"{prefix}{key}") for key, value in flat.items()}
    sections = {
        name: cls(**{k: v for k, v in parsed.items() if FLAT_KEYS[k] == name})
        for name, cls in _SECTIONS.items()
    }
    config = TrialConfig(**sections)
    _check_cross_fields(config, prefix)
    return config
