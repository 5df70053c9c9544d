"""The finished search as an Optuna study: in memory for the report, and in
<search folder>/optuna.db (SQLite) for `optuna-dashboard sqlite:///<folder>/optuna.db`.

Written from the results after the search (again after every --resume), for every search
algorithm: while the search runs, Optuna's searcher stays in memory, because Tune restores its
pickled state on --resume and an SQLite study that ran ahead of that state makes the restored
searcher update trials that are already finished.
Trial states: COMPLETE (ran every epoch), PRUNED (stopped early by the scheduler), FAIL (an
error, or an objective that could not be measured: NaN, which Optuna refuses).
A multi-objective search is a multi-objective study: directions and metric names per objective
(optuna-dashboard draws its Pareto front), a COMPLETE trial's values its last-epoch objectives.

optuna.db is written by a niced child process (StudyWriter): Optuna's SQLite storage writes ~3
statements per epoch of every trial through SQLAlchemy (~1 s of CPU for 64 quick-start trials).
The child starts with the search, imports Optuna and prepares an empty store (~0.5 s of CPU);
it gets the trials once the search has ended and writes them while the driver builds the
report.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import optuna

from spatialsearch.search.space.config import Distribution, SearchConfig

STUDY_FILE = "optuna.db"
#: the writing process: niced first, so that preparing while the trials run only takes CPU
#: the trials leave idle (after the search, with the trials done, a core is free anyway)
CHILD = "import os; os.nice(19); from spatialsearch.search.engine.study import main; main()"


class StudyRecord(NamedTuple):
    """Everything a study is made of; picklable, to hand to the writing process."""

    name: str
    directions: list[str]  # "maximize" | "minimize", one per objective
    metric_names: list[str]
    trials: list[optuna.trial.FrozenTrial]


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


def study_record(config: SearchConfig, trials: list[dict[str, Any]]) -> StudyRecord:
    """trials: {trial_id, params, values (per epoch), best_metric, objectives, status, epochs}
    per trial (results.TrialRow's fields)."""
    several = config.multi_objective
    distributions = {key: _distribution(dist) for key, dist in config.space}
    frozen = []
    for trial in trials:
        values = trial["values"]
        params = {k: _plain(trial["params"][k]) for k in distributions if k in trial["params"]}
        if trial["status"] == "ERROR" or not values:
            state, value = optuna.trial.TrialState.FAIL, None
        elif trial["epochs"] < config.epochs:
            state, value = optuna.trial.TrialState.PRUNED, None
        else:
            state = optuna.trial.TrialState.COMPLETE
            value = list(trial["objectives"]) if several else trial["best_metric"]
            if any(v != v for v in (value if several else [value])):  # Optuna refuses NaN
                state, value = optuna.trial.TrialState.FAIL, None  # e.g. segregation unmeasurable
        frozen.append(optuna.trial.create_trial(
            params=params, distributions={k: distributions[k] for k in params},
            value=None if several else value, values=value if several else None, state=state,
            # Optuna keeps no intermediate values for several objectives
            intermediate_values={} if several else {
                step + 1: v for step, v in enumerate(values)},
            user_attrs={"trial_id": trial["trial_id"]}))
    directions = ["maximize" if o.mode == "max" else "minimize" for o in config.objectives]
    return StudyRecord(config.name, directions, [o.metric for o in config.objectives], frozen)


def build_study(record: StudyRecord, storage: optuna.storages.BaseStorage | None = None
                ) -> optuna.Study:
    """The study in a new `storage` (in memory when None)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name=record.name,
                                directions=record.directions)
    with warnings.catch_warnings():  # stable since Optuna 3.2, still marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(record.metric_names)
    study.add_trials(record.trials)
    return study


class StudyWriter:
    """A child process that writes optuna.db: start() it early (it imports Optuna and prepares
    an empty store while the trials run), then write(record) or write_trials, then wait().
    As a context manager: started on entry (the folder must exist), closed on exit.

    The child builds the study in a temporary file and renames it over optuna.db when done,
    so optuna.db is always whole: the previous search's (--resume), the new one, or none.
    A child that never gets a record (close() or the driver exits) leaves nothing behind.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / STUDY_FILE
        self.process: subprocess.Popen | None = None
        self.feeder: threading.Thread | None = None

    def start(self) -> None:
        """Start the child; it imports what the driver can (the driver's sys.path)."""
        if self.process is None:
            paths = os.pathsep.join(p for p in sys.path if p)
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(self.path.resolve())],
                stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": paths})

    def write(self, record: StudyRecord) -> None:
        """Hand the child its study; a thread feeds the pipe, so this returns at once."""
        self.start()
        self.feeder = threading.Thread(target=self._feed, args=(pickle.dumps(record),),
                                       name="optuna-study-feed", daemon=True)
        self.feeder.start()

    def write_trials(self, config: SearchConfig, rows: list[Any]) -> optuna.Study:
        """Hand the child the study of these trials (outcome.rows.TrialRow); the same study
        in memory, for the report."""
        record = study_record(config, [r.__dict__ for r in rows])
        self.write(record)
        return build_study(record)

    def __enter__(self) -> "StudyWriter":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _feed(self, payload: bytes) -> None:
        try:
            with self.process.stdin:
                self.process.stdin.write(payload)
        except BrokenPipeError:  # the child died early: wait() says why
            pass

    def wait(self) -> Path:
        """Raises OSError when the child failed, with its last error line (a full disk...)."""
        self.feeder.join()
        error = self.process.stderr.read().decode(errors="replace").strip().splitlines()
        if self.process.wait() != 0:
            raise OSError(f"writing the Optuna study {str(self.path)!r} failed: "
                          f"{error[-1] if error else f'exit {self.process.returncode}'}")
        return self.path

    def close(self) -> None:
        """End the child: one that got no record removes its temporary file and exits; one
        that did finishes writing first."""
        if self.process is None:
            return
        if self.feeder is None:
            self.process.stdin.close()
        else:
            self.feeder.join()
        with self.process.stderr:
            self.process.stderr.read()  # what is left of it: the child never blocks on it
        self.process.wait()


def main() -> None:
    """Child process: prepare <argv[1]>.<pid>.tmp, read a pickled StudyRecord from stdin,
    build the study there and rename it to argv[1]; without a record, remove it."""
    target = Path(sys.argv[1])
    building = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{building}")
        payload = sys.stdin.buffer.read()
        if payload:
            build_study(pickle.loads(payload), storage)
            storage.engine.dispose()
            os.replace(building, target)
    finally:
        building.unlink(missing_ok=True)
