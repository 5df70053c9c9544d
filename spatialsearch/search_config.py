"""Search spaces: one YAML file -> a validated, frozen SearchConfig (no torch, no ray).

    name: transport                    # search name: Ray experiment, MLflow parent run
    metric: val_accuracy               # what the searcher and scheduler optimise
    mode: max
    num_samples: 16                    # trials (a grid multiplies them: Ray semantics)
    max_concurrent_trials: 2
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2}    # or fifo
    search: {algorithm: optuna, sampler: tpe, seed: 0}               # or random, grid
    resources: {cpu: 1, gpu: 0}
    max_failures: 1
    output: runs                       # the search writes <output>/<name>/
    tracking_uri: ""                   # "" = SQLite store in the search folder
    experiment: spatialsearch
    analyze: 1                         # analyse the best K trials afterwards (0 = none)
    fixed: {datasets: [digits], epochs: 10}            # training keys (config.py), fixed
    space:                                             # training keys, searched
      transport: {loguniform: [0.1, 100]}
      norm: {choice: [l1, l2]}
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping, get_args

from spatialsearch.config import (
    FLAT_KEYS,
    TrialConfig,
    check_keys,
    parse_flat_value,
    trial_config_from_dict,
)
from spatialsearch.errors import ConfigError

SchedulerType = Literal["asha", "fifo"]
Algorithm = Literal["optuna", "random", "grid"]
OptunaSampler = Literal["tpe", "random", "cmaes"]
DistributionKind = Literal["uniform", "loguniform", "int", "choice", "grid"]
Mode = Literal["max", "min"]


@dataclass(frozen=True)
class Distribution:
    kind: DistributionKind              # how a trial draws the key's value
    values: tuple[Any, ...]             # (low, high) for uniform/loguniform/int; options else

    def example_values(self) -> tuple[Any, ...]:
        """Values that span the domain (bounds or every option), for validation."""
        return self.values


@dataclass(frozen=True)
class SchedulerConfig:
    type: SchedulerType = "asha"        # asha: stop weak trials early; fifo: run all to the end
    grace_period: int = 2               # epochs a trial runs before ASHA may stop it
    reduction_factor: int = 2           # ASHA keeps 1 / reduction_factor at each rung


@dataclass(frozen=True)
class SearchAlgorithmConfig:
    algorithm: Algorithm = "optuna"     # optuna proposes; random samples; grid enumerates
    sampler: OptunaSampler = "tpe"      # optuna's sampler
    seed: int = 0                       # seeds the sampler


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = 1.0                    # CPUs per trial (also torch's thread count)
    gpu: float = 0.0                    # GPUs per trial; 0.25 = four trials share a card


@dataclass(frozen=True)
class SearchConfig:
    name: str = "search"
    metric: str = "val_accuracy"
    mode: Mode = "max"
    num_samples: int = 8
    max_concurrent_trials: int = 2
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    search: SearchAlgorithmConfig = field(default_factory=SearchAlgorithmConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    max_failures: int = 1               # retries of a raising trial from its last checkpoint
    checkpoint_every: int = 10          # epochs between a trial's checkpoints; it also saves one
                                        # at its last epoch and wherever ASHA may stop it
    output: str = "runs"                # parent folder of <output>/<name>/
    tracking_uri: str = ""              # MLflow store; "" = sqlite:///<search folder>/mlflow.db
    experiment: str = "spatialsearch"   # MLflow experiment
    analyze: int = 1                    # best K trials analysed after the search
    fixed: tuple[tuple[str, Any], ...] = ()           # training key -> value (sorted)
    space: tuple[tuple[str, Distribution], ...] = ()  # training key -> distribution (sorted)
    source_hash: str = ""               # sha256 of the YAML text (MLflow tag)

    @property
    def folder(self) -> Path:
        return Path(self.output) / self.name

    @property
    def epochs(self) -> int:
        return self.base_config.run.epochs

    @property
    def base_config(self) -> TrialConfig:
        """The fixed keys over defaults (searched keys at their first example value)."""
        values = dict(self.fixed)
        values.update({key: dist.example_values()[0] for key, dist in self.space})
        return trial_config_from_dict(values)

    @property
    def dataset_choices(self) -> list[tuple[str, ...]]:
        """Every value `datasets` can take in this search."""
        for key, dist in self.space:
            if key == "datasets":
                return [tuple(v) if isinstance(v, tuple) else (v,) for v in dist.values]
        return [self.base_config.data.datasets]

    @property
    def grid_size(self) -> int:
        sizes = [len(d.values) for _, d in self.space if d.kind == "grid"]
        return math.prod(sizes) if sizes else 1

    @property
    def total_trials(self) -> int:
        """Trials Ray will run: num_samples times every grid combination."""
        return self.num_samples * self.grid_size


_TOP_KEYS = {
    "name", "metric", "mode", "num_samples", "max_concurrent_trials", "scheduler", "search",
    "resources", "max_failures", "checkpoint_every", "output", "tracking_uri", "experiment",
    "analyze", "fixed", "space",
}
#: metrics a search may optimise (per-task and per-layer names are accepted too).
METRICS = ("val_accuracy", "val_loss", "train_loss", "segregation", "proximity", "transport")


def _mapping(raw: Any, path: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {raw!r}")
    return raw


def _int(raw: Any, path: str, low: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise ConfigError(f"{path}: must be an integer >= {low}, got {raw!r}")
    return raw


def _number(raw: Any, path: str, low: float) -> float:
    ok = not isinstance(raw, bool) and isinstance(raw, (int, float)) and math.isfinite(raw)
    if not ok or raw < low:
        raise ConfigError(f"{path}: must be a number >= {low:g}, got {raw!r}")
    return float(raw)


def _text(raw: Any, path: str, *, empty: bool = False) -> str:
    if not isinstance(raw, str) or (not raw and not empty):
        raise ConfigError(f"{path}: must be a {'' if empty else 'non-empty '}string, got {raw!r}")
    return raw


def _literal(raw: Any, path: str, kind: Any) -> str:
    allowed = get_args(kind)
    if raw not in allowed:
        raise ConfigError(f"{path}: must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _name(raw: Any, path: str) -> str:
    name = _text(raw, path)
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ConfigError(f"{path}: letters, digits, '-', '_' and '.' only, got {raw!r}")
    return name


def _metric(raw: Any, path: str) -> str:
    metric = _text(raw, path)
    prefixes = ("val_accuracy_task", "segregation_layer")
    if metric not in METRICS and not any(metric.startswith(p) and metric[len(p):].isdigit()
                                         for p in prefixes):
        raise ConfigError(f"{path}: must be one of {', '.join(METRICS)} (or val_accuracy_taskN, "
                          f"segregation_layerN), got {raw!r}")
    return metric


def _distribution(key: str, raw: Any, path: str) -> Distribution:
    kinds = get_args(DistributionKind)
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ConfigError(f"{path}: must be one mapping like {{loguniform: [0.1, 10]}} with one "
                          f"of {', '.join(kinds)}, got {raw!r}")
    (kind, values), = raw.items()
    if kind not in kinds:
        raise ConfigError(f"{path}: unknown distribution {kind!r}; allowed: {', '.join(kinds)}")
    where = f"{path}.{kind}"
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: must be a non-empty list, got {values!r}")
    if kind in ("uniform", "loguniform", "int"):
        if len(values) != 2:
            raise ConfigError(f"{where}: must be [low, high], got {values!r}")
        low, high = values
        integer = kind == "int"
        for bound, name in ((low, "low"), (high, "high")):
            ok_type = isinstance(bound, int) if integer else isinstance(bound, (int, float))
            if isinstance(bound, bool) or not ok_type:
                kind_text = "an integer" if integer else "a number"
                raise ConfigError(f"{where}: {name} must be {kind_text}, got {bound!r}")
        if not low < high:
            raise ConfigError(f"{where}: `low < high` must hold, but got (low={low}, high={high})")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"{where}: loguniform needs low > 0, got low={low}")
    for index, value in enumerate(values):  # every bound or option must be a valid value
        parse_flat_value(key, value, prefix=f"{where}[{index}] -> ")
    return Distribution(kind, tuple(tuple(v) if isinstance(v, list) else v for v in values))


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


def _check_combinations(config: SearchConfig) -> None:
    """Every combination of domain corners must make a valid TrialConfig (e.g. where vs
    layers). Capped: the first 256 combinations."""
    keys = [key for key, _ in config.space]
    corners = [dist.example_values() for _, dist in config.space]
    fixed = {k: thaw(v) for k, v in config.fixed}
    for values in itertools.islice(itertools.product(*corners), 256):
        trial = {**fixed, **{k: thaw(v) for k, v in zip(keys, values)}}
        trial_config_from_dict(trial, prefix="fixed/space: ")


def thaw(value: Any) -> Any:
    """Frozen tuples back to the lists/dicts a trial config takes."""
    if isinstance(value, tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str)
                         for v in value):
            return {k: thaw(v) for k, v in value}
        return [thaw(v) for v in value]
    return value


def search_config_from_dict(raw: Any, source_text: str = "") -> SearchConfig:
    """Validate a search-space document.

    Raises:
        ConfigError: naming the key path, the rule and the value.
    """
    raw = _mapping(raw, "search space")
    check_keys(raw, _TOP_KEYS, "")
    scheduler = _mapping(raw.get("scheduler"), "scheduler")
    check_keys(scheduler, {"type", "grace_period", "reduction_factor"}, "scheduler.")
    search = _mapping(raw.get("search"), "search")
    check_keys(search, {"algorithm", "sampler", "seed"}, "search.")
    resources = _mapping(raw.get("resources"), "resources")
    check_keys(resources, {"cpu", "gpu"}, "resources.")
    fixed_raw = _mapping(raw.get("fixed"), "fixed")
    space_raw = _mapping(raw.get("space"), "space")
    check_keys(fixed_raw, FLAT_KEYS, "fixed.")
    check_keys(space_raw, FLAT_KEYS, "space.")
    both = sorted(set(fixed_raw) & set(space_raw))
    if both:
        raise ConfigError(f"space.{both[0]}: is also in fixed; a key is either fixed or searched")
    for key, value in fixed_raw.items():
        parse_flat_value(key, value, prefix="fixed.")
    space = tuple(sorted((k, _distribution(k, v, f"space.{k}")) for k, v in space_raw.items()))
    defaults = SearchConfig()
    d_sched, d_search, d_res = SchedulerConfig(), SearchAlgorithmConfig(), ResourcesConfig()
    config = SearchConfig(
        name=_name(raw.get("name", defaults.name), "name"),
        metric=_metric(raw.get("metric", defaults.metric), "metric"),
        mode=_literal(raw.get("mode", defaults.mode), "mode", Mode),
        num_samples=_int(raw.get("num_samples", defaults.num_samples), "num_samples", 1),
        max_concurrent_trials=_int(raw.get("max_concurrent_trials",
                                           defaults.max_concurrent_trials),
                                   "max_concurrent_trials", 1),
        scheduler=SchedulerConfig(
            type=_literal(scheduler.get("type", d_sched.type), "scheduler.type", SchedulerType),
            grace_period=_int(scheduler.get("grace_period", d_sched.grace_period),
                              "scheduler.grace_period", 1),
            reduction_factor=_int(scheduler.get("reduction_factor", d_sched.reduction_factor),
                                  "scheduler.reduction_factor", 2),
        ),
        search=SearchAlgorithmConfig(
            algorithm=_literal(search.get("algorithm", d_search.algorithm), "search.algorithm",
                               Algorithm),
            sampler=_literal(search.get("sampler", d_search.sampler), "search.sampler",
                             OptunaSampler),
            seed=_int(search.get("seed", d_search.seed), "search.seed", 0),
        ),
        resources=ResourcesConfig(
            cpu=_number(resources.get("cpu", d_res.cpu), "resources.cpu", 0.01),
            gpu=_number(resources.get("gpu", d_res.gpu), "resources.gpu", 0.0),
        ),
        max_failures=_int(raw.get("max_failures", defaults.max_failures), "max_failures", 0),
        checkpoint_every=_int(raw.get("checkpoint_every", defaults.checkpoint_every),
                              "checkpoint_every", 1),
        output=_text(raw.get("output", defaults.output), "output"),
        tracking_uri=_text(raw.get("tracking_uri", defaults.tracking_uri), "tracking_uri",
                           empty=True),
        experiment=_text(raw.get("experiment", defaults.experiment), "experiment"),
        analyze=_int(raw.get("analyze", defaults.analyze), "analyze", 0),
        fixed=tuple(sorted((k, _freeze(v)) for k, v in fixed_raw.items())),
        space=space,
        source_hash=hashlib.sha256(source_text.encode()).hexdigest()[:16],
    )
    _check_cross_fields(config)
    return config


def _check_cross_fields(config: SearchConfig) -> None:
    kinds = {dist.kind for _, dist in config.space}
    algorithm = config.search.algorithm
    if "grid" in kinds and algorithm != "grid":
        key = next(k for k, d in config.space if d.kind == "grid")
        raise ConfigError(f"space.{key}: a grid cannot be combined with search.algorithm "
                          f"{algorithm!r}; use choice, or search.algorithm: grid")
    if algorithm == "grid" and kinds - {"grid"}:
        key = next(k for k, d in config.space if d.kind != "grid")
        raise ConfigError(f"space.{key}: search.algorithm grid takes only grid distributions")
    if config.resources.gpu > 1 and config.resources.gpu != int(config.resources.gpu):
        raise ConfigError(f"resources.gpu: above 1 must be a whole number, got "
                          f"{config.resources.gpu}")
    if config.scheduler.type == "asha" and config.scheduler.grace_period > config.epochs:
        raise ConfigError(f"scheduler.grace_period: must be in [1, epochs={config.epochs}], "
                          f"got {config.scheduler.grace_period}")
    if not config.space and algorithm == "optuna":
        raise ConfigError("space: optuna needs at least one searched key; add one or use "
                          "search.algorithm: random")
    _check_combinations(config)


def with_overrides(config: SearchConfig, **changes: Any) -> SearchConfig:
    """A copy with command-line overrides (output, tracking_uri, num_samples)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
