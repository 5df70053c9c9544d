"""A multi-objective search's answer, written out: pareto.csv, the `pareto` section of
summary.json, the printed Pareto table, and in MLflow the spatialsearch.pareto tag on the
front's runs plus the hypervolume and its history on the parent run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Sequence

from spatialsearch.search.constraints import Constraint
from spatialsearch.search.front import ParetoFront
from spatialsearch.search.reseed import RESEED_TAG, Spread
from spatialsearch.search.tracking import SearchTracking

PARETO_TAG = "spatialsearch.pareto"
KNEE_TAG = "spatialsearch.knee"      # the recommended front trial (front.knee_index)
HYPERVOLUME = "hypervolume"          # parent run: the front's hypervolume, step = full trials


def front_summary(front: ParetoFront, rows: dict[str, Any], spreads: Sequence[Spread],
                  constraints: Sequence[Constraint] = ()) -> dict[str, Any]:
    """The `pareto` section of summary.json. rows: trial id -> results.TrialRow."""
    by_id = {s.trial_id: s for s in spreads}
    names = [o.metric for o in front.objectives]
    members = []
    for trial_id in front.members:
        row = rows[trial_id]
        entry: dict[str, Any] = {"trial_id": trial_id, "params": row.params,
                                 "checkpoint": row.checkpoint,
                                 **dict(zip(names, row.objectives))}
        spread = by_id.get(trial_id)
        if spread is not None:
            entry["reseed"] = {"seeds": list(spread.seeds), "survives": spread.survives,
                               "mean": dict(zip(names, spread.mean)),
                               "std": dict(zip(names, spread.std))}
        members.append(entry)
    return {"objectives": [{"metric": o.metric, "mode": o.mode} for o in front.objectives],
            "reference_point": dict(zip(names, front.reference)),
            "hypervolume": front.hypervolume, "knee": front.knee,
            "constraints": [c.describe() for c in constraints],
            "infeasible": list(front.infeasible),
            "history": [{"full_trials": n, "seconds": s, HYPERVOLUME: hv}
                        for n, s, hv in front.history],
            "members": members}


def write_pareto_csv(path: Path, pareto: dict[str, Any]) -> Path:
    """One row per front trial: parameters, objectives, and mean/std over seeds if reseeded."""
    names = [o["metric"] for o in pareto["objectives"]]
    keys = sorted({k for m in pareto["members"] for k in m["params"]})
    spread = [f"{n}_{stat}" for n in names for stat in ("mean", "std")]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", *keys, *names, *spread, "seeds", "survives_reseed"])
        for member in pareto["members"]:
            reseed = member.get("reseed", {})
            writer.writerow([
                member["trial_id"], *(member["params"].get(k) for k in keys),
                *(member[n] for n in names),
                *(reseed[stat][n] if reseed else "" for n in names for stat in ("mean", "std")),
                " ".join(str(s) for s in reseed.get("seeds", [])), reseed.get("survives", "")])
    return path


def log_front(tracking: SearchTracking, pareto: dict[str, Any]) -> None:
    """Tag the front's runs, log the hypervolume history on the parent run."""
    for member in pareto["members"]:
        tracking.tag_trial(member["trial_id"], PARETO_TAG, "true")
    if pareto.get("knee"):
        tracking.tag_trial(pareto["knee"], KNEE_TAG, "true")
    tracking.log_search_metric(HYPERVOLUME, [(h["full_trials"], h[HYPERVOLUME])
                                             for h in pareto["history"]])


def tag_reseeds(tracking: SearchTracking, origins: dict[str, str]) -> None:
    """origins: reseed trial id -> the search trial it repeats."""
    for trial_id, origin in origins.items():
        tracking.tag_trial(trial_id, RESEED_TAG, origin)
