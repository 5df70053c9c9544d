"""An append-only journal in a place: what MO-ASHA decided, entry by entry, so that saving a
decision costs one small write however long the search has run (the whole state rewritten
after each decision grew with the search, one upload of a growing object per decision on
S3).

Local storage: one file, one JSON line appended per entry. S3 (whose objects cannot grow): one
small object per entry, <folder>/<sequence>.json. A crash mid-append leaves at most a partial
last line, which reading skips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spatialsearch.search.places.place import Place


class Journal:
    """Entries (JSON objects) appended to `place`: a file when local, else a folder."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self._next: int | None = None  # S3: the next entry's sequence number

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"))
        if self.place.local:
            path = Path(self.place.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as file:
                file.write(line + "\n")
            return
        if self._next is None:
            self._next = len(self.place.entries())
        self.place.child(f"{self._next:09d}.json").write_bytes(line.encode())
        self._next += 1

    def entries(self) -> list[dict[str, Any]]:
        """Every whole entry, in the order appended."""
        if self.place.local:
            path = Path(self.place.path)
            lines = path.read_text().splitlines() if path.is_file() else []
        else:
            objects = self.place.entries()
            self._next = len(objects)
            lines = [entry.read_text() for entry in objects]
        found = []
        for line in lines:
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:  # a partial last line of a crashed append
                continue
        return found
