"""The small sections of a search space: scheduler, search (the algorithm) and resources
(what Tune reserves for each trial)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping

from spatialsearch.errors import ConfigError
from spatialsearch.validation import boolean, check_keys, integer, literal, mapping, number

SchedulerType = Literal["asha", "moasha", "fifo"]
Algorithm = Literal["optuna", "random", "grid"]
OptunaSampler = Literal["tpe", "nsga2", "random", "cmaes"]


@dataclass(frozen=True)
class SchedulerConfig:
    type: SchedulerType = "asha"        # asha / moasha (several objectives): stop weak trials
                                        # early; fifo: run all to the end
    grace_period: int = 2               # epochs a trial runs before ASHA may stop it
    reduction_factor: int = 2           # ASHA keeps 1 / reduction_factor at each rung


@dataclass(frozen=True)
class SearchAlgorithmConfig:
    algorithm: Algorithm = "optuna"     # optuna proposes; random samples; grid enumerates
    sampler: OptunaSampler = "tpe"      # optuna's sampler
    seed: int = 0                       # seeds the sampler
    teach_stopped: bool = True          # MO-ASHA's rung and rank of each stopped trial reach
                                        # TPE (ray_compat.PruneAwareOptunaSearch); false: all
                                        # stopped trials tie, as in Optuna


@dataclass(frozen=True)
class ResourcesConfig:
    cpu: float = 1.0                    # CPUs per trial (also torch's thread count)
    gpu: float = 0.0                    # GPUs per trial; 0.25 = four trials share a card
    custom: tuple[tuple[str, float], ...] = ()  # a node's custom resources (`ray start
                                        # --resources`) per trial: places trials on those nodes

    def tune_resources(self) -> dict[str, float]:
        """What Tune reserves for each trial."""
        return {"cpu": self.cpu, "gpu": self.gpu, **dict(self.custom)}


def _section(raw: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
    section = mapping(raw.get(name), name)
    check_keys(section, keys, f"{name}.")
    return section


def parse_scheduler(raw: Mapping[str, Any]) -> SchedulerConfig:
    section = _section(raw, "scheduler", {"type", "grace_period", "reduction_factor"})
    default = SchedulerConfig()
    return SchedulerConfig(
        type=literal(section.get("type", default.type), "scheduler.type", SchedulerType),
        grace_period=integer(section.get("grace_period", default.grace_period),
                             "scheduler.grace_period", 1),
        reduction_factor=integer(section.get("reduction_factor", default.reduction_factor),
                                 "scheduler.reduction_factor", 2))


def parse_search(raw: Mapping[str, Any]) -> SearchAlgorithmConfig:
    section = _section(raw, "search", {"algorithm", "sampler", "seed", "teach_stopped"})
    default = SearchAlgorithmConfig()
    return SearchAlgorithmConfig(
        algorithm=literal(section.get("algorithm", default.algorithm), "search.algorithm",
                          Algorithm),
        sampler=literal(section.get("sampler", default.sampler), "search.sampler",
                        OptunaSampler),
        seed=integer(section.get("seed", default.seed), "search.seed", 0),
        teach_stopped=boolean(section.get("teach_stopped", default.teach_stopped),
                              "search.teach_stopped"))


def parse_resources(raw: Mapping[str, Any]) -> ResourcesConfig:
    section, default = _section(raw, "resources", {"cpu", "gpu", "custom"}), ResourcesConfig()
    custom = mapping(section.get("custom"), "resources.custom")
    for name, amount in custom.items():
        if not isinstance(name, str) or not name or name.upper() in ("CPU", "GPU", "MEMORY"):
            raise ConfigError(f"resources.custom: a resource name of the cluster (as given to "
                              f"`ray start --resources`), not CPU/GPU/memory, got {name!r}")
        number(amount, f"resources.custom.{name}", 0.0)
    return ResourcesConfig(
        cpu=number(section.get("cpu", default.cpu), "resources.cpu", 0.01),
        gpu=number(section.get("gpu", default.gpu), "resources.gpu", 0.0),
        custom=tuple(sorted((name, float(amount)) for name, amount in custom.items())))


