"""score: accuracy of every split network on every task, and neurons per task per layer.

M[i, j] = accuracy on task j of the subnetwork cut for task i (split.py), on the validation
split unless told otherwise. For the task-free `positions` method, rows are regions of space:
they are matched to tasks by the assignment that maximises the diagonal
(positions_split.matched_order), and the matched order is reported. Outputs:
score_<method>.csv (the matrix, its diagonal and off-diagonal means, neurons per task per
layer) and score_<method>.png (heatmap).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import numpy as np

from analysis.context import AnalysisContext
from analysis.split import Split
from spatialsearch.evaluation import evaluate
from spatialsearch.positions_split import matched_order


class Score(NamedTuple):
    method: str
    matrix: np.ndarray  # (T, T): row = subnetwork (matched to a task), column = task
    row_order: list[int]  # which split network stands in each row
    neurons: np.ndarray  # (T, L): kept neuron mass per task per hidden layer, as a fraction

    @property
    def diagonal(self) -> float:
        return float(np.mean(np.diag(self.matrix)))

    @property
    def off_diagonal(self) -> float:
        t = len(self.matrix)
        if t < 2:
            return float("nan")
        return float((self.matrix.sum() - np.trace(self.matrix)) / (t * t - t))


def score(context: AnalysisContext, result: Split, split_name: str = "validation") -> Score:
    batches = context.batches(split_name)
    rows = np.array([evaluate(network, batches).task_accuracy for network in result.networks])
    order = list(range(len(rows)))
    if result.method == "positions":
        order = matched_order(rows)
        rows = rows[order]
    sizes = np.array([layer.num_neurons for layer in context.model.spatial_layers[:-1]])
    neurons = np.array([[float(m.sum()) for m in result.masks[i]] for i in order]) / sizes
    return Score(result.method, rows, order, neurons)


def save_score(result: Score, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / f"score_{result.method}.csv"
    tasks = len(result.matrix)
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["subnetwork", *(f"task{j}" for j in range(tasks)),
                         *(f"neurons_layer{k}" for k in range(result.neurons.shape[1]))])
        for i in range(tasks):
            writer.writerow([f"task{i} (split {result.row_order[i]})",
                             *(f"{a:.4f}" for a in result.matrix[i]),
                             *(f"{f:.3f}" for f in result.neurons[i])])
        writer.writerow(["diagonal_mean", f"{result.diagonal:.4f}"])
        writer.writerow(["off_diagonal_mean", f"{result.off_diagonal:.4f}"])
    return table, heatmap(result, folder / f"score_{result.method}.png")


def heatmap(result: Score, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = len(result.matrix)
    figure, axis = plt.subplots(figsize=(1.6 * tasks + 2.4, 1.4 * tasks + 1.8))
    image = axis.imshow(result.matrix, vmin=0, vmax=1, cmap="viridis")
    for i in range(tasks):
        for j in range(tasks):
            value = result.matrix[i, j]
            axis.text(j, i, f"{value:.2f}", ha="center", va="center",
                      color="black" if value > 0.6 else "white", fontsize=12)
    axis.set_xticks(range(tasks), [f"task {j}" for j in range(tasks)])
    axis.set_yticks(range(tasks), [f"subnet {i}" for i in range(tasks)])
    axis.set_xlabel("evaluated on")
    axis.set_ylabel("subnetwork cut for")
    axis.set_title(f"split '{result.method}': diagonal {result.diagonal:.2f}, "
                   f"off-diagonal {result.off_diagonal:.2f}", fontsize=10)
    figure.colorbar(image, ax=axis, label="accuracy")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
