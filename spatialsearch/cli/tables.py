"""The tables a search prints: its trials (ranked) and its Pareto front; plain text, columns
left-aligned."""

from __future__ import annotations

from typing import Any

from spatialsearch.search.outcome.files import SearchSummary


def format_table(summary: SearchSummary, top: int = 20) -> str:
    """The results table printed after a search: trial, parameters, the metric at its best
    epoch (one objective) or every objective at the last epoch, the full trials first by
    front rank (several), epochs; the `top` first trials, then how many more results.csv
    holds."""
    if not summary.table:
        return "no trial finished"
    rows = summary.table[:top]
    keys = sorted({k for r in rows for k in r["params"]})
    if summary.pareto:
        names = [f"{o['metric']} (last)" for o in summary.pareto["objectives"]]
        shown = [[f"{v:.4f}" for v in r["objectives"]] for r in rows]
    else:
        names = [f"{summary.metric} (best)"]
        shown = [[f"{r['best_metric']:.4f}"] for r in rows]
    header = ["trial", *keys, *names, "epochs"]
    body = [[r["trial_id"], *(short_value(r["params"].get(k)) for k in keys), *values,
             str(r["epochs"]) + ("" if r.get("feasible", True) else " infeasible")]
            for r, values in zip(rows, shown)]
    more = len(summary.table) - len(rows)
    tail = [f"... {more} more trials in results.csv"] if more else []
    return "\n".join([text_table(header, body), *tail])


def text_table(header: list[str], body: list[list[Any]]) -> str:
    """Columns left-aligned to their widest cell, two spaces apart."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(cells, widths))
                     for cells in [header, *body])


def short_value(value: Any) -> str:
    """4 significant digits; '-' for a conditional key the trial did not sample."""
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def format_pareto(pareto: dict[str, Any]) -> str:
    """The Pareto table printed after a search: mean ± std over seeds when reseeded (every
    candidate, each that left the front saying why), else the single-seed values; then the
    front, its hypervolume and the knee, each line saying which values it used."""
    names = [o["metric"] for o in pareto["objectives"]]
    keys = sorted({k for m in pareto["members"] for k in m["params"]})
    front = pareto.get("front", [m["trial_id"] for m in pareto["members"]])
    basis = pareto.get("basis", "last epoch, search seed")
    header = ["trial", *keys, *names]
    body = []
    for member in pareto["members"]:
        reseed = member.get("reseed")
        cells = [member["trial_id"], *(short_value(member["params"].get(k)) for k in keys)]
        for name in names:
            cells.append(f"{reseed['mean'][name]:.4f} ± {reseed['std'][name]:.4f}" if reseed
                         else f"{member[name]:.4f}")
        if reseed is not None and reseed.get("invalid_seeds"):
            cells[-1] += f"  (invalid: NaN at seed {', '.join(map(str, reseed['invalid_seeds']))})"
        elif reseed is not None and not reseed["survives"]:
            cells[-1] += "  (dominated after reseeding)"
        if member["trial_id"] == pareto.get("knee"):
            cells[-1] += "  (knee)"
        body.append(cells)
    lines = [text_table(header, body)]
    reference = ", ".join(f"{k} {v:.3g}" for k, v in pareto["reference_point"].items())
    candidates = f" of {len(body)} reseeded" if len(front) != len(body) else ""
    lines.append(f"Pareto front ({basis}): {len(front)}{candidates} trials; hypervolume "
                 f"{pareto['hypervolume']:.4f} (reference point: {reference})")
    if pareto.get("single_seed_hypervolume") is not None:
        lines.append(f"  before reseeding (last epoch, search seed): hypervolume "
                     f"{pareto['single_seed_hypervolume']:.4f}")
    if pareto.get("constraints"):
        lines.append(f"feasible front: {' and '.join(pareto['constraints'])}; "
                     f"{len(pareto['infeasible'])} full trials infeasible (results.csv: "
                     f"feasible False)")
    if pareto.get("knee"):
        lines.append(f"recommended (knee, {basis}): {pareto['knee']}, closest to the ideal "
                     f"point with each objective scaled between its reference and the front's "
                     f"best; best/best.pt is its checkpoint")
    return "\n".join(lines)
