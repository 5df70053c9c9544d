"""The paper's claims, checked on a finished grid search (search_spaces/paper.yaml).

Every trial's best checkpoint is measured alike, with the measures a trial logs
(spatialsearch.measures.task_measures, on the validation split): accuracy, the task-free
positions split (diagonal - off-diagonal), selectivity, Barber's modularity Q and
segregation. Trials that differ only in `seed` form one setting (every other key is kept
apart), shown as mean ± SD over its seeds.

A claim compares a setting with costs (proximity and transport > 0) against the setting that
equals it in every key but the costs (both 0) and the seed (analysis/statistics.py):
  the costs raise M     (M each of the four measures) one-sided paired t-test over the seeds
                        both arms share (Welch's t-test when they share none), effect = mean
                        difference with a 95% bootstrap CI;
  the costs keep accuracy   non-inferiority: the upper bound of the one-sided 95% CI of the
                        accuracy lost stays below ACCURACY_MARGIN, and both arms' accuracy
                        lies above chance (1/C) by the lower bound of its 95% CI.
Holm's correction runs over every test of the table; a claim holds when its adjusted p is
below SIGNIFICANT. One that does not is "not shown", with the test's power: to detect a large
effect (Cohen's d = 0.8) at the Bonferroni level 0.05 / tests, or to show non-inferiority
when no accuracy is lost.

    spatialsearch claims <search folder>      # prints the tables; writes <folder>/claims.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from analysis.context import AnalysisContext, open_checkpoint
from analysis.statistics import (
    holm,
    non_inferiority,
    power_large_effect,
    power_non_inferior,
    superiority,
)
from spatialsearch import metrics as m
from spatialsearch.errors import ConfigError
from spatialsearch.evaluation import evaluate

#: the input modes as the tables name them: (input, sampler)
from spatialsearch.measures import task_measures

#: the input modes as the tables name them: (input, sampler)
MODES = {"concatenate": ("concatenate", None), "mix": ("mix", None),
         "sequential, random sampler": ("sequential", "random"),
         "sequential, task sampler": ("sequential", "task")}
#: the measures a claim says the costs raise: metric -> how the table names it
MEASURES = {m.POSITIONS_SPLIT: "positions split", m.SELECTIVITY: "selectivity",
            m.MODULARITY: "modularity Q", m.SEGREGATION: "segregation"}
ACCURACY = "accuracy"
ACCURACY_MARGIN = 0.05   # the accuracy the costs may cost: the README states this margin
SIGNIFICANT = 0.05
COST_KEYS = ("proximity", "transport")


class Measured(NamedTuple):
    setting: dict[str, Any]   # the trial's params without its seed
    seed: int | None
    chance: float             # accuracy at chance, 1/C
    values: dict[str, float]  # accuracy and every MEASURES metric


def checkpoint_measures(context: AnalysisContext) -> dict[str, float]:
    """A checkpoint's accuracy and task measures, as a trial logs them."""
    data, batches = context.config.data, context.batches("validation")
    found = task_measures(context.model, data.num_tasks, data.labels, batches)
    return {ACCURACY: evaluate(context.model, batches).accuracy,
            **{k: float(found.get(k, np.nan)) for k in MEASURES}}


def measure(checkpoint: str, params: dict[str, Any]) -> Measured:
    """One trial's best checkpoint, measured."""
    context = open_checkpoint(checkpoint)
    seed = params.get("seed")
    return Measured({k: v for k, v in params.items() if k != "seed"},
                    None if seed is None else int(seed), 1.0 / context.config.data.labels,
                    checkpoint_measures(context))


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


def _key(setting: dict[str, Any]) -> tuple:
    return distinct(setting)


def _rest(setting: dict[str, Any]) -> tuple:
    """Every key but the costs: what a costs setting and its no-costs setting share."""
    return distinct({k: v for k, v in setting.items() if k not in COST_KEYS})


def _name(setting: dict[str, Any]) -> str:
    return (f"{_mode(setting)}, α {setting.get('proximity', 0):g}, "
            f"β {setting.get('transport', 0):g}")


def _order(setting: dict[str, Any]) -> tuple:
    """Tables list settings by input mode (MODES' order), then by name."""
    mode = _mode(setting)
    return (list(MODES).index(mode) if mode in MODES else len(MODES), _name(setting))


def _cell(values: list[float]) -> str:
    sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.3f} ± {sd:.3f}"


def _arms(costs: list[Measured], none: list[Measured]
          ) -> tuple[list[Measured], list[Measured], bool]:
    """The two arms, paired by seed where they share seeds (only the shared ones kept)."""
    shared = sorted({r.seed for r in costs} & {r.seed for r in none} - {None})
    if len(shared) >= 2:
        by = lambda rows: {r.seed: r for r in rows}  # noqa: E731
        return [by(costs)[s] for s in shared], [by(none)[s] for s in shared], True
    return costs, none, False


def _above_chance(rows: list[Measured]) -> bool:
    """The lower bound of the 95% t CI of the arm's mean accuracy lies above chance."""
    values = np.array([r.values[ACCURACY] for r in rows])
    if len(values) < 2:
        return False
    error = np.std(values, ddof=1) / np.sqrt(len(values))
    return bool(values.mean() - stats.t.ppf(0.975, len(values) - 1) * error > rows[0].chance)


class Claim(NamedTuple):
    name: str        # e.g. "concatenate, α 1, β 10: the costs raise the positions split"
    measured: str    # costs vs none, effect and CI
    test: str
    p: float
    needs: bool      # besides the corrected test: non-inferiority's bound and chance checks
    n: int           # pairs (or the smaller arm)
    spread: float    # SD of the paired differences (or pooled), for the power
    kind: str        # "superiority" or "non-inferiority"

    def power(self, alpha: float) -> float:
        """What a "not shown" is worth: the test's power at level alpha."""
        if self.kind == "superiority":
            return power_large_effect(self.n, alpha)
        return power_non_inferior(self.n, self.spread, ACCURACY_MARGIN, alpha)


def _claims(groups: dict[tuple, list[Measured]]) -> list[Claim]:
    settings = {key: rows[0].setting for key, rows in groups.items()}
    claims: list[Claim] = []
    for key, setting in sorted(settings.items(), key=lambda item: _order(item[1])):
        if _costs(setting) != "costs":
            continue
        match = [k for k, s in settings.items() if _costs(s) == "none"
                 and _rest(s) == _rest(setting)]
        if not match:
            continue
        costs, none, paired = _arms(groups[key], groups[match[0]])
        design = f"paired t, n = {len(costs)}" if paired else \
            f"Welch t, n = {len(costs)} / {len(none)}"
        for metric, label in MEASURES.items():
            a = [r.values[metric] for r in costs]
            b = [r.values[metric] for r in none]
            tested = superiority(a, b, paired)
            claims.append(Claim(
                f"{_name(setting)}: the costs raise the {label}",
                f"{np.mean(a):.3f} vs {np.mean(b):.3f}; Δ {tested.effect:+.3f} "
                f"[{tested.low:+.3f}, {tested.high:+.3f}]", design, tested.p, True,
                tested.n, tested.spread, "superiority"))
        a = [r.values[ACCURACY] for r in costs]
        b = [r.values[ACCURACY] for r in none]
        tested = non_inferiority(a, b, ACCURACY_MARGIN, paired)
        chance = _above_chance(costs) and _above_chance(none)
        claims.append(Claim(
            f"{_name(setting)}: the costs keep accuracy (loss < {ACCURACY_MARGIN:g})",
            f"{np.mean(a):.3f} vs {np.mean(b):.3f}; loss {tested.effect:+.3f}, one-sided "
            f"95% upper bound {tested.high:+.3f}{'' if chance else '; an arm at chance'}",
            design.replace("t,", "non-inferiority t,"), tested.p,
            chance and tested.high < ACCURACY_MARGIN, tested.n, tested.spread,
            "non-inferiority"))
    return claims


def claims_tables(measured: list[Measured]) -> str:
    """The table (a row per setting) and the claims with Holm-corrected p-values, as
    Markdown."""
    groups: dict[tuple, list[Measured]] = {}
    for row in measured:
        groups.setdefault(_key(row.setting), []).append(row)
    columns = [ACCURACY, *MEASURES]
    lines = ["| setting | seeds | " + " | ".join([ACCURACY, *MEASURES.values()]) + " |",
             "|---|---|" + "---|" * len(columns)]
    order = sorted(groups, key=lambda k: _order(groups[k][0].setting))
    for key in order:
        rows = groups[key]
        lines.append(f"| {_name(rows[0].setting)} | {len(rows)} | " + " | ".join(
            _cell([r.values[c] for r in rows]) for c in columns) + " |")
    claims = _claims(groups)
    adjusted = holm([c.p for c in claims])
    level = SIGNIFICANT / max(len(claims), 1)
    verdicts = ["", f"{len(claims)} claims; Holm's correction over all of them; mean ± SD "
                f"over seeds; Δ = mean paired difference (costs − none) with its 95% "
                f"bootstrap CI (BCa).", "",
                "| claim | costs vs none | test | p | Holm p | verdict |",
                "|---|---|---|---|---|---|"]
    for claim, p in zip(claims, adjusted):
        if p < SIGNIFICANT and claim.needs:
            verdict = "holds"
        elif claim.kind == "superiority":
            verdict = f"not shown (power {claim.power(level):.2f} for d = 0.8 at α = {level:.2g})"
        else:
            verdict = (f"not shown (power {claim.power(level):.2f} at α = {level:.2g} if no "
                       f"accuracy is lost)")
        verdicts.append(f"| {claim.name} | {claim.measured} | {claim.test} | {claim.p:.3g} | "
                        f"{p:.3g} | {verdict} |")
    return "\n".join(lines + verdicts)


def write_claims(folder: Path) -> str:
    """Measure the search in folder, write folder/claims.md, return its text."""
    text = claims_tables(measure_search(folder))
    (folder / "claims.md").write_text(text + "\n")
    return text
