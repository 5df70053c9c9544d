"""The report's static figures (matplotlib, PNG, inlined as base64): the Pareto front with
reseed error bars, the hypervolume history, accuracy vs segregation, learning curves."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spatialsearch.checkpoint import load_checkpoint, load_model
from spatialsearch.errors import CheckpointError
from spatialsearch.segregation import segregation


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    """Lay out, write as PNG and close a figure."""
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot().close(figure)
    return path


def image(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def checkpoint_segregation(path: str) -> float:
    """Segregation of a trial's best checkpoint; NaN without one."""
    if not path or not Path(path).is_file():
        return float("nan")
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError:
        return float("nan")
    data = checkpoint.config.data
    return segregation(load_model(checkpoint).spatial_layers, data.num_tasks, data.labels).mean


def front_with_spread(trials: Sequence[Any], pareto: dict[str, Any], path: Path) -> Path:
    """Every full trial (grey; those failing a constraint as orange crosses) on the first two
    objectives, the front (red) with mean ± std error bars over its reseeded runs where there
    are some, and the knee (a star)."""
    plt = pyplot()
    names = [o["metric"] for o in pareto["objectives"]][:2]
    figure, axis = plt.subplots(figsize=(6.5, 4.8))
    infeasible = set(pareto.get("infeasible", ()))
    longest = max((u.epochs for u in trials), default=0)
    for apart in (False, True):
        full = np.array([t.objectives[:2] for t in trials if len(t.objectives) >= 2
                         and t.epochs == longest and (t.trial_id in infeasible) == apart],
                        dtype=float)
        if len(full) and apart:
            axis.scatter(full[:, 0], full[:, 1], color="#ff7f0e", marker="x", s=20,
                         label=f"infeasible ({' and '.join(pareto.get('constraints', []))})")
        elif len(full):
            axis.scatter(full[:, 0], full[:, 1], color="#999999", s=14, label="full trial")
    members = pareto["members"]
    at = np.array([[m[n] for n in names] for m in members], dtype=float)
    order = np.argsort(at[:, 0]) if len(at) else []
    axis.plot(at[order, 0], at[order, 1], "-o", color="#d62728", label="Pareto front")
    for member in members:
        spread = member.get("reseed")
        if spread:
            axis.errorbar(spread["mean"][names[0]], spread["mean"][names[1]],
                          xerr=spread["std"][names[0]], yerr=spread["std"][names[1]],
                          fmt="s", color="#1f77b4", capsize=3)
        axis.annotate(member["trial_id"], (member[names[0]], member[names[1]]), fontsize=7,
                      textcoords="offset points", xytext=(4, 4))
    knee = next((m for m in members if m["trial_id"] == pareto.get("knee")), None)
    if knee is not None:
        axis.scatter([knee[names[0]]], [knee[names[1]]], marker="*", s=220, color="#ffbf00",
                     edgecolor="black", zorder=5, label="knee (recommended)")
    if any(m.get("reseed") for m in members):
        axis.errorbar([], [], fmt="s", color="#1f77b4", label="mean ± std over seeds")
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    axis.set_title("Pareto front (last epoch of full trials)", fontsize=10)
    axis.legend(fontsize=8)
    return _save(figure, path)


def hypervolume_history(pareto: dict[str, Any], path: Path) -> Path:
    """The front's hypervolume against the search's wall time, one step per full trial."""
    plt = pyplot()
    history = pareto["history"]
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.step([h["seconds"] for h in history], [h["hypervolume"] for h in history],
              where="post", color="#2ca02c")
    axis.set_xlabel("seconds since the search started")
    axis.set_ylabel("hypervolume")
    axis.set_title(f"hypervolume as full trials ended ({len(history)} trials)", fontsize=10)
    return _save(figure, path)


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both x and y (both maximised), by x."""
    from spatialsearch.pareto import oriented, pareto_indices

    keep = pareto_indices(oriented(np.column_stack([x, y]), ["max", "max"]))
    return np.array(sorted(keep, key=lambda i: x[i]), dtype=int)


def tradeoff(trials: Sequence[Any], seg: np.ndarray, metric: str, path: Path) -> Path:
    """Best metric vs the best checkpoint's segregation, with their Pareto front."""
    plt = pyplot()
    best = np.array([t.best for t in trials])
    ok = np.isfinite(seg) & np.isfinite(best)
    figure, axis = plt.subplots(figsize=(6, 4.5))
    axis.scatter(best[ok], seg[ok], color="#1f77b4", label="trial (best checkpoint)")
    if ok.sum():
        front = np.flatnonzero(ok)[pareto_front(best[ok], seg[ok])]
        axis.plot(best[front], seg[front], "-o", color="#d62728", label="Pareto front")
        for i in front:
            axis.annotate(trials[i].trial_id, (best[i], seg[i]), fontsize=7,
                          textcoords="offset points", xytext=(4, 4))
    axis.set_xlabel(metric)
    axis.set_ylabel("segregation (mean of hidden layers)")
    axis.set_title(f"{metric} vs segregation", fontsize=10)
    axis.legend(fontsize=8)
    return _save(figure, path)


def curves(trials: Sequence[Any], metric: str, path: Path) -> Path:
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for trial in trials:
        axis.plot(range(1, len(trial.values) + 1), trial.values, label=trial.trial_id)
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.set_title(f"learning curves of the top {len(trials)} trials", fontsize=10)
    axis.legend(fontsize=8)
    return _save(figure, path)
