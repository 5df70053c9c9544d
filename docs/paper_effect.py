"""Reproduce the paper's effect on digits and write the README's figures and table.

Usage:
    python docs/paper_effect.py                    # digits, ~1 minute on 2 CPUs
    python docs/paper_effect.py --dataset fashion  # real Fashion-MNIST (Debian's package)
Trains the SPEC section 4 reference setting (150-100-50, Sigmoid, l2, Adam 5e-3, 50 epochs,
concatenate, two tasks) with alpha = 1, beta = 10 and with alpha = beta = 0, seeds 1-3, analyses
each best checkpoint, prints a Markdown table and writes docs/positions_*.png and
docs/score_*.png (seed 1; *_fashion.png for Fashion-MNIST: a seeded 6,000-image subset,
20 epochs, as tests/test_analysis.py runs it).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.analyze import analyze  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.fit import fit  # noqa: E402

HERE = Path(__file__).resolve().parent
REFERENCE = {"datasets": ["digits"], "labels": 5, "input": "concatenate",
             "layers": [150, 100, 50], "activation": "Sigmoid", "norm": "l2", "epochs": 50}
FASHION = {**REFERENCE, "datasets": ["FashionMNIST"], "train_samples": 6000, "epochs": 20}
SETTINGS = {"costs": (1.0, 10.0), "none": (0.0, 0.0)}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "fashion"], default="digits")
    args = parser.parse_args()
    reference = FASHION if args.dataset == "fashion" else REFERENCE
    suffix = "_fashion" if args.dataset == "fashion" else ""
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for label, (alpha, beta) in SETTINGS.items():
            rows[label] = []
            for seed in (1, 2, 3):
                config = trial_config_from_dict({**reference, "proximity": alpha,
                                                 "transport": beta, "seed": seed})
                run = Path(folder) / f"{label}{seed}"
                summary = fit(config, run)
                report = analyze(run / "best.pt", run / "analysis",
                                 methods=["greedy", "positions"], connections=True)
                rows[label].append((summary["best"]["val_accuracy"], report))
                if seed == 1:
                    shutil.copy(run / "analysis" / "positions" / "layers.png",
                                HERE / f"positions_{label}{suffix}.png")
                    for method in ("greedy", "positions"):
                        shutil.copy(run / "analysis" / f"score_{method}.png",
                                    HERE / f"score_{method}_{label}{suffix}.png")
    print("| setting | val. accuracy | segregation (mean of hidden layers) | greedy diagonal / "
          "off-diagonal | positions diagonal / off-diagonal |")
    print("|---|---|---|---|---|")
    for label, (alpha, beta) in SETTINGS.items():
        acc = [a for a, _ in rows[label]]
        seg = [r["segregation"]["mean"] for _, r in rows[label]]
        scores = {m: [(r["scores"][m]["diagonal"], r["scores"][m]["off_diagonal"])
                      for _, r in rows[label]] for m in ("greedy", "positions")}
        def cell(method: str) -> str:
            return " / ".join(f"{np.mean([s[i] for s in scores[method]]):.2f}" for i in (0, 1))

        print(f"| alpha={alpha:g}, beta={beta:g} | {np.mean(acc):.3f} "
              f"({', '.join(f'{a:.3f}' for a in acc)}) | {np.mean(seg):.2f} "
              f"({', '.join(f'{s:.2f}' for s in seg)}) | {cell('greedy')} | "
              f"{cell('positions')} |")


if __name__ == "__main__":
    main()
