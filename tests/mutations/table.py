"""Apply each mutation of issue 13's table to a copy of the repository, one at a time, and
run the fast tests on the copy: every mutant must be killed (fail at least one test).

Usage:
    .venv/bin/python tests/mutations/table.py          # ~1 minute per mutant on 2 CPUs
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: (behaviour, file, original text, mutated text)
MUTANTS = [
    ("greedy task assignment: head tasks by % num_tasks", "spatialsearch/segregation.py",
     "assigned = head_tasks // labels", "assigned = head_tasks % num_tasks"),
    ("greedy split: argmax -> argmin", "analysis/split.py",
     "assignment = [m.argmax(0) for m in mass]", "assignment = [m.argmin(0) for m in mass]"),
    ("rescale/probability: normalise by sum, not max", "analysis/split.py",
     "relative = [m / m.max(0).values.clamp_min(1e-30) for m in mass]",
     "relative = [m / m.sum(0).clamp_min(1e-30) for m in mass]"),
    ("trainer: alpha and beta swapped", "spatialsearch/train.py",
     "cost.norm, cost.proximity,\n                                         cost.transport,",
     "cost.norm, cost.transport,\n                                         cost.proximity,"),
    ("MLflow de-duplication on resume: <= -> <", "spatialsearch/search/tracking/runs.py",
     "if step <= self.logged_steps.get(run_id, 0):",
     "if step < self.logged_steps.get(run_id, 0):"),
    ("checkpoint written straight to its target", "spatialsearch/checkpoint.py",
     '    target = Path(path)\n    target.parent.mkdir(parents=True, exist_ok=True)\n',
     '    target = Path(path)\n    target.parent.mkdir(parents=True, exist_ok=True)\n'
     '    with open(target, "wb") as file:\n        torch.save(obj, file)\n    return\n'),
    ("YAML bound: grace_period > epochs -> >=", "spatialsearch/search/space/config.py",
     "config.scheduler.grace_period > config.epochs",
     "config.scheduler.grace_period >= config.epochs"),
]


def run(behaviour: str, relative: str, original: str, mutated: str, copy: Path) -> bool:
    """True when the fast tests fail on the mutant (killed)."""
    path = copy / relative
    text = path.read_text()
    if text.count(original) != 1:
        raise SystemExit(f"{relative}: the original text of '{behaviour}' is not there once")
    path.write_text(text.replace(original, mutated))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow",
                               "-p", "no:cacheprovider"], cwd=copy, capture_output=True,
                              text=True)
    finally:
        path.write_text(text)
    return done.returncode != 0


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "repo"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
            ".venv", ".git", "runs", "__pycache__", ".hypothesis", "*.egg-info"))
        rows = [(b, f, run(b, f, o, m, copy)) for b, f, o, m in MUTANTS]
    print("| behaviour | file | fast suite |\n|---|---|---|")
    for behaviour, relative, killed in rows:
        print(f"| {behaviour} | {relative} | {'fails (killed)' if killed else 'PASSES'} |")
    return 0 if all(killed for *_, killed in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
