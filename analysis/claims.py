"""The paper's claims, checked on a finished grid search (search_spaces/paper.yaml).

Every trial's best checkpoint is measured alike: validation accuracy, segregation and
modularity Q (as a trial logs them: spatialsearch.segregation and .modularity, neurons never
active on the validation data left out) and the task-free `positions` split (k-means on the
positions, matched to tasks only when scoring: diagonal and off-diagonal accuracy). Trials
that differ only in `seed` form one setting, shown as mean ± std over its seeds. Settings:
"costs" is proximity and transport both > 0, "none" both 0 (one of them alone is
shown as such; the claims compare "costs" with "none"). A claim holds when a one-sided
Welch t-test (scipy) over the seeds gives p < 0.05 in the claimed direction.

    spatialsearch claims <search folder>      # prints the tables; writes <folder>/claims.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from analysis.context import AnalysisContext, open_checkpoint
from analysis.score import score
from analysis.split import split
from spatialsearch.errors import ConfigError
from spatialsearch.modularity import modularity
from spatialsearch.segregation import segregation
from spatialsearch.train import active_neurons, evaluate

#: the input modes as the tables name them: (input, sampler)
MODES = {"concatenate": ("concatenate", None), "mix": ("mix", None),
         "sequential, random sampler": ("sequential", "random"),
         "sequential, task sampler": ("sequential", "task")}
SIGNIFICANT = 0.05


class Measured(NamedTuple):
    setting: dict[str, Any]  # the trial's params without its seed
    accuracy: float
    segregation: float
    modularity: float
    diagonal: float          # positions split
    off_diagonal: float


def segregation_and_modularity(context: AnalysisContext) -> tuple[float, float]:
    """A checkpoint's segregation and mean modularity Q, as a trial logs them (neurons never
    active on the validation data left out)."""
    data, layers = context.config.data, context.model.spatial_layers
    active = active_neurons(context.model, context.batches("validation"))
    per_pair = modularity(layers, data.num_tasks, data.labels, active=active)
    return (segregation(layers, data.num_tasks, data.labels, active=active).mean,
            float(np.nanmean(list(per_pair.values()))))


def measure(checkpoint: str, params: dict[str, Any]) -> Measured:
    """One trial's best checkpoint, measured."""
    context = open_checkpoint(checkpoint)
    positions = score(context, split(context, "positions"), "validation")
    return Measured({k: v for k, v in params.items() if k != "seed"},
                    evaluate(context.model, context.batches("validation")).accuracy,
                    *segregation_and_modularity(context),
                    positions.diagonal, positions.off_diagonal)


def distinct(params: dict[str, Any]) -> tuple:
    """What makes a trial's run distinct: its params, without `sampler` outside sequential
    mode (where it is unused: the grid's two sampler values are the same run)."""
    used = {k: v for k, v in params.items()
            if k != "sampler" or params.get("input") == "sequential"}
    return tuple(sorted((k, str(v)) for k, v in used.items()))


def measure_search(folder: Path) -> list[Measured]:
    """Every distinct finished trial of the search in folder (its summary.json), measured
    once: a repeat of the same run (distinct) would count one seed twice."""
    summary = folder / "summary.json"
    if not summary.is_file():
        raise ConfigError(f"folder: {folder} holds no summary.json of a finished search")
    table = json.loads(summary.read_text())["table"]
    runs = {distinct(row["params"]): row for row in reversed(table)
            if row["checkpoint"] and Path(row["checkpoint"]).is_file()}
    return [measure(row["checkpoint"], row["params"]) for row in reversed(runs.values())]


def _costs(setting: dict[str, Any]) -> str:
    proximity, transport = setting.get("proximity", 0), setting.get("transport", 0)
    if proximity > 0 and transport > 0:
        return "costs"
    if proximity > 0 or transport > 0:
        return "proximity only" if proximity > 0 else "transport only"
    return "none"


def _mode(setting: dict[str, Any]) -> str:
    for name, (input_mode, sampler) in MODES.items():
        if setting.get("input", "concatenate") == input_mode and \
                sampler in (None, setting.get("sampler", "random")):
            return name
    return "?"


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f}" \
        f" (n={len(values)})"


def _greater(a: list[float], b: list[float]) -> float:
    """One-sided Welch t-test p that mean(a) > mean(b)."""
    from scipy.stats import ttest_ind

    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def claims_tables(measured: list[Measured]) -> str:
    """The table (a row per input mode and costs setting) and the verdicts, as Markdown."""
    groups: dict[tuple[str, str], list[Measured]] = {}
    for row in measured:
        groups.setdefault((_costs(row.setting), _mode(row.setting)), []).append(row)

    def get(costs: str, mode: str, field: str) -> list[float]:
        return [getattr(r, field) for r in groups.get((costs, mode), [])]

    lines = ["| input mode | costs | accuracy | segregation | modularity Q | positions split "
             "diagonal | off-diagonal |", "|---|---|---|---|---|---|---|"]
    for mode in MODES:
        for costs in ("costs", "proximity only", "transport only", "none"):
            if (costs, mode) in groups:
                lines.append(f"| {mode} | {costs} | " + " | ".join(_cell(get(costs, mode, f))
                             for f in ("accuracy", "segregation", "modularity", "diagonal",
                                       "off_diagonal")) + " |")
    verdicts = ["", "| claim | measured | holds |", "|---|---|---|"]
    for mode in MODES:
        if ("costs", mode) not in groups or ("none", mode) not in groups:
            continue
        for field, what in (("segregation", "segregation"), ("modularity", "modularity Q")):
            p = _greater(get("costs", mode, field), get("none", mode, field))
            verdicts.append(f"| {mode}: the costs raise {what} | "
                            f"{np.mean(get('costs', mode, field)):.3f} vs "
                            f"{np.mean(get('none', mode, field)):.3f}, p = {p:.3g} | "
                            f"{'yes' if p < SIGNIFICANT else 'no'} |")
        gap = {c: list(np.subtract(get(c, mode, "diagonal"), get(c, mode, "off_diagonal")))
               for c in ("costs", "none")}
        p = _greater(gap["costs"], gap["none"])
        verdicts.append(f"| {mode}: the task-free positions split separates the tasks more "
                        f"with costs (diagonal − off-diagonal) | {np.mean(gap['costs']):.3f} vs "
                        f"{np.mean(gap['none']):.3f}, p = {p:.3g} | "
                        f"{'yes' if p < SIGNIFICANT else 'no'} |")
        loss = np.mean(get("none", mode, "accuracy")) - np.mean(get("costs", mode, "accuracy"))
        verdicts.append(f"| {mode}: the costs cost little accuracy (≤ 0.05) | "
                        f"{loss:+.3f} | {'yes' if loss <= 0.05 else 'no'} |")
    return "\n".join(lines + verdicts)


def write_claims(folder: Path) -> str:
    """Measure the search in folder, write folder/claims.md, return its text."""
    text = claims_tables(measure_search(folder))
    (folder / "claims.md").write_text(text + "\n")
    return text
