"""SearchSummary: what a finished search reports, written as <search folder>/summary.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"


@dataclass
class SearchSummary:
    """Built by results.write_results from the trials, completed by the conclude step."""

    search: str
    metric: str                     # the first objective
    mode: str
    objectives: list[dict[str, str]]  # {metric, mode} each
    trials: int
    errored: int
    stopped_early: int              # by the scheduler, before their full epochs
    best: dict[str, Any] | None     # the best trial (one objective) or the front's first
    table: list[dict[str, Any]]     # the finished trials, best first
    mlflow: dict[str, Any]          # tracking_uri, experiment, parent_run_id, not_logged, ...
    pareto: dict[str, Any] | None = None  # several objectives: the front (search.answer)
    analyzed: list[str] = field(default_factory=list)  # analysis folders of the best trials
    report: str = ""                # report.html
    search_seconds: float = 0.0     # the trials' wall time (Tune's fit)
    storage: dict[str, str] = field(default_factory=dict)  # folder (the search's in storage),
                                                           # endpoint

    def as_dict(self) -> dict[str, Any]:
        found = dataclasses.asdict(self)
        if found["pareto"] is None:
            del found["pareto"]
        return found

    def write(self, folder: Path) -> Path:
        path = folder / SUMMARY_FILE
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")
        return path
