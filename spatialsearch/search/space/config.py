"""Search spaces: one YAML file -> a validated, frozen SearchConfig (no torch, no ray).

    name: transport                    # search name: Ray experiment, MLflow parent run
    metric: val_accuracy               # or objectives: [{metric, mode}, ...] (objectives.py)
    num_samples: 16                    # trials (a grid multiplies them: Ray semantics)
    max_concurrent_trials: 2
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2}    # or moasha, fifo
    search: {algorithm: optuna, sampler: tpe, seed: 0}               # or random, grid
    resources: {cpu: 1, gpu: 0}
    max_failures: 1
    output: runs                       # the search writes <output>/<name>/
    storage: s3://bucket/prefix        # Ray experiment + results there too (storage.py)
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
from typing import Any, Iterator, Mapping

from spatialsearch import metrics as m
from spatialsearch.config import (
    FLAT_KEYS,
    TrialConfig,
    parse_flat_value,
    trial_config_from_dict,
)
from spatialsearch.errors import ConfigError
from spatialsearch.search.space.budget import MAX_TRIALS, check_counts, check_fixed_keys
from spatialsearch.search.space.constraints import Constraint, parse_constraints
from spatialsearch.search.space.distributions import (
    Distribution,
    check_conditions,
    condition_holds,
    freeze,
    parse_distribution,
    thaw,
)
from spatialsearch.search.space.objectives import (
    Objective,
    check_meaningful,
    check_objectives,
    parse_objectives,
)
from spatialsearch.search.space.sections import (
    ResourcesConfig,
    SchedulerConfig,
    SearchAlgorithmConfig,
    parse_resources,
    parse_scheduler,
    parse_search,
)
from spatialsearch.search.space.storage import (
    StorageConfig,
    endpoint_url,
    parse_storage,
    storage_uri,
)
from spatialsearch.validation import (
    check_keys,
    integer,
    mapping,
    number,
    text,
    tracking_uri,
)


@dataclass(frozen=True)
class SearchConfig:
    name: str = "search"
    objectives: tuple[Objective, ...] = (Objective(m.VAL_ACCURACY, "max"),)
    constraints: tuple[Constraint, ...] = ()  # bounds a trial must meet (constraints.py)
    num_samples: int = 8
    max_concurrent_trials: int = 2
    time_budget_s: float = 0.0          # stop starting and running trials after this many
                                        # seconds of search (Tune's); 0 = no limit
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    search: SearchAlgorithmConfig = field(default_factory=SearchAlgorithmConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    max_failures: int = 1               # retries of a raising trial from its last checkpoint
    checkpoint_every: int = 10          # epochs between a trial's checkpoints; it also saves one
                                        # at its last epoch and wherever ASHA may stop it
    output: str = "runs"                # parent folder of <output>/<name>/
    storage: StorageConfig = field(default_factory=StorageConfig)  # "" = <output>/<name>/ray
    tracking_uri: str = ""              # MLflow store; "" = sqlite:///<search folder>/mlflow.db
    experiment: str = "spatialsearch"   # MLflow experiment
    analyze: int = 1                    # best K trials analysed after the search
    reseed: int = 0                     # train each Pareto trial again with K further seeds
    fixed: tuple[tuple[str, Any], ...] = ()           # training key -> value (sorted)
    space: tuple[tuple[str, Distribution], ...] = ()  # training key -> distribution (sorted)
    source_hash: str = ""               # sha256 of the YAML text (MLflow tag)
    #: the TrialConfig of each corner combination (corner_configs), built once when validated
    corners: tuple[TrialConfig, ...] = field(default=(), compare=False, repr=False)

    @property
    def metric(self) -> str:
        """The first objective's metric: what single-objective rankings and progress use."""
        return self.objectives[0].metric

    @property
    def mode(self) -> str:
        return self.objectives[0].mode

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def folder(self) -> Path:
        return Path(self.output) / self.name

    @property
    def epochs(self) -> int:
        return self.base_config.run.epochs

    @property
    def base_config(self) -> TrialConfig:
        """The fixed keys over defaults (searched keys at their first example value)."""
        values = {key: thaw(value) for key, value in self.fixed}
        values.update({key: thaw(dist.example_values()[0]) for key, dist in self.space})
        return trial_config_from_dict(values)

    @property
    def dataset_choices(self) -> list[tuple[str, ...]]:
        """Every value `datasets` can take in this search (each of the same task count)."""
        for key, dist in self.space:
            if key == "datasets":
                return [parse_flat_value("datasets", thaw(v)) for v in dist.values]
        return [self.base_config.data.datasets]

    def corner_configs(self, limit: int = 256) -> Iterator[TrialConfig]:
        """The TrialConfig of each combination of the space's corners (bounds or options),
        the first `limit` of them; a conditional key only where its condition holds.

        Raises:
            ConfigError: a combination is not a valid trial (e.g. `where` vs `layers`).
        """
        keys = [key for key, _ in self.space]
        corners = [dist.example_values() for _, dist in self.space]
        fixed = {k: thaw(v) for k, v in self.fixed}
        for values in itertools.islice(itertools.product(*corners), limit):
            trial = {**fixed, **{k: thaw(v) for k, v in zip(keys, values)}}
            for key, dist in self.space:
                if dist.when and not condition_holds(dist, trial):
                    del trial[key]
            yield trial_config_from_dict(trial, prefix="fixed/space: ")

    @property
    def grid_size(self) -> int:
        sizes = [len(d.values) for _, d in self.space if d.kind == "grid"]
        return math.prod(sizes) if sizes else 1

    @property
    def total_trials(self) -> int:
        """Trials Ray will run: num_samples times every grid combination."""
        return self.num_samples * self.grid_size


_TOP_KEYS = {
    "name", "metric", "mode", "objectives", "constraints", "reseed", "num_samples",
    "max_concurrent_trials", "time_budget_s",
    "scheduler", "search", "resources", "max_failures", "checkpoint_every", "output",
    "tracking_uri", "experiment", "analyze", "fixed", "space", "storage",
}


def _name(raw: Any, path: str) -> str:
    name = text(raw, path)
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ConfigError(f"{path}: letters, digits, '-', '_' and '.' only, got {raw!r}")
    return name


def _keys(raw: Mapping[str, Any]) -> tuple[tuple, tuple]:
    """(fixed, space): the training keys, each either fixed or searched."""
    fixed_raw = mapping(raw.get("fixed"), "fixed")
    space_raw = mapping(raw.get("space"), "space")
    check_keys(fixed_raw, FLAT_KEYS, "fixed.")
    check_keys(space_raw, FLAT_KEYS, "space.")
    both = sorted(set(fixed_raw) & set(space_raw))
    if both:
        raise ConfigError(f"space.{both[0]}: is also in fixed; a key is either fixed or searched")
    for key, value in fixed_raw.items():
        parse_flat_value(key, value, prefix="fixed.")
    space = tuple(sorted((k, parse_distribution(k, v, f"space.{k}"))
                         for k, v in space_raw.items()))
    return tuple(sorted((k, freeze(v)) for k, v in fixed_raw.items())), space


def search_config_from_dict(raw: Any, source_text: str = "") -> SearchConfig:
    """Validate a search-space document.

    Raises:
        ConfigError: naming the key path, the rule and the value.
    """
    raw = mapping(raw, "search space")
    check_keys(raw, _TOP_KEYS, "")
    fixed, space = _keys(raw)
    default = SearchConfig()

    def count(key: str, low: int, high: int | None = None) -> int:
        return integer(raw.get(key, getattr(default, key)), key, low, high=high)

    config = SearchConfig(
        name=_name(raw.get("name", default.name), "name"), objectives=parse_objectives(raw),
        constraints=parse_constraints(raw),
        num_samples=count("num_samples", 1, MAX_TRIALS),
        max_concurrent_trials=count("max_concurrent_trials", 1),
        time_budget_s=number(raw.get("time_budget_s", 0.0), "time_budget_s", 0.0),
        scheduler=parse_scheduler(raw), search=parse_search(raw),
        resources=parse_resources(raw),
        max_failures=count("max_failures", 0), checkpoint_every=count("checkpoint_every", 1),
        output=text(raw.get("output", default.output), "output"),
        storage=parse_storage(raw.get("storage")),
        tracking_uri=tracking_uri(raw.get("tracking_uri", default.tracking_uri),
                                  "tracking_uri"),
        experiment=text(raw.get("experiment", default.experiment), "experiment"),
        analyze=count("analyze", 0), reseed=count("reseed", 0), fixed=fixed, space=space,
        source_hash=hashlib.sha256(source_text.encode()).hexdigest()[:16])
    check_fixed_keys((key for key, _ in config.space), config.base_config.data.labels,
                     config.dataset_choices)
    _check_counts(config)
    _check_cross_fields(config)
    config = replace(config, corners=tuple(config.corner_configs()))
    paths = ([f"objectives[{i}].metric" for i in range(len(config.objectives))]
             if "objectives" in raw else ["metric"])
    check_meaningful(config.objectives + config.constraints,
                     paths + [f"constraints[{i}].metric" for i in range(len(config.constraints))],
                     config.corners)
    return config


def _check_counts(config: SearchConfig) -> None:
    check_counts(config.num_samples, config.grid_size, config.reseed, config.multi_objective)


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
    check_objectives(config.objectives, config.scheduler.type, config.search.algorithm,
                     config.search.sampler)
    check_conditions(config.space, dict(config.fixed), config.search.algorithm)
    if config.scheduler.type != "fifo" and config.scheduler.grace_period > config.epochs:
        raise ConfigError(f"scheduler.grace_period: must be in [1, epochs={config.epochs}], "
                          f"got {config.scheduler.grace_period}")
    if not config.space and algorithm == "optuna":
        raise ConfigError("space: optuna needs at least one searched key; add one or use "
                          "search.algorithm: random")


def with_overrides(config: SearchConfig, **changes: Any) -> SearchConfig:
    """A copy with command-line overrides (output, tracking_uri, num_samples, storage),
    validated as their YAML keys are."""
    given = {k: v for k, v in changes.items() if v is not None}
    if "tracking_uri" in given:
        given["tracking_uri"] = tracking_uri(given["tracking_uri"], "--tracking-uri")
    if "storage" in given or "storage_endpoint" in given:
        given["storage"] = StorageConfig(
            storage_uri(given.get("storage", config.storage.uri), "--storage"),
            endpoint_url(given.pop("storage_endpoint", config.storage.endpoint),
                         "--storage-endpoint"))
    if "output" in given:
        given["output"] = text(given["output"], "--output")
    if "num_samples" in given:
        given["num_samples"] = integer(given["num_samples"], "--num-samples", 1,
                                       high=MAX_TRIALS)
    changed = replace(config, **given)
    _check_counts(changed)
    return changed
