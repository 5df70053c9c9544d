"""What measuring segregation during training costs: its share of the epoch time.

Usage:
    python benchmarks/bench_segregation.py [--dataset digits|FashionMNIST] [--samples N]
The reference network (150-100-50, Sigmoid, both costs) on two tasks, trained a few epochs so
the weights assign tasks; then, interleaved, a whole epoch (Trainer.run_epoch: training and
validation) against Trainer.task_measures (greedy assignment + cross-validated 3-NN
of every hidden layer). A trial measures segregation at each checkpointed epoch: the rungs
and every checkpoint_every-th epoch (quick start: 6 of 50 epochs; checkpoint_every: 1 = all).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import interleaved_ms, record, table  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.train import Trainer  # noqa: E402


def measure(dataset: str, samples: int) -> dict:
    config = trial_config_from_dict({
        "datasets": [dataset], "labels": 5, "layers": [150, 100, 50], "activation": "Sigmoid",
        "proximity": 1, "transport": 10, "train_samples": samples, "device": "cpu"})
    trainer = Trainer(config)
    for _ in range(3):
        trainer.run_epoch()
    timings = interleaved_ms({"epoch": trainer.run_epoch,
                              "segregation": trainer.task_measures},
                             warmup=2, repeats=15, inner=1)
    epoch, segregation = timings["epoch"][0], timings["segregation"][0]
    every = {"quick start (6 of 50 epochs)": 6 / 50, "every epoch": 1.0}
    return record("segregation", dataset=dataset, samples=samples, epoch_ms=round(epoch, 2),
                  segregation_ms=round(segregation, 2),
                  share={k: round(segregation * f / epoch, 4) for k, f in every.items()})


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", nargs="+", default=["digits", "FashionMNIST"])
    parser.add_argument("--samples", type=int, default=0,
                        help="train_samples (0: all; digits has 1,437 for training)")
    args = parser.parse_args()
    rows = []
    for dataset in args.dataset:
        r = measure(dataset, args.samples)
        shares = r["share"]
        rows.append([dataset, f"{r['epoch_ms']:.1f}", f"{r['segregation_ms']:.2f}",
                     *(f"{100 * v:.1f}%" for v in shares.values())])
    print(table(rows, ["dataset", "epoch ms", "segregation ms", *(
        f"share, {k}" for k in r["share"])]))
    return rows


if __name__ == "__main__":
    main()
