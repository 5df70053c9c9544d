"""The files that say what a search found, and its MLflow statuses and tags: results.csv,
best/best.pt, summary.json (SearchSummary), pareto.csv and the Pareto tags; with a storage,
the same files uploaded beside the Ray experiment (publish). ranking.py decides; this writes.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from spatialsearch import metrics as m
from spatialsearch.redact import masked
from spatialsearch.search.outcome.ranking import ParetoFront, Spread, rank
from spatialsearch.search.outcome.rows import TrialRow
from spatialsearch.search.places.place import locate
from spatialsearch.search.places.ray_folder import BEST_FILE
from spatialsearch.search.run_context import RunContext
from spatialsearch.search.space.constraints import Constraint
from spatialsearch.search.space.objectives import Objective
from spatialsearch.search.tracking.runs import SearchTracking
from spatialsearch.search.tracking.view import view_key

_logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
PARETO_TAG = "spatialsearch.pareto"
KNEE_TAG = "spatialsearch.knee"      # the recommended front trial (ranking.knee_index)
RESEED_TAG = "spatialsearch.reseed_of"  # a reseed run: the search trial it repeats
HYPERVOLUME = "hypervolume"          # parent run: the front's hypervolume, step = full trials
#: what publish uploads beside the Ray experiment
PUBLISHED = ("results.csv", "pareto.csv", "best", "analysis", "report", SUMMARY_FILE)


@dataclass
class SearchSummary:
    """Built by write_results from the trials, completed by the later steps of the run."""

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
    pareto: dict[str, Any] | None = None  # several objectives: the front (write_answer)
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


def settle_runs(context: RunContext, rows: list[TrialRow]) -> int:
    """Each trial's MLflow run ends FINISHED or FAILED with its best checkpoint; runs of trials
    Tune no longer knows (a crash before --resume) are retired. Returns how many were."""
    config, tracking = context.config, context.tracking
    retired = tracking.retire_orphans({r.trial_id for r in rows})
    tracking.settle({r.trial_id: ("FAILED" if r.status == "ERROR" else "FINISHED",
                                  locate(r.checkpoint, config.storage) if r.checkpoint
                                  else None) for r in rows})
    return retired


def write_results(context: RunContext, rows: list[TrialRow],
                  front: ParetoFront | None = None) -> SearchSummary:
    """results.csv (every trial, the ranked first), best/best.pt and summary.json. With
    several objectives "best" is the front's knee (ranking.rank), so the run writes these
    again once reseeding has decided the front on seed means."""
    config, tracking, folder = context.config, context.tracking, context.folder
    ranked = rank(config, rows, front)
    best_path = ""
    if ranked and ranked[0].checkpoint:
        best = locate(ranked[0].checkpoint, config.storage)
        if best.is_file():
            best_path = str(best.fetch(folder / "best" / BEST_FILE))
    with open(folder / "results.csv", "w", newline="") as file:
        writer = csv.writer(file)
        keys = sorted({k for r in rows for k in r.params})
        objectives = [o.metric for o in config.objectives]
        writer.writerow(["trial", "status", *keys, f"best_{config.metric}",
                         f"{m.VAL_ACCURACY_SE}_at_best", *[f"last_{o}" for o in objectives],
                         "epochs", "feasible"])
        for r in ranked + [r for r in rows if r not in ranked]:
            writer.writerow([r.trial_id, r.status, *(r.params.get(k) for k in keys),
                             r.best_metric, r.accuracy_se, *r.objectives, r.epochs,
                             r.feasible])
    summary = SearchSummary(
        search=config.name, metric=config.metric, mode=config.mode,
        objectives=[{"metric": o.metric, "mode": o.mode} for o in config.objectives],
        trials=len(rows), errored=sum(r.status == "ERROR" for r in rows),
        stopped_early=sum(0 < r.epochs < config.epochs for r in rows),
        best=None if not ranked else {
            "trial_id": ranked[0].trial_id, "params": ranked[0].params,
            config.metric: ranked[0].best_metric,
            f"{m.VAL_ACCURACY_SE}": ranked[0].accuracy_se, "checkpoint": best_path},
        table=[{k: v for k, v in r.__dict__.items() if k != "values"} for r in ranked],
        mlflow={"tracking_uri": masked(tracking.store.uri), "experiment": config.experiment,
                "experiment_id": tracking.experiment_id, "view": view_key(config.name),
                "parent_run_id": tracking.parent_id, "not_logged": tracking.unlogged},
        storage={"folder": masked(context.place.uri), "endpoint": masked(config.storage.endpoint)})
    summary.write(folder)
    return summary


def write_answer(context: RunContext, summary: SearchSummary, rows: list[TrialRow],
                 front: ParetoFront | None, spreads: Sequence[Spread]) -> None:
    """Several objectives: the front into summary.pareto, pareto.csv and MLflow (tags on its
    runs, the hypervolume on the parent). One objective: the best trial's reseed spread."""
    config = context.config
    if front is not None:
        summary.pareto = front_summary(front, {r.trial_id: r for r in rows}, spreads,
                                       config.constraints)
        write_pareto_csv(context.folder / "pareto.csv", summary.pareto)
        log_front(context.tracking, summary.pareto)
    elif spreads:
        names = [o.metric for o in config.objectives]
        summary.best["reseed"] = {"seeds": list(spreads[0].seeds),
                                  "mean": dict(zip(names, spreads[0].mean)),
                                  "std": dict(zip(names, spreads[0].std))}


def front_summary(front: ParetoFront, rows: dict[str, Any], spreads: Sequence[Spread],
                  constraints: Sequence[Constraint] = ()) -> dict[str, Any]:
    """The `pareto` section of summary.json. rows: trial id -> TrialRow. `members` lists the
    front's trials (reseeded: every candidate, each saying whether it survives), `front` the
    ids on the front, `basis` which values decided it."""
    by_id = {s.trial_id: s for s in spreads}
    names = [o.metric for o in front.objectives]
    members = []
    for trial_id in front.candidates or front.members:
        row = rows[trial_id]
        entry: dict[str, Any] = {"trial_id": trial_id, "params": row.params,
                                 "checkpoint": row.checkpoint,
                                 **dict(zip(names, row.objectives))}
        spread = by_id.get(trial_id)
        if spread is not None:
            entry["reseed"] = {"seeds": list(spread.seeds), "survives": spread.survives,
                               "invalid_seeds": list(spread.invalid_seeds),
                               "mean": dict(zip(names, spread.mean)),
                               "std": dict(zip(names, spread.std))}
        members.append(entry)
    members.sort(key=lambda e: e["trial_id"] not in front.members)  # the front first
    return {"objectives": [{"metric": o.metric, "mode": o.mode} for o in front.objectives],
            "reference_point": dict(zip(names, front.reference)),
            "reference_rule": {o.metric: reference_rule(o) for o in front.objectives},
            "basis": front.basis, "front": list(front.members),
            "hypervolume": front.hypervolume, "knee": front.knee,
            "single_seed_hypervolume": front.single_seed_hypervolume,
            "constraints": [c.describe() for c in constraints],
            "infeasible": list(front.infeasible),
            "history": [{"full_trials": n, "seconds": s, HYPERVOLUME: hv}
                        for n, s, hv in front.history],
            "members": members}


def reference_rule(objective: Objective) -> str:
    """Where an objective's reference comes from (objectives.Objective.reference_value):
    two runs' hypervolumes compare only when their rules and values agree."""
    if objective.reference is not None:
        return "given"
    if objective.mode == "max" and objective.chance_level(2, 2) is not None:
        return "chance level"
    return "beyond the worst full feasible trial"


def write_pareto_csv(path: Path, pareto: dict[str, Any]) -> Path:
    """One row per front trial: parameters, objectives, and mean/std over seeds if reseeded."""
    names = [o["metric"] for o in pareto["objectives"]]
    keys = sorted({k for m in pareto["members"] for k in m["params"]})
    spread = [f"{n}_{stat}" for n in names for stat in ("mean", "std")]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["trial", *keys, *names, *spread, "seeds", "survives_reseed",
                         "on_front", "knee"])
        for member in pareto["members"]:
            reseed = member.get("reseed", {})
            on_front = member["trial_id"] in pareto.get("front", [member["trial_id"]])
            writer.writerow([
                member["trial_id"], *(member["params"].get(k) for k in keys),
                *(member[n] for n in names),
                *(reseed[stat][n] if reseed else "" for n in names for stat in ("mean", "std")),
                " ".join(str(s) for s in reseed.get("seeds", [])), reseed.get("survives", ""),
                on_front, member["trial_id"] == pareto.get("knee")])
    return path


def log_front(tracking: SearchTracking, pareto: dict[str, Any]) -> None:
    """Tag the front's runs (a reseeded candidate that did not survive: "false"), log the
    hypervolume history on the parent run."""
    front = set(pareto.get("front", [m["trial_id"] for m in pareto["members"]]))
    for member in pareto["members"]:
        tracking.tag_trial(member["trial_id"], PARETO_TAG,
                           "true" if member["trial_id"] in front else "false")
    if pareto.get("knee"):
        tracking.tag_trial(pareto["knee"], KNEE_TAG, "true")
    tracking.log_search_metric(HYPERVOLUME, [(h["full_trials"], h[HYPERVOLUME])
                                             for h in pareto["history"]])


def publish(context: RunContext, summary: SearchSummary) -> None:
    """With a storage: the search's files (PUBLISHED) uploaded beside its Ray experiment."""
    config, place = context.config, context.place
    if not config.storage.uri:
        return
    for name in PUBLISHED:
        if (config.folder / name).exists():
            try:
                place.child(name).upload(config.folder / name)
            except OSError as error:
                _logger.warning("storage: %s not uploaded to %s: %s", name, masked(place.uri),
                                masked(str(error)))


def end_search(context: RunContext, summary: SearchSummary) -> None:
    """The parent run gets best_<metric> and ends FINISHED, or FAILED when a trial failed."""
    tracking, metric = context.tracking, context.config.metric
    if summary.best:
        tracking.log_search_metric(f"best_{metric}", [(0, summary.best[metric])])
    tracking.end_search("FAILED" if summary.errored else "FINISHED")
