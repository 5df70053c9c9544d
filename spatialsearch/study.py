"""The finished search as an Optuna study in <search folder>/optuna.db (SQLite).

For `optuna-dashboard sqlite:///<folder>/optuna.db` and Optuna's parameter-importance
evaluators. Written from the results after the search (again after every --resume), for every
search algorithm: while the search runs, Optuna's searcher stays in memory, because Tune
restores its pickled state on --resume and an SQLite study that ran ahead of that state makes
the restored searcher update trials that are already finished.
Trial states: COMPLETE (ran every epoch), PRUNED (stopped early by the scheduler), FAIL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from spatialsearch.search_config import Distribution, SearchConfig

STUDY_FILE = "optuna.db"


def _distribution(dist: Distribution) -> optuna.distributions.BaseDistribution:
    match dist.kind:
        case "uniform":
            return optuna.distributions.FloatDistribution(*dist.values)
        case "loguniform":
            return optuna.distributions.FloatDistribution(*dist.values, log=True)
        case "int":
            return optuna.distributions.IntDistribution(*dist.values)
    return optuna.distributions.CategoricalDistribution([_plain(v) for v in dist.values])


def _plain(value: Any) -> Any:
    """Optuna categoricals take None, bool, int, float or str: lists become their text."""
    return value if isinstance(value, (type(None), bool, int, float, str)) else str(list(value))


def export_study(config: SearchConfig, trials: list[dict[str, Any]]) -> Path:
    """Write the study; trials: {params, values (per epoch), status, epochs}."""
    path = config.folder / STUDY_FILE
    storage = f"sqlite:///{path.resolve()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if config.name in optuna.get_all_study_names(storage):
        optuna.delete_study(study_name=config.name, storage=storage)
    study = optuna.create_study(storage=storage, study_name=config.name,
                                direction="maximize" if config.mode == "max" else "minimize")
    distributions = {key: _distribution(dist) for key, dist in config.space}
    for trial in trials:
        values = trial["values"]
        params = {k: _plain(trial["params"][k]) for k in distributions if k in trial["params"]}
        if trial["status"] == "ERROR" or not values:
            state, value = optuna.trial.TrialState.FAIL, None
        elif trial["epochs"] < config.epochs:
            state, value = optuna.trial.TrialState.PRUNED, None
        else:
            best = max(values) if config.mode == "max" else min(values)
            state, value = optuna.trial.TrialState.COMPLETE, best
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: distributions[k] for k in params},
            value=value, state=state,
            intermediate_values={step + 1: v for step, v in enumerate(values)},
            user_attrs={"trial_id": trial["trial_id"]}))
    return path
