"""What the MLflow UI opens on for a search: a shared view of the experiment's runs page
(MLflow's own mechanism: an experiment tag mlflow.sharedViewState.<key>, opened with
?viewStateShareKey=<key>) listing the search's trials, best first by the first objective, with
a column per objective and per searched key.

A shared view cannot expand a parent run's children (MLflow leaves expanded rows out of it),
so the trials are listed by a filter on their tags rather than under the parent run. The
sidebar's GenAI / Model training toggle lives in the browser alone (the user switches it once).
"""

from __future__ import annotations

import json
from typing import Sequence

VIEW_TAG_PREFIX = "mlflow.sharedViewState."


def view_key(search: str) -> str:
    """The share key of a search's view (one per search name in an experiment)."""
    return f"spatialsearch-{search}"


def view_state(search: str, objectives: Sequence[tuple[str, str]],
               params: Sequence[str]) -> str:
    """The view as MLflow's UI reads it (JSON): objectives are (metric, mode), the first
    sorts; params are the searched keys."""
    metric, mode = objectives[0]
    return json.dumps({
        "searchFilter": (f"tags.`spatialsearch.search` = '{search}' and "
                         f"tags.`spatialsearch.kind` = 'trial'"),
        "orderByKey": f"metrics.`{metric}`", "orderByAsc": mode == "min",
        "selectedColumns": [f"metrics.`{name}`" for name, _ in objectives]
                           + [f"params.`{key}`" for key in params],
    })


def runs_page(experiment_id: str | None, key: str | None) -> str:
    """The runs page's address (after the UI's base URL), in the shared view when given."""
    page = f"#/experiments/{experiment_id or ''}/runs"
    return f"{page}?viewStateShareKey={key}" if key else page
