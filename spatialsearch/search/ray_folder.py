"""Ray Tune's experiment folder, read in one place: <storage>/<name>/trial_<id>/ holds
params.json (the config), result.json (one JSON line per report), error.txt (a failed
trial's traceback) and checkpoint_NNNNNN/ folders (best.pt inside)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, NamedTuple

BEST_FILE = "best.pt"
RAY_FOLDER = "ray"  # <search folder>/ray/<name>: the search's Tune experiment


class RecordedTrial(NamedTuple):
    """One trial folder: its id, config, reported results, last checkpoint, failure."""

    trial_id: str
    config: dict[str, Any]
    results: list[dict[str, Any]]
    checkpoint: Path | None  # the last checkpoint folder
    error: str  # the last line of error.txt; "" when the trial did not fail

    @property
    def best_checkpoint(self) -> str | None:
        best = self.checkpoint / BEST_FILE if self.checkpoint is not None else None
        return str(best) if best is not None and best.is_file() else None


def recorded_trials(experiment: Path) -> list[RecordedTrial]:
    """Every trial folder of a Tune experiment that reported at least one result."""
    found = []
    for folder in sorted(p for p in experiment.iterdir() if (p / "params.json").is_file()):
        lines = ((folder / "result.json").read_text().splitlines()
                 if (folder / "result.json").is_file() else [])
        results = [json.loads(line) for line in lines if line.strip()]
        if not results:
            continue
        checkpoints = sorted(folder.glob("checkpoint_*"))
        error = folder / "error.txt"
        reason = ""
        if error.is_file():
            text = error.read_text().strip().splitlines()
            reason = text[-1] if text else "trial failed"
        found.append(RecordedTrial(
            str(results[0]["trial_id"]), json.loads((folder / "params.json").read_text()),
            results, checkpoints[-1] if checkpoints else None, reason))
    return found


def prune_checkpoints(experiment: Path) -> int:
    """After the search: keep only each trial's last checkpoint folder; returns how many
    were removed. Safe then (no trial will be restored); never during the search."""
    removed = 0
    for trial in experiment.iterdir():
        checkpoints = sorted(trial.glob("checkpoint_*")) if trial.is_dir() else []
        for old in checkpoints[:-1]:
            shutil.rmtree(old, ignore_errors=True)
            removed += 1
    return removed
