"""The search report: one self-contained HTML page about a finished search.

Sections: the Pareto front of a multi-objective search (its trials with mean ± std over the
reseeded runs, drawn with error bars over every full trial, and the hypervolume as full trials
ended); the trials, one column per parameter, sortable by clicking a header; Optuna's
interactive figures of the search's study (analysis.interactive: Pareto front, parallel
coordinates and fANOVA importances per objective; the study holds the same trials as
optuna.db); for one objective, accuracy vs segregation of each trial's best checkpoint (the
paper's trade-off, with its front); learning curves of the top trials; the position plots of
the analysed best trials. Written as <search folder>/report/report.html + its PNGs.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from analysis.figures import (
    checkpoint_segregation,
    curves,
    front_with_spread,
    hypervolume_history,
    image,
    tradeoff,
)
from analysis.interactive import plotly_script, study_figures
from analysis.table import trials_table

TOP = 5


class TrialRecord(NamedTuple):
    trial_id: str
    params: dict[str, Any]  # searched parameters
    values: tuple[float, ...]  # the (first objective's) metric per epoch
    best: float  # best value of that metric
    checkpoint: str  # its best.pt ("" if none)
    objectives: tuple[float, ...] = ()  # every objective at the last epoch
    epochs: int = 0


def warm_up() -> None:
    """Import what build_report needs (matplotlib, Optuna's visualisation and fANOVA, thus
    scikit-learn and plotly: ~2 s); run_search calls it in a background thread near the end
    of the search."""
    import optuna.importance  # noqa: F401
    import optuna.visualization  # noqa: F401

    from analysis.figures import pyplot

    pyplot()


def _pareto_section(pareto: dict[str, Any], trials: list[TrialRecord], out: Path) -> str:
    names = [o["metric"] for o in pareto["objectives"]]
    rows = []
    for member in pareto["members"]:
        spread = member.get("reseed")
        cells = [f"{spread['mean'][n]:.4f} ± {spread['std'][n]:.4f}" if spread else
                 f"{member[n]:.4f}" for n in names]
        seeds = " ".join(map(str, spread["seeds"])) if spread else "-"
        kept = "" if not spread else ("yes" if spread["survives"] else "no")
        rows.append(f"<tr><td>{html.escape(member['trial_id'])}</td>"
                    + "".join(f"<td>{c}</td>" for c in cells)
                    + f"<td>{seeds}</td><td>{kept}</td></tr>")
    reference = ", ".join(f"{k} {v:.3g} ({pareto.get('reference_rule', {}).get(k, 'chance')})"
                          for k, v in pareto["reference_point"].items())
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    basis = pareto.get("basis", "last epoch, search seed")
    front = pareto.get("front", [m["trial_id"] for m in pareto["members"]])
    return (f"<h2>Pareto front ({html.escape(basis)}): {len(front)} trials, hypervolume "
            f"{pareto['hypervolume']:.4f}, knee {html.escape(str(pareto.get('knee')))}</h2>"
            f"<p>Full trials only; values at the last epoch; reference point: "
            f"{html.escape(reference)}. With reseeding, the front, its hypervolume and the knee "
            f"are decided on the mean over the seeds (mean ± std); 'survives' = still "
            f"non-dominated by the means, valid in every seed.</p>"
            f"<table><tr><th>trial</th>{head}<th>seeds</th><th>survives</th></tr>"
            f"{''.join(rows)}</table>"
            f"{image(front_with_spread(trials, pareto, out / 'pareto.png'))}"
            f"{image(hypervolume_history(pareto, out / 'hypervolume.png'))}")


def build_report(name: str, metric: str, trials: list[TrialRecord], out: Path, *,
                 log_params: set[str], study: Any, analysis_folders: list[Path],
                 pareto: dict[str, Any] | None = None) -> Path:
    """Write out/report.html (+ PNGs); trials ranked best first. study: the search as an
    optuna.Study (Optuna's figures) or None; pareto: summary.json's section, or None."""
    out.mkdir(parents=True, exist_ok=True)
    names = [o["metric"] for o in pareto["objectives"]] if pareto else [metric]
    seg = np.array([checkpoint_segregation(t.checkpoint) for t in trials])
    figures = study_figures(study, names) if study is not None else []
    interactive = "".join(f"<h2>{html.escape(title)}</h2>{body}" for title, body in figures)
    trade = "" if pareto else (f"<h2>{html.escape(metric)} vs segregation</h2>"
                               f"{image(tradeoff(trials, seg, metric, out / 'tradeoff.png'))}")
    best_plots = "".join(f"<h3>{html.escape(f.name)}</h3>{image(f / 'positions' / 'layers.png')}"
                         for f in analysis_folders)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>spatialsearch report: {html.escape(name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}
th.sortable{{cursor:pointer;background:#f3f3f3}}</style>{plotly_script() if figures else ""}
</head><body>
<h1>Search {html.escape(name)}: {len(trials)} trials</h1>
{_pareto_section(pareto, trials, out) if pareto else ""}
<h2>Trials</h2><p>Click a header to sort. {html.escape(metric)}: best over epochs;
segregation: of the best checkpoint.</p>
{trials_table(trials, seg, metric, names[1:])}
{interactive}{trade}
<h2>Learning curves</h2>{image(curves(trials[:TOP], metric, out / "curves.png"))}
<h2>Best trials' neuron positions</h2>{best_plots or "<p>no trial analysed</p>"}
</body></html>"""
    report = out / "report.html"
    report.write_text(page)
    return report
