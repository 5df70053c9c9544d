"""Which greedy assignment rule keeps segregation comparable across rungs (issue 20)?

Trains networks of the quick start's space (150-100-50, Sigmoid, two tasks; proximity,
transport, norm and lr drawn at random, seeded; plus no-cost networks) and, at each rung
epoch, assigns every hidden neuron to a task under both rules (segregation.ASSIGNMENTS):
  summed      the seed's: summed |W| from each task's neurons of the next layer;
  per_neuron  the same divided by how many neurons of the next layer the task holds.
It prints, per dataset, rule and rung: how many of the 3 hidden layers could be scored
(the old metric averaged only those), the smallest task's share of each layer's assigned
neurons (0.5 = balanced, 0 = one task), and the segregation under the new rule (every layer
contributes, unscorable ones at chance 1/T).

With --search FOLDER it recomputes a finished search's rung values instead: each trial's last
checkpoint (state.pt, the weights at the epoch where it stopped or ended) under the seed's
rule (summed; unscorable layers dropped from the mean, as before) and the new one, per epoch.

Usage:
    python benchmarks/bench_assignment.py                   # digits and Fashion-MNIST
    python benchmarks/bench_assignment.py --datasets digits --networks 4
    python benchmarks/bench_assignment.py --search runs/<time>/quickstart
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.evaluation import active_neurons  # noqa: E402
from spatialsearch.segregation import ASSIGNMENTS, segregation  # noqa: E402
from spatialsearch.train import Trainer  # noqa: E402

RUNGS = {"digits": (5, 10, 20, 40), "FashionMNIST": (2, 4, 8, 12)}


def drawn_costs(rng: np.random.Generator, networks: int) -> list[dict]:
    """`networks` draws of the quick start's space, then 2 networks without costs."""
    drawn = [{"proximity": float(np.exp(rng.uniform(np.log(0.01), np.log(10)))),
              "transport": float(np.exp(rng.uniform(np.log(0.1), np.log(100)))),
              "norm": str(rng.choice(["l1", "l2"])),
              "lr": float(np.exp(rng.uniform(np.log(0.001), np.log(0.02))))}
             for _ in range(networks)]
    return drawn + [{"proximity": 0.0, "transport": 0.0, "lr": 0.005, "seed": s} for s in (1, 2)]


def study(dataset: str, costs: dict, samples: int) -> list[dict]:
    """Per rung and rule: layers scored, smallest share per layer, segregation."""
    config = trial_config_from_dict({
        "datasets": [dataset], "labels": 5, "layers": [150, 100, 50], "activation": "Sigmoid",
        "epochs": RUNGS[dataset][-1], "train_samples": samples, "device": "cpu", **costs})
    trainer, rows = Trainer(config), []
    for epoch in range(1, RUNGS[dataset][-1] + 1):
        trainer.run_epoch()
        if epoch not in RUNGS[dataset]:
            continue
        layers = trainer.model.spatial_layers
        active = active_neurons(trainer.model, trainer.validation_batches)
        for rule in ASSIGNMENTS:
            result = segregation(layers, 2, 5, rule, active)
            shares = [min(c) / max(sum(c), 1) for c in result.balance.values()]
            rows.append({"epoch": epoch, "rule": rule, "scored": result.scored,
                         "shares": shares, "segregation": result.mean,
                         "costs": "none" if not costs.get("transport") else "drawn"})
    return rows


def rung_values(folder: Path) -> None:
    """Layers scored per trial at the epoch of its last checkpoint, before and after."""
    import json

    import torch

    experiment = folder / "ray" / folder.name  # the search's own Tune experiment
    rows: dict[int, list[tuple[int, int, float, float]]] = {}
    for trial in sorted(experiment.glob("trial_*")):
        saved = sorted(trial.glob("checkpoint_*/state.pt"))
        if not saved:
            continue
        params = json.loads((trial / "params.json").read_text())
        trainer = Trainer(trial_config_from_dict({**params, "device": "cpu"}))
        state = torch.load(saved[-1], map_location="cpu", weights_only=True)
        trainer.model.load_state_dict(state["model"])
        layers = trainer.model.spatial_layers
        data = trainer.config.data
        before = segregation(layers, data.num_tasks, data.labels, "summed")
        after = segregation(layers, data.num_tasks, data.labels,
                            active=active_neurons(trainer.model, trainer.validation_batches))
        old_mean = (np.mean([v for k, v in before.per_layer.items()
                             if k not in before.at_chance]) if before.scored else np.nan)
        rows.setdefault(int(state["epoch"]), []).append(
            (before.scored, after.scored, float(old_mean), after.mean))
    lines = []
    for epoch, found in sorted(rows.items()):
        before, after = [f[0] for f in found], [f[1] for f in found]
        hidden = len(trainer.config.model.layers)
        counts = lambda xs: ", ".join(f"{k}: {xs.count(k)}" for k in range(hidden + 1)  # noqa
                                      if xs.count(k))
        lines.append([str(epoch), str(len(found)), counts(before), counts(after),
                      f"{np.nanmean([f[2] for f in found]):.3f}",
                      f"{np.mean([f[3] for f in found]):.3f}"])
        record("rung_values", search=folder.name, epoch=epoch, trials=len(found),
               scored_before=before, scored_after=after)
    print(f"\n### {folder.name}: hidden layers scored per trial (layers scored: trials)")
    print(table(lines, ["epoch", "trials", "before (summed, dropped)", "after (per_neuron)",
                        "segregation before", "after (all layers)"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "FashionMNIST"],
                        choices=list(RUNGS))
    parser.add_argument("--networks", type=int, default=8)
    parser.add_argument("--samples", type=int, default=3000, help="Fashion-MNIST train subset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search", type=Path, help="a finished search's folder")
    args = parser.parse_args()
    if args.search is not None:
        rung_values(args.search)
        return
    for dataset in args.datasets:
        rows = []
        for costs in drawn_costs(np.random.default_rng(args.seed), args.networks):
            rows += study(dataset, costs, args.samples)
        lines = []
        for costs in ("drawn", "none"):
            for rule in ASSIGNMENTS:
                for epoch in RUNGS[dataset]:
                    at = [r for r in rows if r["rule"] == rule and r["epoch"] == epoch
                          and r["costs"] == costs]
                    scored = [r["scored"] for r in at]
                    shares = np.array([r["shares"] for r in at])
                    seg = [r["segregation"] for r in at]
                    record("assignment", dataset=dataset, costs=costs, rule=rule, epoch=epoch,
                           networks=len(at), all_scored=sum(s == 3 for s in scored),
                           mean_scored=float(np.mean(scored)),
                           smallest_share=[round(float(x), 3) for x in shares.mean(0)],
                           segregation=round(float(np.mean(seg)), 3))
                    lines.append([costs, rule, str(epoch),
                                  f"{sum(s == 3 for s in scored)}/{len(at)}",
                                  " / ".join(f"{x:.2f}" for x in shares.mean(0)),
                                  f"{np.mean(seg):.3f}"])
        print(f"\n### {dataset}: hidden layers scored and smallest task's share, per rung")
        print(table(lines, ["costs", "rule", "epoch", "all 3 layers scored",
                            "smallest share, layers 0 / 1 / 2", "segregation (new)"]))


if __name__ == "__main__":
    main()
