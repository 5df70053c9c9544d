"""Does the default multi-objective search find the accuracy x segregation front sooner?

Five set-ups, each given the same wall-clock budget (Tune's time_budget_s) on one Ray with
2 CPUs, over >= 10 search seeds, in one run on one machine state:
  (a)  the default: multi-objective TPE + MO-ASHA, TPE's good group chosen by rung-matched
       dominance from stopped and complete trials (search/engine/rung_tpe.py);
  (a-) the same with Optuna's own good group, complete trials first (teach_stopped: false);
  (b)  random search + FIFO (every trial to its last epoch);
  (c)  single-objective TPE + ASHA on val_accuracy;
  (d)  NSGA-II + FIFO.
Every set-up is scored alike from its trials' own results (Tune's result.json): the Pareto
front of the trials trained to their full epochs on (val_accuracy, segregation) at their last
epoch, and its hypervolume against chance (1/C accuracy, 1/T segregation), as it grew
(anytime hypervolume, seconds since the search was started). Per seed, the set-ups run in a
rotated order, so none is always first or last.

Reported: per seed the final hypervolume of each set-up; per set-up the median and IQR; the
wins of (a) per seed and a one-sided Wilcoxon signed-rank test (scipy) of (a) against each
other set-up; when (a)'s median curve reaches (b)'s final median, as a share of the budget;
a PNG of the median curves with their interquartile bands.

Usage:
    python benchmarks/bench_pareto.py                         # Fashion-MNIST, seeds 0-9, 80 s
    python benchmarks/bench_pareto.py --dataset digits --seeds 0 1 --budget 20   # quick check
    python benchmarks/bench_pareto.py --report runs.jsonl     # tables and PNG from a saved run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch.search.engine.rung_tpe import RungBook  # noqa: E402
from spatialsearch.search.engine.tune_space import stopping_epochs  # noqa: E402
from spatialsearch.search.outcome.ranking import TrialOutcome, pareto_front  # noqa: E402
from spatialsearch.search.space.config import search_config_from_dict  # noqa: E402
from spatialsearch.search.space.objectives import Objective  # noqa: E402

BOTH = [{"metric": "val_accuracy", "mode": "max"}, {"metric": "segregation", "mode": "max"}]
SPACE = {"proximity": {"loguniform": [0.01, 10]}, "transport": {"loguniform": [0.1, 100]},
         "norm": {"choice": ["l1", "l2"]}, "lr": {"loguniform": [0.001, 0.02]}}
NETWORK = {"labels": 5, "input": "concatenate", "layers": [150, 100, 50],
           "activation": "Sigmoid"}
TPE = {"algorithm": "optuna", "sampler": "tpe"}
SETUPS = {
    "a": {"objectives": BOTH, "scheduler": {"type": "moasha"}, "search": dict(TPE)},
    "a-": {"objectives": BOTH, "scheduler": {"type": "moasha"},
           "search": {**TPE, "teach_stopped": False}},
    "b": {"objectives": BOTH, "scheduler": {"type": "fifo"}, "search": {"algorithm": "random"}},
    "c": {"metric": "val_accuracy", "mode": "max", "scheduler": {"type": "asha"},
          "search": dict(TPE)},
    "d": {"objectives": BOTH, "scheduler": {"type": "fifo"},
          "search": {"algorithm": "optuna", "sampler": "nsga2"}},
}
NAMES = {"a": "MO-TPE + MO-ASHA (default)", "a-": "MO-TPE + MO-ASHA, Optuna's good group",
         "b": "random + FIFO", "c": "TPE + ASHA (accuracy)", "d": "NSGA-II + FIFO"}
DATASETS = {"fashion": {"datasets": ["FashionMNIST"]}, "digits": {"datasets": ["digits"]}}


def space_for(setup: str, seed: int, args: argparse.Namespace, output: str) -> dict:
    fixed = {**NETWORK, **DATASETS[args.dataset], "epochs": args.epochs}
    if args.dataset == "fashion":
        fixed["train_samples"] = args.samples
    doc = json.loads(json.dumps(SETUPS[setup]))
    if doc["scheduler"]["type"] != "fifo":
        doc["scheduler"].update(grace_period=args.grace, reduction_factor=2)
    doc["search"]["seed"] = seed
    return {**doc, "name": f"{args.dataset}-{setup.replace('-', 'minus')}-{seed}",
            "num_samples": 10_000, "time_budget_s": args.budget, "max_concurrent_trials": 2,
            "analyze": 0, "output": output, "fixed": fixed, "space": SPACE}


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


def good_group_changes(experiment: Path, epochs: int, rungs: tuple[int, ...],
                       startup: int = 10) -> dict[str, int]:
    """How the rung-matched good group (search/engine/rung_tpe.py) differs from Optuna's own, replayed
    from the trials' results. A suggestion is dated by its trial's first result less that
    epoch's time and sees the trials ended by then, with their values at the rungs and at the
    end. Counted over TPE's suggestions after its `startup` random ones:
      suggestions;
      stopped_in_good_group: a stopped trial ranks among the first ceil(0.1 n) by rung-matched
        dominance, so it joins the group: the suggestions where the default's group differs
        from Optuna's (a-);
      whole_order_differs: the first ceil(0.1 n) by that order alone (the first version,
        which took the whole group from it) differ from Optuna's group."""
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.samplers._tpe.sampler import _split_trials
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    book, spans = RungBook(("max", "max"), (*rungs, epochs)), []
    for number, results in enumerate(sorted(experiment.glob("trial_*/result.json"))):
        lines = [json.loads(line) for line in results.read_text().splitlines() if line]
        if not lines:
            continue
        for line in lines:
            book.record(number, int(line.get("epoch", 0)),
                        [float(line.get(o["metric"], "nan")) for o in BOTH])
        last = [float(lines[-1].get(o["metric"], "nan")) for o in BOTH]
        spans.append((lines[0]["timestamp"] - lines[0].get("time_this_iter_s", 0.0),
                      lines[-1]["timestamp"], number,
                      last if int(lines[-1].get("epoch", 0)) == epochs else None))
    counts = {"suggestions": 0, "stopped_in_good_group": 0, "whole_order_differs": 0}
    for start, *_ in spans:
        ended = [(number, last) for _, end, number, last in spans if end <= start]
        if len(ended) < startup:
            continue
        size = math.ceil(0.1 * len(ended))
        first = book.good_group([n for n, _ in ended], [0.0] * len(ended), size)
        study = optuna.create_study(directions=["maximize", "maximize"])
        study.add_trials([create_trial(
            state=TrialState.PRUNED if last is None else TrialState.COMPLETE, values=last,
            params={"x": 0.5}, distributions={"x": FloatDistribution(0.0, 1.0)},
            user_attrs={"number": n}) for n, last in ended])
        below, _ = _split_trials(study, study.get_trials(deepcopy=False), size)
        counts["suggestions"] += 1
        counts["stopped_in_good_group"] += any(last is None for n, last in ended if n in first)
        counts["whole_order_differs"] += first != {t.user_attrs["number"] for t in below}
    return counts


def run_one(doc: dict) -> dict:
    from spatialsearch.search.runner import run_search

    config = search_config_from_dict(doc)
    started = time.time()
    summary = run_search(config, quiet=True)
    data = config.base_config.data
    experiment = config.folder / "ray" / config.name
    found = outcomes(experiment, config.epochs)
    changes = good_group_changes(experiment, config.epochs, stopping_epochs(config))
    front = pareto_front((Objective(**BOTH[0]), Objective(**BOTH[1])), found,
                         labels=data.labels, num_tasks=data.num_tasks, started_at=started)
    return {"hypervolume": front.hypervolume, "wall": time.time() - started,
            "history": [[seconds, volume] for _, seconds, volume in front.history],
            "full": sum(o.full for o in found), "trials": summary.trials,
            **changes}


def curve(history: list, grid: np.ndarray) -> np.ndarray:
    """Anytime hypervolume on a time grid: the volume of the last full trial ended by then."""
    seconds = np.array([h[0] for h in history] or [np.inf])
    volumes = np.array([h[1] for h in history] or [0.0])
    index = np.searchsorted(seconds, grid, side="right") - 1
    return np.where(index >= 0, volumes[np.clip(index, 0, None)], 0.0)


def report(runs: list[dict], budget: float, picture: Path | None) -> None:
    """Tables, Wilcoxon tests and the PNG from the runs' JSON lines."""
    from scipy.stats import wilcoxon

    setups = [s for s in SETUPS if any(r["setup"] == s for r in runs)]
    seeds = sorted({r["seed"] for r in runs})
    final = {s: np.array([next(r["hypervolume"] for r in runs if r["setup"] == s
                               and r["seed"] == seed) for seed in seeds]) for s in setups}
    grid = np.linspace(0, budget, 201)
    curves = {s: np.array([curve(next(r["history"] for r in runs if r["setup"] == s
                                      and r["seed"] == seed), grid) for seed in seeds])
              for s in setups}
    rows = [[str(seed), *(f"{final[s][i]:.4f}" for s in setups)] for i, seed in enumerate(seeds)]
    print(f"\n### final hypervolume per seed ({budget:g} s each)")
    print(table(rows, ["seed", *(f"({s})" for s in setups)]))
    lines = []
    for s in setups:
        q1, median, q3 = np.percentile(final[s], [25, 50, 75])
        full = np.median([r["full"] for r in runs if r["setup"] == s])
        trials = np.median([r["trials"] for r in runs if r["setup"] == s])
        test = ["", "", ""]
        if s != "a" and "a" in final:
            wins = int(np.sum(final["a"] > final[s]))
            ties = int(np.sum(final["a"] == final[s]))
            differences = final["a"] - final[s]
            p = wilcoxon(differences, alternative="greater").pvalue if np.any(differences) \
                else 1.0
            test = [f"{wins} ({ties} tied)", f"{np.median(differences):+.4f}", f"{p:.4f}"]
            record("pareto_test", against=s, wins=wins, ties=ties, p=float(p), seeds=len(seeds))
        lines.append([f"({s}) {NAMES[s]}", f"{median:.4f}", f"{q1:.4f}-{q3:.4f}",
                      f"{trials:.0f} / {full:.0f}", *test])
    print(f"\n### per set-up over {len(seeds)} seeds; (a) against the others: seeds won, "
          f"median difference, one-sided Wilcoxon signed-rank p")
    print(table(lines, ["set-up", "median HV", "IQR", "trials / full (median)",
                        "(a) wins", "median (a) - x", "p"]))
    counted = [r for r in runs if r["setup"] == "a" and "stopped_in_good_group" in r
               and r.get("suggestions")]
    if counted:
        shares = [r["stopped_in_good_group"] / r["suggestions"] for r in counted]
        print(f"(a): TPE's good group held a stopped trial in a median {np.median(shares):.1%}"
              f" of its suggestions after startup (range {min(shares):.1%}-{max(shares):.1%},"
              f" {len(counted)} runs)")
        whole = [r["whole_order_differs"] / r["suggestions"] for r in counted
                 if "whole_order_differs" in r]
        if whole:
            print(f"(a): the rung-matched order alone would have changed Optuna's group in a "
                  f"median {np.median(whole):.1%} of them")
    if "a" in curves and "b" in curves:
        target = np.median(final["b"])
        reached = np.flatnonzero(np.median(curves["a"], axis=0) >= target - 1e-12)
        share = grid[reached[0]] / budget if len(reached) else None
        print(f"(a)'s median curve reaches (b)'s final median {target:.4f} at "
              + (f"{share:.2f} of the budget" if share is not None else "no time in budget"))
        record("pareto_reach", target=float(target), share=share)
    if picture is not None:
        draw(curves, grid, picture)


def draw(curves: dict, grid: np.ndarray, picture: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for setup, values in curves.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75], axis=0)
        axes.plot(grid, median, label=f"({setup}) {NAMES[setup]}")
        axes.fill_between(grid, q1, q3, alpha=0.18)
    axes.set_xlabel("seconds of search (2 CPUs)")
    axes.set_ylabel("hypervolume of the front of full trials")
    axes.set_title(f"anytime hypervolume: median and interquartile band, "
                   f"{len(next(iter(curves.values())))} seeds")
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(picture)
    print(f"picture: {picture}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(DATASETS), default="fashion")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument("--budget", type=float, default=80.0, help="seconds per search")
    parser.add_argument("--samples", type=int, default=6000, help="Fashion-MNIST train subset")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--grace", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("pareto_runs.jsonl"),
                        help="every finished search is appended here as a JSON line")
    parser.add_argument("--picture", type=Path, default=None, help="PNG of the curves")
    parser.add_argument("--replay", type=Path, nargs=2, metavar=("SEARCH", "YAML"),
                        help="how the good group differed from Optuna's in a finished search")
    parser.add_argument("--report", type=Path, default=None,
                        help="only tabulate (and draw) the runs saved in this file")
    args = parser.parse_args()
    if args.replay is not None:  # a search's own Ray folder, e.g. runs/<time>/quickstart
        config = search_config_from_dict(yaml.safe_load(args.replay[1].read_text()))
        print(good_group_changes(args.replay[0] / "ray" / config.name, config.epochs,
                                 stopping_epochs(config)))
        return
    if args.report is not None:
        runs = [json.loads(line) for line in args.report.read_text().splitlines() if line]
        report(runs, max(r["budget"] for r in runs), args.picture)
        return
    import ray

    runs = []
    with tempfile.TemporaryDirectory() as folder:
        ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False,
                 log_to_driver=False)
        try:
            for turn, seed in enumerate(args.seeds):
                shift = turn % len(args.setups)
                for setup in args.setups[shift:] + args.setups[:shift]:
                    result = run_one(space_for(setup, seed, args, folder))
                    line = {"dataset": args.dataset, "seed": seed, "setup": setup,
                            "budget": args.budget, **result}
                    runs.append(line)
                    with open(args.runs, "a") as file:
                        file.write(json.dumps(line) + "\n")
                    print(f"seed {seed} ({setup}) {NAMES[setup]}: hypervolume "
                          f"{result['hypervolume']:.4f}, {result['trials']} trials, "
                          f"{result['full']} full, {result['wall']:.1f} s", flush=True)
        finally:
            ray.shutdown()
    report(runs, args.budget, args.picture)


if __name__ == "__main__":
    main()
