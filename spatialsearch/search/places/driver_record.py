"""What a search's driver keeps beside Tune's experiment state, so that --resume continues the
search exactly, on this machine or another (with --storage and a tracking server): when the
search first started (the hypervolume history's clock) and its MLflow parent run. The record
lives in <search folder in storage>/resume/driver.json; MO-ASHA keeps its rungs there too
(moasha.py, tune_space.MOASHA_STATE). Not inside Tune's experiment folder: a restored Tune
re-uploads the copy of that folder it downloaded, which would overwrite later writes. A new
search (not --resume) starts with an empty resume folder (clear_resume_folder).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from spatialsearch.search.places.place import Place

RESUME_FOLDER = "resume"
RECORD = "driver.json"
PARENT_RECORD = "mlflow_parent_run_id"  # in the search folder: the parent run to reuse


@dataclass(frozen=True)
class DriverRecord:
    started: float           # unix time the search first started (after its preflight)
    parent_run_id: str = ""  # the MLflow parent run ("" until the store was opened)


def read_record(resume: Place) -> DriverRecord | None:
    """The record in the search's resume folder, if any."""
    place = resume.child(RECORD)
    return DriverRecord(**json.loads(place.read_text())) if place.is_file() else None


def write_record(resume: Place, record: DriverRecord) -> None:
    resume.child(RECORD).write_bytes(json.dumps(asdict(record)).encode())


def clear_resume_folder(resume: Place) -> None:
    """A new search: nothing a former search of the same name left is read back."""
    resume.delete()


def ready_folder(folder: Path, resume: Place, resuming: bool) -> float:
    """Make the local search folder. A new search clears what an earlier one of the same name
    left in its resume folder; a resumed one reads its record back: the MLflow parent run
    (also when resumed on another machine) and the time it first started, which is returned
    (now, for a new search): the hypervolume history's clock."""
    folder.mkdir(parents=True, exist_ok=True)
    if not resuming:
        clear_resume_folder(resume)
    earlier = read_record(resume) if resuming else None
    if earlier and earlier.parent_run_id and not (folder / PARENT_RECORD).is_file():
        (folder / PARENT_RECORD).write_text(earlier.parent_run_id + "\n")  # another machine
    return earlier.started if earlier else time.time()
