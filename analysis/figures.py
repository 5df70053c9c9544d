"""The report's static figures (matplotlib, PNG, inlined as base64): the Pareto front with
reseed error bars, the hypervolume history, accuracy vs segregation, learning curves."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from spatialsearch import metrics as m
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


def clipped_error(mean: float, std: float, metric: str) -> tuple[float, float]:
    """(below, above) error-bar lengths of mean ± std, clipped to the metric's range."""
    low, high = m.value_range(metric)
    return max(0.0, min(std, mean - low)), max(0.0, min(std, high - mean))


def place_labels(axis: Any, points: np.ndarray, texts: Sequence[str],
                 fontsize: float = 7.0) -> None:
    """Annotate each point with its text at the first of several offsets (in points: right,
    above, left, below, then further out) whose box overlaps no label placed before it and
    no other point; the last tried when none is free. Boxes are estimated from the text's
    length (0.6 em per character)."""
    axis.autoscale_view()
    to_pixels = axis.transData.transform
    dpi_scale = axis.figure.dpi / 72.0
    placed: list[tuple[float, float, float, float]] = []
    marks = to_pixels(points) if len(points) else np.zeros((0, 2))
    offsets = [(dx * r, dy * r) for r in (1, 2, 3) for dx, dy in
               ((5, 4), (5, -10), (-5, 4), (-5, -10), (0, 9), (0, -16))]
    for (x, y), data, text in zip(marks, points, texts):
        width = 0.6 * fontsize * len(text) * dpi_scale
        height = 1.2 * fontsize * dpi_scale
        for dx, dy in offsets:
            left = x + dx * dpi_scale - (width if dx < 0 else 0)
            bottom = y + dy * dpi_scale
            box = (left, bottom, left + width, bottom + height)
            free = all(box[2] < o[0] or box[0] > o[2] or box[3] < o[1] or box[1] > o[3]
                       for o in placed)
            free &= not any(box[0] - 3 <= px <= box[2] + 3 and box[1] - 3 <= py <= box[3] + 3
                            for px, py in marks)
            if free:
                break
        placed.append(box)
        axis.annotate(text, tuple(data), xytext=(dx, dy), textcoords="offset points",
                      fontsize=fontsize,
                      ha="right" if dx < 0 else "left",
                      arrowprops={"arrowstyle": "-", "color": "#777777", "lw": 0.5}
                      if abs(dx) > 5 or abs(dy) > 10 else None)


def front_with_spread(trials: Sequence[Any], pareto: dict[str, Any], path: Path) -> Path:
    """Every full trial (grey; those failing a constraint as orange crosses) on the first two
    objectives at its last epoch; the front's members at the values the front was decided on
    (reseeded: the mean over seeds, with ± std error bars clipped to each metric's range;
    candidates that left the front hollow), joined in red; the knee (a star); trial labels
    placed where they overlap no other label or point."""
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
            axis.scatter(full[:, 0], full[:, 1], color="#bbbbbb", s=14,
                         label="full trial (search seed)")
    members = pareto["members"]
    front = set(pareto.get("front", [member["trial_id"] for member in members]))

    def shown(member: dict[str, Any]) -> list[float]:
        spread = member.get("reseed")
        return [spread["mean"][n] if spread else member[n] for n in names]

    at = np.array([shown(member) for member in members], dtype=float).reshape(len(members), 2)
    on = np.array([member["trial_id"] in front for member in members], dtype=bool)
    line = at[on][np.argsort(at[on][:, 0])]
    basis = pareto.get("basis", "last epoch, search seed")
    axis.plot(line[:, 0], line[:, 1], "-", color="#d62728", lw=1.2,
              label=f"Pareto front ({basis})")
    for member, point, kept in zip(members, at, on):
        spread = member.get("reseed")
        errors = [clipped_error(point[i], spread["std"][n], n) if spread else (0.0, 0.0)
                  for i, n in enumerate(names)]
        axis.errorbar(point[0], point[1], xerr=[[errors[0][0]], [errors[0][1]]],
                      yerr=[[errors[1][0]], [errors[1][1]]], fmt="o", ms=6, capsize=3,
                      color="#d62728" if kept else "#555555",
                      mfc="#d62728" if kept else "none", zorder=4)
    if len(members) and not on.all():
        axis.errorbar([], [], fmt="o", mfc="none", color="#555555",
                      label="left the front after reseeding")
    knee = next((p for member, p in zip(members, at)
                 if member["trial_id"] == pareto.get("knee")), None)
    if knee is not None:
        axis.scatter([knee[0]], [knee[1]], marker="*", s=260, color="#ffbf00",
                     edgecolor="black", zorder=5, label="knee (recommended)")
    place_labels(axis, at, [member["trial_id"] for member in members])
    axis.set_xlabel(names[0])
    axis.set_ylabel(names[1])
    reseeded = any(member.get("reseed") for member in members)
    axis.set_title("Pareto front: " + ("mean ± std over seeds (bars clipped to each "
                                       "metric's range)" if reseeded else
                                       "last epoch of full trials"), fontsize=10)
    axis.legend(fontsize=7)
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
