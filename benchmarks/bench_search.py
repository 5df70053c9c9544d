"""(d) search efficiency: ours vs Ray Tune's stock set-up on the same space, same Ray.

Usage:
    python benchmarks/bench_search.py [--space search_spaces/quickstart.yaml]
        [--samples 16 128] [--setups stock ours] [--repeats 1]
efficiency = (sum over trials of their own seconds / concurrent slots) / wall seconds of the
search, a trial's own seconds being Ray's time_total_s: the time its trainable ran (data,
training, evaluation, checkpoints). What is left is what the search machinery costs: starting
workers, scheduling, logging. The table also shows the pure training seconds (epoch_seconds).
Ours: spatialsearch.search.runner.run_search (reused actors, several epochs per actor call,
driver-side batched MLflow logging, optuna.db written beside the report).
Stock: the same Tuner (trainable, space, Optuna with the same seed, ASHA) with a fresh worker
per trial (reuse_actors=False) and ray.air.integrations.mlflow.MLflowLoggerCallback, as Ray's
docs set it up. Both log to their own SQLite MLflow store. Unlike the other benchmarks this one
needs Ray and MLflow: they are what it measures. Analysis after the search is off (analyze: 0).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch import metrics as m  # noqa: E402
from spatialsearch.cli import load_config_file  # noqa: E402
from spatialsearch.search.space.config import search_config_from_dict  # noqa: E402


def _trial_seconds(grid) -> tuple[float, float]:
    """(sum of time_total_s, sum of epoch_seconds) over the trials."""
    own = training = 0.0
    for result in grid:
        frame = result.metrics_dataframe
        if frame is not None and m.EPOCH_SECONDS in frame:
            training += float(frame[m.EPOCH_SECONDS].sum())
            own += float(frame["time_total_s"].max())
    return own, training


def stock(config, folder: Path) -> tuple[float, tuple[float, float], int]:
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    from spatialsearch.search.engine import tune_space
    from spatialsearch.search.engine.trainable import train_trial

    plain = tune.with_parameters(train_trial, plan=tune_space.trial_plan(config))
    trainable = tune.with_resources(plain, {"cpu": config.resources.cpu})
    tuner = tune.Tuner(
        trainable, param_space=tune_space.param_space(config),
        tune_config=tune.TuneConfig(
            metric=config.metric, mode=config.mode, search_alg=tune_space.searcher(config),
            scheduler=tune_space.scheduler(config), num_samples=config.num_samples,
            max_concurrent_trials=config.max_concurrent_trials, reuse_actors=False),
        run_config=tune.RunConfig(
            name="stock", storage_path=str(folder / "ray"), verbose=0,
            callbacks=[MLflowLoggerCallback(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                                            experiment_name="stock")]))
    started = time.perf_counter()
    grid = tuner.fit()
    return time.perf_counter() - started, _trial_seconds(grid), len(grid)


def _recorded_seconds(experiment: Path) -> tuple[float, float]:
    """(trials' own seconds, of which training) from each trial's result.json."""
    from spatialsearch.search.places.place import locate
    from spatialsearch.search.places.ray_folder import recorded_trials
    from spatialsearch.search.space.storage import StorageConfig

    own = training = 0.0
    for trial in recorded_trials(locate(str(experiment.resolve()), StorageConfig())):
        training += sum(float(r.get(m.EPOCH_SECONDS, 0.0)) for r in trial.results)
        own += max(float(r.get("time_total_s", 0.0)) for r in trial.results)
    return own, training


def ours(config) -> tuple[float, tuple[float, float], int]:
    from spatialsearch.search.runner import run_search

    started = time.perf_counter()
    summary = run_search(config, quiet=True)
    wall = time.perf_counter() - started
    return wall, _recorded_seconds(config.folder / "ray" / config.name), summary.trials


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="search_spaces/quickstart.yaml")
    parser.add_argument("--samples", type=int, nargs="+", default=[16, 128],
                        help="num_samples of each measured search (each >= 16)")
    parser.add_argument("--setups", nargs="+", choices=["stock", "ours"],
                        default=["stock", "ours"])
    parser.add_argument("--repeats", type=int, default=1,
                        help="searches per set-up and size (ASHA's decisions, and so the "
                             "epochs trained, vary from run to run)")
    args = parser.parse_args()
    import ray

    raw = load_config_file(args.space)
    rows = []
    measured = []
    with tempfile.TemporaryDirectory() as folder:
        base = search_config_from_dict(raw)
        slots = base.max_concurrent_trials
        ray.init(address="local", num_cpus=slots, include_dashboard=False,
                 configure_logging=False, log_to_driver=False)
        try:
            for samples in args.samples:
                for repeat in range(args.repeats):
                    for name in args.setups:
                        config = dataclasses.replace(
                            base, num_samples=samples, analyze=0,
                            output=str(Path(folder) / f"{name}{samples}-{repeat}"))
                        run = (stock(config, Path(config.output)) if name == "stock"
                               else ours(config))
                        measured.append((name, run))
        finally:
            ray.shutdown()
    spread: dict[tuple[str, int], list[float]] = {}
    for name, (wall, (own_s, train_s), trials) in measured:
        efficiency = own_s / slots / wall
        spread.setdefault((name, trials), []).append(efficiency)
        record("search", setup=name, trials=trials, slots=slots, wall_s=round(wall, 1),
               trial_s=round(own_s, 1), train_s=round(train_s, 1),
               efficiency=round(efficiency, 3))
        rows.append([name, str(trials), f"{wall:.1f}", f"{own_s:.1f}", f"{train_s:.1f}",
                     f"{efficiency:.2f}"])
    print(table(rows, ["set-up", "trials", "wall s", "trials' own s", "of which training s",
                       "efficiency"]))
    if args.repeats > 1:
        print(table([[name, str(trials), f"{min(e):.2f}", f"{statistics.median(e):.2f}",
                      f"{max(e):.2f}"] for (name, trials), e in spread.items()],
                    ["set-up", "trials", "min", "median", "max efficiency"]))
    return rows


if __name__ == "__main__":
    main()
