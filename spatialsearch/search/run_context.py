"""RunContext: what every step of one search shares, built once by run_search after preflight
and handed down, so that no step rebuilds it from the config.

The place is the search's folder in its storage (the local search folder, a shared folder or
S3: places.search_place, called here and nowhere else); the clock is the time the search first
started, which --resume keeps (driver_record.py), so the hypervolume history counts from it
across every resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spatialsearch.search.places.driver_record import RESUME_FOLDER
from spatialsearch.search.places.place import Place, search_place
from spatialsearch.search.places.ray_folder import RAY_FOLDER
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.tracking.runs import SearchTracking
from spatialsearch.search.tracking.store import Store


def place_of(config: SearchConfig) -> Place:
    """The search's folder in its storage (nothing is touched)."""
    return search_place(config.storage, config.folder, config.name)


def tracking_uri(config: SearchConfig) -> str:
    """The MLflow store the user named, else the search's own SQLite file."""
    return config.tracking_uri or f"sqlite:///{(config.folder / 'mlflow.db').resolve()}"


@dataclass(frozen=True)
class RunContext:
    config: SearchConfig
    place: Place                  # the search's folder in its storage
    tracking: SearchTracking      # the search's MLflow runs (opened by the Tune run's callback)
    started: float                # unix time the search first started (kept by --resume)

    @property
    def folder(self) -> Path:
        """The local search folder, <output>/<name>."""
        return self.config.folder

    @property
    def experiment(self) -> Place:
        """The search's Tune experiment folder in its storage (ray_folder.py reads it)."""
        return self.place.child(RAY_FOLDER, self.config.name)

    @property
    def resume_folder(self) -> Place:
        """Where the driver's record and MO-ASHA's rungs are kept (driver_record.py)."""
        return self.place.child(RESUME_FOLDER)


def search_tracking(config: SearchConfig) -> SearchTracking:
    """The search's MLflow runs on its store (opened later, by the Tune run's callback). A
    store without a server (SQLite, PostgreSQL, ...) keeps a new experiment's artifacts in
    the search folder; MLflow's own default would be ./mlruns wherever the driver runs. A
    server keeps its own."""
    served = config.tracking_uri.startswith(("http://", "https://", "databricks"))
    artifacts = None if served else config.folder / "mlartifacts"
    return SearchTracking(Store(tracking_uri(config), config.experiment, artifacts),
                          config.name, config.source_hash, config.folder)
