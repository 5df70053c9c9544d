"""analyze: record -> plot -> split -> score for one checkpoint, into one folder.

    <out>/recording.npz            analysis.record layout
    <out>/positions/layer_<k>.png  analysis.plot (from the recording), layers.png = all layers
    <out>/splits/                  split_<method>_task<t>.pt + assignment_<method>.json
    <out>/score_<method>.csv/.png  analysis.score
    <out>/analysis.json            segregation per layer, every method's score matrix
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from analysis.context import AnalysisContext, open_checkpoint
from analysis.methods import METHODS, check_method
from analysis.plot import plot_positions
from analysis.record import record, save_recording
from analysis.score import save_score, score
from analysis.split import save_split, split
from spatialsearch import metrics as m
from spatialsearch.evaluation import active_neurons
from spatialsearch.segregation import segregation


def describe(context: AnalysisContext, segregation_mean: float) -> str:
    """One-line plot title: the costs, the accuracy and the segregation of a checkpoint."""
    cost = context.config.cost
    accuracy = context.checkpoint.metrics.get(m.VAL_ACCURACY, float("nan"))
    return (f"{context.path.parent.name}/{context.path.name}: proximity α={cost.proximity:g}, "
            f"transport β={cost.transport:g} ({cost.norm}); val. accuracy {accuracy:.3f}, "
            f"segregation {segregation_mean:.2f}")


def analyze(checkpoint: str | Path, out: Path, methods: Sequence[str] = METHODS,
            split_name: str = "validation", connections: bool = False, seed: int = 0,
            progress: bool = False) -> dict:
    """Run every step; returns (and writes) analysis.json's content.

    Raises:
        ConfigError: an unknown method. CheckpointError / DataError: as open_checkpoint.
    """
    chosen = [check_method(m) for m in methods]
    context = open_checkpoint(checkpoint)
    recording = record(context, split_name, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    save_recording(recording, out / "recording.npz")
    config = context.config.data
    seg = segregation(context.model.spatial_layers, config.num_tasks, config.labels,
                      active=active_neurons(context.model, context.batches("validation")))
    plot_positions(context, out / "positions", recording, connections=connections,
                   title=describe(context, seg.mean))
    report: dict = {
        "checkpoint": str(checkpoint), "split": split_name,
        "segregation": {"mean": seg.mean, "per_layer": seg.per_layer, "at_chance": seg.at_chance,
                        "task_balance": seg.balance},
        "scores": {},
    }
    from tqdm import tqdm

    for method in tqdm(chosen, desc="split+score", disable=not progress):
        result = split(context, method, recording, seed)
        save_split(result, context, out / "splits")
        scored = score(context, result, split_name)
        save_score(scored, out)
        report["scores"][method] = {
            "matrix": scored.matrix.round(4).tolist(), "diagonal": scored.diagonal,
            "off_diagonal": scored.off_diagonal, "rows": scored.row_order,
            "neurons": scored.neurons.round(4).tolist()}
    (out / "analysis.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
