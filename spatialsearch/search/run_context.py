"""RunContext: what every step of one search shares, built once by runner.run_search and
handed down, so that no step rebuilds it from the config.

The place is the search's folder in its storage (the local search folder, a shared folder or
S3: places.search_place, called here and nowhere else); the clock is the time the search first
started, which --resume keeps (driver_record.py), so the hypervolume history counts from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spatialsearch.search.config import SearchConfig
from spatialsearch.search.places import Place, search_place
from spatialsearch.search.tracking import SearchTracking


def place_of(config: SearchConfig) -> Place:
    """The search's folder in its storage (nothing is touched)."""
    return search_place(config.storage, config.folder, config.name)


@dataclass(frozen=True)
class RunContext:
    config: SearchConfig
    place: Place                  # the search's folder in its storage
    tracking: SearchTracking      # the search's MLflow runs
    started: float                # unix time the search first started (kept by --resume)

    @property
    def folder(self) -> Path:
        """The local search folder, <output>/<name>."""
        return self.config.folder
