"""plot: neurons at their 2-D positions, coloured by preferred task, intensity by selectivity.

What it does: docs/reference.md, model 7.
Preference and selectivity come from a recording when given: for neuron n,
a_t = the variance of its output over task t's samples (record.task_drive), preferred =
argmax_t a_t, selectivity = max(0, a_pref - max_{t != pref} a_t) / max_t a_t in [0, 1]. Without
a recording, from the weights: a_t = S_t, the greedy connection mass (segregation.task_mass);
head neuron j always prefers task j // C. Connections (optional) are lines from the previous
layer's neurons with alpha proportional to |w| (strongest 300 only). Positions of all layers
share one space (transport measures distances across layers), so the axes are shared too.
One PNG per layer (layer_<k>.png) and one grid of all layers (layers.png). Headless (Agg).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.context import AnalysisContext
from analysis.record import Recording, task_drive
from spatialsearch.segregation import connection_mass, task_mass

TASK_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
                "#17becf", "#bcbd22", "#7f7f7f"]
MAX_LINES = 300


def preferences(context: AnalysisContext, recording: Recording | None = None
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per spatial layer k = 0..L: (preferred task (n_k,), selectivity (n_k,) in [0, 1])."""
    layers = context.model.spatial_layers
    tasks, labels = context.num_tasks, context.config.data.labels
    if recording is not None:
        drive = task_drive(recording)
    else:
        drive = [m.cpu().double().numpy() for m in task_mass(layers, tasks, labels)]
        head = np.zeros((tasks, layers[-1].num_neurons))
        head[np.arange(layers[-1].num_neurons) // labels, np.arange(layers[-1].num_neurons)] = 1
        drive.append(head)
    result = []
    for a in drive:
        preferred = a.argmax(0)
        top = a.max(0)
        others = np.where(np.arange(len(a))[:, None] == preferred[None, :], -np.inf, a)
        second = others.max(0) if len(a) > 1 else np.zeros_like(top)
        selectivity = np.clip((top - second) / np.maximum(top, 1e-12), 0, 1)
        result.append((preferred, selectivity))
    return result


def _draw_layer(axis, context: AnalysisContext, k: int, preferred: np.ndarray,
                selectivity: np.ndarray, connections: bool, limits) -> None:
    from matplotlib.colors import to_rgba

    layers = context.model.spatial_layers
    positions = layers[k].positions.detach().cpu().numpy()
    if connections and k > 0:
        previous = layers[k - 1].positions.detach().cpu().numpy()
        strength = connection_mass(layers[k]).cpu().numpy()  # (n_k, n_{k-1})
        flat = np.argsort(strength, axis=None)[::-1][:MAX_LINES]
        peak = strength.max() or 1.0
        for index in flat:
            i, j = np.unravel_index(index, strength.shape)
            axis.plot([previous[j, 0], positions[i, 0]], [previous[j, 1], positions[i, 1]],
                      color="grey", alpha=float(0.6 * strength[i, j] / peak), lw=0.6, zorder=1)
    colours = [to_rgba(TASK_COLOURS[t % len(TASK_COLOURS)], 0.15 + 0.85 * s)
               for t, s in zip(preferred, selectivity)]
    axis.scatter(positions[:, 0], positions[:, 1], c=colours, s=28, edgecolors="black",
                 linewidths=0.3, zorder=2)
    name = "head" if k == len(layers) - 1 else f"hidden {k}"
    axis.set_title(f"layer {k} ({name}, {len(positions)} neurons)", fontsize=9)
    axis.set_xlabel("position x")
    axis.set_ylabel("position y")
    axis.set_xlim(*limits[0])
    axis.set_ylim(*limits[1])
    axis.set_aspect("equal", adjustable="box")


def _legend(figure, tasks: int, source: str) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", color=TASK_COLOURS[t % len(TASK_COLOURS)],
                      label=f"task {t}") for t in range(tasks)]
    figure.legend(handles=handles, loc="upper right", fontsize=8,
                  title=f"preferred task\n(opacity: selectivity,\nfrom {source})",
                  title_fontsize=7)


def plot_positions(context: AnalysisContext, folder: Path, recording: Recording | None = None,
                   connections: bool = False, title: str = "") -> list[Path]:
    """layer_<k>.png for every spatial layer and layers.png with all of them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    layers = context.model.spatial_layers
    prefs = preferences(context, recording)
    every = np.concatenate([layer.positions.detach().cpu().numpy() for layer in layers])
    pad = 0.1 * (every.max(0) - every.min(0) + 1e-9)
    limits = list(zip(every.min(0)[:2] - pad[:2], every.max(0)[:2] + pad[:2]))
    source = "recording" if recording is not None else "weights"
    heading = title or f"{context.path.name}: neuron positions"
    paths = []
    for k, (preferred, selectivity) in enumerate(prefs):
        figure, axis = plt.subplots(figsize=(5.2, 4.6))
        _draw_layer(axis, context, k, preferred, selectivity, connections, limits)
        _legend(figure, context.num_tasks, source)
        figure.suptitle(heading, fontsize=9)
        figure.tight_layout(rect=(0, 0, 0.8, 1))
        path = folder / f"layer_{k}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    figure, axes = plt.subplots(1, len(layers), figsize=(3.6 * len(layers) + 1.6, 4.0))
    for k, (axis, (preferred, selectivity)) in enumerate(zip(np.atleast_1d(axes), prefs)):
        _draw_layer(axis, context, k, preferred, selectivity, connections, limits)
    _legend(figure, context.num_tasks, source)
    figure.suptitle(heading, fontsize=10)
    figure.tight_layout(rect=(0, 0, 1 - 1.4 / (3.6 * len(layers) + 1.6), 0.95))
    grid = folder / "layers.png"
    figure.savefig(grid, dpi=110)
    plt.close(figure)
    return [*paths, grid]
