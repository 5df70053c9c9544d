"""How fast a search that cannot run is refused: each class of refusal as a fresh process
(`python run_search.py space.yaml`, imports included), median of 3, against the target of 5 s;
and the share of that time that is Python and the imports (a `--dry-run` of a valid space).

Usage:
    python benchmarks/bench_refusal.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BASE = {"name": "x", "num_samples": 2, "fixed": {"layers": [4], "epochs": 2},
        "space": {"transport": {"loguniform": [0.1, 1]}}}
CASES = {
    "resources: more CPUs than any node": {"resources": {"cpu": 4096}},
    "resources: a GPU on a machine without": {"resources": {"gpu": 1}},
    "resources: a custom resource no node has": {"resources": {"custom": {"trainer": 1}}},
    "counts: grid x num_samples over the cap": {
        "num_samples": 50_000, "search": {"algorithm": "grid"},
        "space": {"transport": {"grid": [0.1, 1, 10]}}},
    "counts: reseeds no machine can run": {"reseed": 1000},
    "objectives: segregation with one task": {
        "metric": "segregation", "fixed": {"layers": [4], "epochs": 2, "labels": 10}},
    "secrets: unreachable tracking URI": {"tracking_uri": "http://u:pw@127.0.0.1:9"},
}


def refusal_seconds(doc: dict, folder: Path, *extra: str) -> tuple[float, int, str]:
    space = folder / "space.yaml"
    space.write_text(yaml.safe_dump({**BASE, **doc}))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "run_search.py"), str(space), "--output",
                           str(folder / "out"), *extra], capture_output=True, text=True)
    return time.perf_counter() - started, done.returncode, done.stderr.strip()


def main() -> None:
    print("| refused | exit | median s (of 3) | target | line |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for name, doc in CASES.items():
            runs = [refusal_seconds(doc, folder) for _ in range(3)]
            seconds = statistics.median(r[0] for r in runs)
            code, line = runs[0][1], runs[0][2].splitlines()[-1]
            written = (folder / "out").exists()
            print(f"| {name} | {code}{' (wrote files!)' if written else ''} | {seconds:.2f} "
                  f"| <= 5 | {line[:90]} |")
        dry = statistics.median(refusal_seconds({}, folder, "--dry-run")[0] for _ in range(3))
        print(f"| (a valid space, --dry-run: start-up and validation alone) | 0 | {dry:.2f} "
              f"| | |")


if __name__ == "__main__":
    main()
