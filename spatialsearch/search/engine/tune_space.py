"""SearchConfig -> what Ray Tune runs: the param space, the searcher and the scheduler.

Optuna searches use a define-by-run space (DefineByRun): Optuna asks for each key in turn,
so a conditional key (`when:`) is asked only where its condition holds and is absent from
the trial otherwise. Ray's random and grid generators take Tune domains in the param space.
"""

from __future__ import annotations

from typing import Any

from ray import tune

from spatialsearch.data.shared import SharedDatasets
from spatialsearch.search.engine.moasha import MultiObjectiveASHA, rung_epochs
from spatialsearch.search.engine.trainable import TrialPlan
from spatialsearch.search.places.place import Place
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.space.distributions import Distribution, condition_holds, thaw
from spatialsearch.search.space.objectives import modes, names


def _tune_domain(dist: Distribution) -> Any:
    low_high = dist.values
    match dist.kind:
        case "uniform":
            return tune.uniform(*low_high)
        case "loguniform":
            return tune.loguniform(*low_high)
        case "int":
            return tune.randint(low_high[0], low_high[1] + 1)  # inclusive high, as documented
        case "choice":
            return tune.choice([thaw(v) for v in dist.values])
        case "grid":
            return tune.grid_search([thaw(v) for v in dist.values])
    raise AssertionError(dist.kind)


class DefineByRun:
    """Optuna's define-by-run space of a search: called with an Optuna trial, it suggests
    every searched key whose condition holds (unconditional keys first, so a condition sees
    the value it names) and returns the values it chose.

    Choices are suggested by their text (Optuna's categoricals take scalars only) and mapped
    back to the YAML value, so `layers: {choice: [[64], [128, 64]]}` works.
    """

    def __init__(self, space: tuple[tuple[str, Distribution], ...],
                 fixed: dict[str, Any]) -> None:
        self.space = _ordered(space)
        self.fixed = fixed

    def __call__(self, trial: Any) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.fixed)
        chosen: dict[str, Any] = {}
        for key, dist in self.space:
            if dist.when and not condition_holds(dist, values):
                continue
            low, high = dist.values[0], dist.values[-1]
            match dist.kind:
                case "uniform" | "loguniform":
                    value = trial.suggest_float(key, low, high, log=dist.kind == "loguniform")
                case "int":
                    value = trial.suggest_int(key, low, high)
                case _:
                    options = {str(thaw(v)): thaw(v) for v in dist.values}
                    value = options[trial.suggest_categorical(key, list(options))]
            values[key] = chosen[key] = value
        return chosen


def _ordered(space: tuple[tuple[str, Distribution], ...]) -> tuple[tuple[str, Distribution],
                                                                   ...]:
    """Unconditional keys first, then conditional ones (a condition names an unconditional
    key or a fixed one: search_config checks it)."""
    return tuple(sorted(space, key=lambda item: (bool(item[1].when), item[0])))


def trial_folder(trial: Any) -> str:
    """A trial's folder in Tune's experiment: its id (Tune's default name lists every config
    key, the trainable's private ones included)."""
    return f"trial_{trial.trial_id}"


def trial_constants(config: SearchConfig) -> dict[str, Any]:
    """The fixed training keys (every trial's config holds them)."""
    return {k: thaw(v) for k, v in config.fixed}


def trial_plan(config: SearchConfig) -> TrialPlan:
    """What each trial is told besides its config: threads; when to checkpoint (and measure
    segregation): every checkpoint_every epochs and at the scheduler's rungs; and every
    dataset the space can ask for, read here once (data/shared.py)."""
    data = config.base_config.data
    names = [name for choice in config.dataset_choices for name in choice]
    return TrialPlan(cpus=config.resources.cpu, checkpoint_every=config.checkpoint_every,
                     checkpoint_at=stopping_epochs(config),
                     datasets=SharedDatasets.read(names, data.root, data.download))


def param_space(config: SearchConfig) -> dict[str, Any]:
    """trial_constants, plus Tune domains for Ray's own generators (Optuna's space is
    define-by-run)."""
    space = trial_constants(config)
    if config.search.algorithm != "optuna":
        space.update({key: _tune_domain(dist) for key, dist in config.space})
    return space


def stopping_epochs(config: SearchConfig) -> tuple[int, ...]:
    """Epochs after which the scheduler may stop a trial (its rungs; none for fifo). A trial
    checkpoints there, and measures segregation, so a rung decision sees every objective."""
    if config.scheduler.type == "fifo":
        return ()
    return rung_epochs(config.epochs, config.scheduler.grace_period,
                       config.scheduler.reduction_factor)


def searcher(config: SearchConfig) -> Any:
    """Optuna (TPE, NSGA-II, random or CMA-ES; several objectives as metric and mode lists),
    or None: Ray's variant generator (random sampling or the grid)."""
    if config.search.algorithm != "optuna":
        return None
    import optuna

    from spatialsearch.search.engine.ray_compat import PruneAwareOptunaSearch
    from spatialsearch.search.engine.rung_tpe import RungBook, RungMatchedTPESampler

    seed = config.search.seed
    book = (RungBook(modes(config.objectives), (*stopping_epochs(config), config.epochs))
            if config.scheduler.type == "moasha" and config.search.teach_stopped
            and config.search.sampler == "tpe" else None)
    sampler = {"tpe": lambda: (optuna.samplers.TPESampler(seed=seed) if book is None
                               else RungMatchedTPESampler(book, seed=seed)),
               "nsga2": lambda: optuna.samplers.NSGAIISampler(seed=seed),
               "random": lambda: optuna.samplers.RandomSampler(seed=seed),
               "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed)}[config.search.sampler]()
    metric: Any = names(config.objectives) if config.multi_objective else config.metric
    mode: Any = modes(config.objectives) if config.multi_objective else config.mode
    # in memory: study.py writes optuna.db from the results (see why there)
    return PruneAwareOptunaSearch(
        space=DefineByRun(config.space, {k: thaw(v) for k, v in config.fixed}),
        metric=metric, mode=mode, sampler=sampler, full_epochs=config.epochs,
        constraints=config.constraints, book=book)


#: MO-ASHA's rungs and stopped trials, in the search's resume folder (driver_record.py)
MOASHA_STATE = "moasha_journal"  # a JSON-lines file (or, on S3, a folder of entries)


def scheduler(config: SearchConfig, kept: Place | None = None) -> Any:
    """ASHA (one objective), MO-ASHA (several; its state saved in `kept`, the search's resume
    folder, when given) or None (FIFO: every trial to the end)."""
    match config.scheduler.type:
        case "fifo":
            return None
        case "moasha":
            return MultiObjectiveASHA(
                names(config.objectives), modes(config.objectives), max_t=config.epochs,
                grace_period=config.scheduler.grace_period,
                reduction_factor=config.scheduler.reduction_factor,
                state=kept.child(MOASHA_STATE) if kept is not None else None,
                constraints=config.constraints)
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", max_t=config.epochs,
                         grace_period=config.scheduler.grace_period,
                         reduction_factor=config.scheduler.reduction_factor)  # Tune's metric
