"""Do segregation and modularity Q agree? Their rank correlation over a search's trials.

Every finished trial's best checkpoint (summary.json's table: stopped trials too, at the rung
where they stopped) is measured alike: segregation (positions) and mean modularity Q of its
layer pairs (Barber's, weights only), neurons never active on the validation data left out. Prints
Spearman's rho with its p-value (scipy) per search folder.

Usage:
    python benchmarks/bench_measures.py runs/<time>/quickstart runs/<time>/fashion
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.claims import checkpoint_measures  # noqa: E402
from analysis.context import open_checkpoint  # noqa: E402
from benchmarks.common import record, table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished search folders")
    args = parser.parse_args()
    from scipy.stats import spearmanr

    rows = []
    for folder in args.folders:
        trials = json.loads((folder / "summary.json").read_text())["table"]
        measured = [checkpoint_measures(open_checkpoint(t["checkpoint"])) for t in trials
                    if t["checkpoint"] and Path(t["checkpoint"]).is_file()]
        pairs = np.array([[found["segregation"], found["modularity"]] for found in measured])
        kept = np.all(np.isfinite(pairs), axis=1)
        rho, p = spearmanr(pairs[kept, 0], pairs[kept, 1])
        record("measures", search=folder.name, trials=int(kept.sum()), spearman=float(rho),
               p=float(p))
        rows.append([folder.name, str(int(kept.sum())), f"{rho:.3f}", f"{p:.2g}",
                     f"{pairs[kept, 0].min():.2f}-{pairs[kept, 0].max():.2f}",
                     f"{pairs[kept, 1].min():.3f}-{pairs[kept, 1].max():.3f}"])
    print(table(rows, ["search", "trials", "Spearman rho", "p", "segregation range",
                       "Q range"]))


if __name__ == "__main__":
    main()
