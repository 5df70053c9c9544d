"""Does the multi-objective search find the accuracy x segregation trade-off sooner?

Three set-ups, 64 trials each, 3 search seeds, on digits and on a Fashion-MNIST subset, all
in one run on one Ray (2 CPUs) and so on one machine state:
  (a) multi-objective TPE + MO-ASHA (val_accuracy and segregation);
  (b) random search + FIFO (every trial to its last epoch);
  (c) single-objective TPE + ASHA on val_accuracy (today's quick start).
Every set-up is scored alike, from its trials' own results (Tune's result.json): the Pareto
front of the trials trained to their full epochs on (val_accuracy, segregation) at their last
epoch, and its hypervolume against chance (1/C accuracy, 1/T segregation). "reach (b)" is the
wall time (a) needed for its front's hypervolume to reach (b)'s final one.

Usage:
    python benchmarks/bench_pareto.py                       # both datasets, seeds 0 1 2
    python benchmarks/bench_pareto.py --datasets digits --seeds 0 --trials 32
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch.search.config import search_config_from_dict  # noqa: E402
from spatialsearch.search.front import TrialOutcome, pareto_front  # noqa: E402
from spatialsearch.search.objectives import Objective  # noqa: E402

BOTH = [{"metric": "val_accuracy", "mode": "max"}, {"metric": "segregation", "mode": "max"}]
SPACE = {"proximity": {"loguniform": [0.01, 10]}, "transport": {"loguniform": [0.1, 100]},
         "norm": {"choice": ["l1", "l2"]}, "lr": {"loguniform": [0.001, 0.02]}}
NETWORK = {"labels": 5, "input": "concatenate", "layers": [150, 100, 50],
           "activation": "Sigmoid"}
SETUPS = {
    "a": {"objectives": BOTH, "scheduler": {"type": "moasha"},
          "search": {"algorithm": "optuna", "sampler": "tpe"}},
    "b": {"objectives": BOTH, "scheduler": {"type": "fifo"}, "search": {"algorithm": "random"}},
    "c": {"metric": "val_accuracy", "mode": "max", "scheduler": {"type": "asha"},
          "search": {"algorithm": "optuna", "sampler": "tpe"}},
}
NAMES = {"a": "MO-TPE + MO-ASHA", "b": "random + FIFO", "c": "TPE + ASHA (accuracy)"}


def space_for(dataset: str, setup: str, seed: int, trials: int, args: argparse.Namespace,
              output: str) -> dict:
    fixed = {**NETWORK, "datasets": ["digits"], "epochs": args.digits_epochs}
    grace = args.digits_grace
    if dataset == "fashion":
        fixed = {**NETWORK, "datasets": ["FashionMNIST"], "train_samples": args.fashion_samples,
                 "epochs": args.fashion_epochs}
        grace = args.fashion_grace
    doc = json.loads(json.dumps(SETUPS[setup]))
    if doc["scheduler"]["type"] != "fifo":
        doc["scheduler"].update(grace_period=grace, reduction_factor=2)
    doc["search"]["seed"] = seed
    return {**doc, "name": f"{dataset}-{setup}-{seed}", "num_samples": trials,
            "max_concurrent_trials": 2, "analyze": 0, "output": output, "fixed": fixed,
            "space": SPACE}


def outcomes(experiment: Path, epochs: int) -> list[TrialOutcome]:
    """Each trial's last result, as the front sees it (the same for every set-up)."""
    found = []
    for results in sorted(experiment.glob("trial_*/result.json")):
        lines = [json.loads(line) for line in results.read_text().splitlines() if line]
        if not lines:
            continue
        last = lines[-1]
        found.append(TrialOutcome(
            str(last["trial_id"]), int(last.get("epoch", 0)) == epochs,
            (float(last.get("val_accuracy", "nan")), float(last.get("segregation", "nan"))),
            float(last["timestamp"])))
    return found


def run_one(doc: dict) -> dict:
    from spatialsearch.search.runner import run_search

    config = search_config_from_dict(doc)
    started = time.time()
    summary = run_search(config, quiet=True)
    data = config.base_config.data
    found = outcomes(config.folder / "ray" / config.name, config.epochs)
    front = pareto_front((Objective(**BOTH[0]), Objective(**BOTH[1])), found,
                         labels=data.labels, num_tasks=data.num_tasks, started_at=started)
    return {"wall": summary.search_seconds, "hypervolume": front.hypervolume,
            "history": front.history, "full": sum(o.full for o in found),
            "trials": summary.trials}


def reach_seconds(history: tuple, target: float) -> float | None:
    """The first time a hypervolume history reaches target (None: never)."""
    return next((seconds for _, seconds, volume in history if volume >= target - 1e-12), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=["digits", "fashion"],
                        default=["digits", "fashion"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--digits-epochs", type=int, default=50)
    parser.add_argument("--digits-grace", type=int, default=5)
    parser.add_argument("--fashion-samples", type=int, default=3000)
    parser.add_argument("--fashion-epochs", type=int, default=12)
    parser.add_argument("--fashion-grace", type=int, default=2)
    args = parser.parse_args()
    import ray

    runs: dict[tuple[str, int, str], dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
        try:
            for dataset in args.datasets:
                for seed in args.seeds:
                    for setup in SETUPS:
                        doc = space_for(dataset, setup, seed, args.trials, args, folder)
                        runs[dataset, seed, setup] = run_one(doc)
                        print(f"{dataset} seed {seed} ({setup}) {NAMES[setup]}: hypervolume "
                              f"{runs[dataset, seed, setup]['hypervolume']:.4f} in "
                              f"{runs[dataset, seed, setup]['wall']:.1f} s", flush=True)
        finally:
            ray.shutdown()
    for dataset in args.datasets:
        rows, ratios, wins = [], [], []
        for seed in args.seeds:
            a, b, c = (runs[dataset, seed, s] for s in SETUPS)
            reach = reach_seconds(a["history"], b["hypervolume"])
            ratio = reach / b["wall"] if reach is not None else None
            ratios.append(ratio)
            wins.append(a["hypervolume"] >= b["hypervolume"] and a["hypervolume"] >= c[
                "hypervolume"])
            for setup, run in zip(SETUPS, (a, b, c)):
                record("pareto", dataset=dataset, seed=seed, setup=setup,
                       hypervolume=round(run["hypervolume"], 4), wall_s=round(run["wall"], 1),
                       full_trials=run["full"], trials=run["trials"])
                extra = ""
                if setup == "a":
                    extra = f"{reach:.1f} s ({ratio:.2f} of (b))" if ratio is not None else \
                        "not reached"
                rows.append([str(seed), f"({setup}) {NAMES[setup]}", f"{run['hypervolume']:.4f}",
                             f"{run['wall']:.1f}", str(run["full"]), extra])
        print(f"\n### {dataset}: {args.trials} trials per search")
        print(table(rows, ["seed", "set-up", "final hypervolume", "wall s", "full trials",
                           "(a) reaches (b)'s final"]))
        known = [r for r in ratios if r is not None]
        print(f"(a) >= (b) and (c) in {sum(wins)} of {len(wins)} seeds; (a) reaches (b)'s "
              f"final hypervolume in {len(known)} of {len(ratios)} seeds"
              + (f", at {min(known):.2f}-{max(known):.2f} of (b)'s wall time (median "
                 f"{statistics.median(known):.2f})" if known else ""))


if __name__ == "__main__":
    main()
