"""Which objectives express the paper's trade-off without saturating? The evidence table.

For one search space (its data, network and epochs), every candidate objective is measured
alike:
  null, random init   its value before any training (seeds 1-3, mean);
  null, no costs      its value at the last epoch trained without costs (alpha = beta = 0:
                      positions get no gradient; seeds 1-3, mean);
  costs (seed SD)     its value trained with the paper's costs (alpha 1, beta 10; seeds 1-3):
                      mean and standard deviation over the seeds, what a front member's
                      spread looks like;
  IQR (full trials)   the interquartile range over the full trials of a search of the space
                      (random sampler, FIFO: no trial stopped, so nothing is selected);
  rung rho            Spearman's rho, over those trials, of the value at the space's first
                      MO-ASHA rung (its grace period) against the final value: what MO-ASHA
                      relies on when it stops a trial there;
  cost                milliseconds per measurement on the trained quickstart-size network,
                      against the mean training epoch.
val_accuracy is measured the same way (its cost is the evaluation pass).

Usage:
    python benchmarks/bench_objectives.py search_spaces/quickstart.yaml search_spaces/fashion.yaml
    python benchmarks/bench_objectives.py search_spaces/quickstart.yaml --trials 8  # quick
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch import metrics as m  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.evaluation import active_neurons, evaluate  # noqa: E402
from spatialsearch.modularity import modularity  # noqa: E402
from spatialsearch.positions_split import positions_split  # noqa: E402
from spatialsearch.search.engine.moasha import rung_epochs  # noqa: E402
from spatialsearch.search.places.place import locate  # noqa: E402
from spatialsearch.search.places.ray_folder import RAY_FOLDER, recorded_trials  # noqa: E402
from spatialsearch.search.runner import run_search  # noqa: E402
from spatialsearch.search.space.config import search_config_from_dict  # noqa: E402
from spatialsearch.search.space.storage import StorageConfig  # noqa: E402
from spatialsearch.segregation import segregation  # noqa: E402
from spatialsearch.selectivity import selectivity  # noqa: E402
from spatialsearch.train import Trainer  # noqa: E402

CANDIDATES = (m.VAL_ACCURACY, m.POSITIONS_SPLIT, m.SELECTIVITY, m.MODULARITY, m.SEGREGATION)
SEEDS = (1, 2, 3)
PAPER_COSTS = {"proximity": 1.0, "transport": 10.0, "norm": "l2"}


def trained(fixed: dict[str, Any], seed: int, costs: dict[str, Any], epochs: int) -> Trainer:
    config = trial_config_from_dict({**fixed, **costs, "seed": seed, "epochs": epochs})
    trainer = Trainer(config)
    for _ in range(epochs):
        trainer.run_epoch()
    return trainer


def measured(trainer: Trainer) -> dict[str, float]:
    found = trainer.task_measures()
    found[m.VAL_ACCURACY] = evaluate(trainer.model, trainer.validation_batches).accuracy
    return found


def cost_ms(trainer: Trainer) -> dict[str, float]:
    """Milliseconds of each measurement on the trainer's network (median of 7)."""
    data, network, batches = trainer.config.data, trainer.model, trainer.validation_batches
    active = active_neurons(network, batches)
    layers, tasks, labels = network.spatial_layers, data.num_tasks, data.labels
    steps: dict[str, Callable[[], Any]] = {
        m.VAL_ACCURACY: lambda: evaluate(network, batches),
        m.POSITIONS_SPLIT: lambda: positions_split(network, tasks, lambda cut: evaluate(
            cut, batches).task_accuracy),
        m.SELECTIVITY: lambda: selectivity(layers, tasks, labels, active=active),
        m.MODULARITY: lambda: modularity(layers, tasks, labels, active=active),
        m.SEGREGATION: lambda: segregation(layers, tasks, labels, active=active)}
    found = {}
    for name, step in steps.items():
        times = []
        for _ in range(7):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        found[name] = 1000 * float(np.median(times))
    return found


def search_values(raw: dict[str, Any], trials: int, folder: Path
                  ) -> tuple[dict[str, list[float]], dict[str, list[tuple[float, float]]]]:
    """Final values of the full trials, and (first rung, final) pairs, from a random FIFO
    search of the space that checkpoints (and measures) at the first rung."""
    grace = raw.get("scheduler", {}).get("grace_period", 2)
    epochs = raw["fixed"]["epochs"]
    rung = rung_epochs(epochs, grace, raw.get("scheduler", {}).get("reduction_factor", 2))[0]
    document = {**raw, "name": "evidence", "num_samples": trials, "reseed": 0, "analyze": 0,
                "scheduler": {"type": "fifo"}, "checkpoint_every": rung,
                "search": {"algorithm": "random", "seed": 0}, "output": str(folder)}
    config = search_config_from_dict(document)
    run_search(config, quiet=True)
    experiment = locate(str(config.folder / RAY_FOLDER / config.name), StorageConfig())
    finals: dict[str, list[float]] = {c: [] for c in CANDIDATES}
    pairs: dict[str, list[tuple[float, float]]] = {c: [] for c in CANDIDATES}
    for trial in recorded_trials(experiment):
        by_epoch = {r.get(m.EPOCH): r for r in trial.results}
        if trial.error or epochs not in by_epoch:
            continue
        for name in CANDIDATES:
            final = by_epoch[epochs].get(name, np.nan)
            finals[name].append(final)
            pairs[name].append((by_epoch.get(rung, {}).get(name, np.nan), final))
    return finals, pairs


def evidence(path: Path, trials: int) -> list[dict[str, Any]]:
    from scipy.stats import spearmanr

    raw = yaml.safe_load(path.read_text())
    fixed = dict(raw["fixed"])
    epochs = fixed["epochs"]
    init = [Trainer(trial_config_from_dict({**fixed, **PAPER_COSTS, "seed": s}))
            for s in SEEDS]
    at_init = [measured(t) for t in init]
    none = [measured(trained(fixed, s, {"proximity": 0.0, "transport": 0.0}, epochs))
            for s in SEEDS]
    costly = [trained(fixed, s, PAPER_COSTS, epochs) for s in SEEDS]
    with_costs = [measured(t) for t in costly]
    epoch_ms = 1000 * float(np.mean([t.best_metrics.get(m.EPOCH_SECONDS, np.nan)
                                     for t in costly]))
    costs = cost_ms(costly[0])
    with tempfile.TemporaryDirectory() as scratch:
        finals, pairs = search_values(raw, trials, Path(scratch))
    rows = []
    for name in CANDIDATES:
        values = np.array(finals[name], dtype=float)
        pair = np.array(pairs[name], dtype=float).reshape(-1, 2)
        kept = np.all(np.isfinite(pair), axis=1)
        rho = float(spearmanr(pair[kept, 0], pair[kept, 1])[0]) if kept.sum() > 2 else np.nan
        q1, median, q3 = np.nanpercentile(values, [25, 50, 75]) if len(values) else [np.nan] * 3
        rows.append(record("objectives", space=path.name, metric=name,
                           null_init=float(np.mean([r[name] for r in at_init])),
                           null_no_costs=float(np.mean([r[name] for r in none])),
                           costs_mean=float(np.mean([r[name] for r in with_costs])),
                           costs_seed_sd=float(np.std([r[name] for r in with_costs], ddof=1)),
                           median=float(median), q1=float(q1), q3=float(q3),
                           full_trials=int(np.isfinite(values).sum()), rung_rho=rho,
                           cost_ms=costs[name], epoch_ms=epoch_ms))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spaces", nargs="+", type=Path, help="search space YAML files")
    parser.add_argument("--trials", type=int, default=24,
                        help="full trials of the random FIFO search (default 24)")
    args = parser.parse_args()
    rows = [row for path in args.spaces for row in evidence(path, args.trials)]
    print(table([[r["space"], r["metric"], f"{r['null_init']:.3f}", f"{r['null_no_costs']:.3f}",
                  f"{r['costs_mean']:.3f} ± {r['costs_seed_sd']:.3f}",
                  f"{r['median']:.3f} ({r['q1']:.3f}-{r['q3']:.3f})",
                  f"{r['rung_rho']:.2f}", f"{r['cost_ms']:.1f} / {r['epoch_ms']:.1f}"]
                 for r in rows],
                ["space", "metric", "null: random init", "null: no costs",
                 "α 1, β 10: mean ± seed SD", "full trials: median (IQR)", "rung ρ",
                 "ms per measurement / epoch"]))


if __name__ == "__main__":
    main()
