"""Ray Tune's experiment folder, read in one place, in any storage (places.Place): <search
folder>/ray/<name>/trial_<id>/ holds params.json (the config), result.json (one JSON line per
report), error.txt (a failed trial's traceback) and checkpoint_NNNNNN/ folders (best.pt
inside). When writing the search's folder fails (a full disk), disk_errors says what of it is
kept."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import threading
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from spatialsearch.errors import SearchFailed
from spatialsearch.search.places.place import Place

BEST_FILE = "best.pt"
RAY_FOLDER = "ray"  # <search folder>/ray/<name>: the search's Tune experiment


class RecordedTrial(NamedTuple):
    """One trial folder: its id, config, reported results, last checkpoint, failure."""

    trial_id: str
    config: dict[str, Any]
    results: list[dict[str, Any]]
    checkpoint: Place | None  # the last checkpoint folder
    error: str  # the last line of error.txt; "" when the trial did not fail

    @property
    def best_checkpoint(self) -> Place | None:
        """The best.pt of the last checkpoint (it may be absent: places.local_copy)."""
        return self.checkpoint.child(BEST_FILE) if self.checkpoint is not None else None


def _name(place: Place) -> str:
    return place.path.rstrip("/").rsplit("/", 1)[-1]


def checkpoint_folders(trial: Place) -> list[Place]:
    """A trial folder's checkpoint_NNNNNN folders, oldest first."""
    return [p for p in trial.entries() if _name(p).startswith("checkpoint_")]


def recorded_trials(experiment: Place) -> list[RecordedTrial]:
    """Every trial folder of a Tune experiment that reported at least one result."""
    found = []
    for folder in experiment.entries():
        if not folder.child("params.json").is_file():
            continue
        result_file = folder.child("result.json")
        lines = result_file.read_text().splitlines() if result_file.is_file() else []
        results = [json.loads(line) for line in lines if line.strip()]
        if not results:
            continue
        checkpoints = checkpoint_folders(folder)
        error, reason = folder.child("error.txt"), ""
        if error.is_file():
            text = error.read_text().strip().splitlines()
            reason = text[-1] if text else "trial failed"
        found.append(RecordedTrial(
            str(results[0]["trial_id"]), json.loads(folder.child("params.json").read_text()),
            results, checkpoints[-1] if checkpoints else None, reason))
    return found


def prune_in_background(experiment: Place) -> threading.Thread:
    """prune_checkpoints in a started thread (join it before the search returns)."""
    pruning = threading.Thread(target=prune_checkpoints, name="prune-checkpoints",
                               args=(experiment,))
    pruning.start()
    return pruning


def prune_checkpoints(experiment: Place) -> int:
    """After the search: keep only each trial's last checkpoint folder; returns how many
    were removed. Safe then (no trial will be restored); never during the search."""
    removed = 0
    for trial in experiment.entries():
        for old in checkpoint_folders(trial)[:-1] if trial.is_dir() else []:
            try:
                old.delete()
            except OSError:
                continue
            removed += 1
    return removed


@contextlib.contextmanager
def disk_errors(folder: Path) -> Iterator[None]:
    """A full or failing disk (Ray's own files included) -> one SearchFailed saying what is
    kept and how to go on, advice by cause: no space, no permission, anything else."""
    try:
        yield
    except (OSError, EOFError) as error:
        number = getattr(error, "errno", None)
        try:
            free = f"; {shutil.disk_usage(folder).free / 2**20:.0f} MiB free there"
        except OSError:
            free = ""
        if number in (errno.ENOSPC, errno.EDQUOT):
            advice = "free space, then continue with --resume"
        elif number in (errno.EACCES, errno.EPERM, errno.EROFS):
            advice = ("make the folder writable (or choose another output/storage), then "
                      "continue with --resume")
        else:
            advice = "mend the cause above, then continue with --resume"
        raise SearchFailed(
            f"output: writing the search to {str(folder)!r} failed ({error}){free}. "
            f"Checkpoints of the trials that finished are kept under "
            f"{str(folder / RAY_FOLDER)!r}; {advice}") from error

