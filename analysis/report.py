"""The search report: one self-contained HTML page (PNGs inlined) about a finished search.

Sections: parallel coordinates of the searched parameters vs the metric; parameter importances
(Optuna's fANOVA evaluator, named: optuna 5's default is PED-ANOVA, on the search's study
(spatialsearch.study, the same trials as optuna.db), over completed trials); accuracy vs
segregation of every trial with its Pareto front (the trade-off of the paper: segregation is
computed here from each trial's best checkpoint, because trials that the scheduler stops early
never report it); learning curves of the top trials; the position plots of the analysed best
trials. Written as <search folder>/report/report.html + its PNGs.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from spatialsearch.checkpoint import load_checkpoint, load_model
from spatialsearch.errors import CheckpointError
from spatialsearch.segregation import segregation

_logger = logging.getLogger(__name__)
TOP = 5


class TrialRecord(NamedTuple):
    trial_id: str
    params: dict[str, Any]  # searched parameters
    values: tuple[float, ...]  # the metric per epoch
    best: float  # best value of the metric
    checkpoint: str  # its best.pt ("" if none)


def warm_up() -> None:
    """Import what build_report needs (matplotlib, optuna's fANOVA and thus scikit-learn:
    ~2 s); run_search calls it in a background thread while the trials run."""
    import optuna.importance  # noqa: F401

    _pyplot()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    """Lay out, write as PNG and close a figure."""
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    _pyplot().close(figure)
    return path


def _checkpoint_segregation(path: str) -> float:
    if not path or not Path(path).is_file():
        return float("nan")
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError:
        return float("nan")
    data = checkpoint.config.data
    return segregation(load_model(checkpoint).spatial_layers, data.num_tasks, data.labels).mean


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of points no other point beats on both x and y (both maximised), by x."""
    keep = [i for i in range(len(x)) if not np.any((x >= x[i]) & (y >= y[i]) &
                                                   ((x > x[i]) | (y > y[i])))]
    return np.array(sorted(keep, key=lambda i: x[i]), dtype=int)


def _parallel(trials: list[TrialRecord], metric: str, log_params: set[str], path: Path) -> Path:
    plt = _pyplot()
    names = sorted({k for t in trials for k in t.params})
    columns = []
    labels = []
    for name in names:
        raw = [t.params.get(name) for t in trials]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            values = np.array(raw, dtype=float)
            if name in log_params:
                values = np.log10(values)
            low, high = values.min(), values.max()
            columns.append((values - low) / (high - low or 1.0))
            labels.append(f"{name}{' (log)' if name in log_params else ''}\n"
                          f"{raw[int(np.argmin(values))]:.3g}..{raw[int(np.argmax(values))]:.3g}")
        else:
            categories = sorted({str(v) for v in raw})
            index = {c: i for i, c in enumerate(categories)}
            columns.append(np.array([index[str(v)] for v in raw], float) /
                           max(len(categories) - 1, 1))
            labels.append(f"{name}\n{' | '.join(categories)}")
    scores = np.array([t.best for t in trials])
    columns.append((scores - np.nanmin(scores)) / ((np.nanmax(scores) - np.nanmin(scores)) or 1))
    labels.append(f"{metric}\n{np.nanmin(scores):.3f}..{np.nanmax(scores):.3f}")
    figure, axis = plt.subplots(figsize=(1.9 * len(columns) + 1.5, 4.2))
    colours = plt.cm.viridis(columns[-1])
    for i in np.argsort(scores):
        axis.plot(range(len(columns)), [c[i] for c in columns], color=colours[i], alpha=0.8)
    axis.set_xticks(range(len(columns)), labels, fontsize=8)
    axis.set_yticks([])
    axis.set_title(f"searched parameters vs {metric} (colour: {metric})", fontsize=10)
    return _save(figure, path)


def _importances(study: Any, path: Path) -> tuple[Path | None, str]:
    import optuna

    try:
        # fANOVA by name: optuna 5's default (PED-ANOVA) gives equal importances below ~20
        # trials, the size of a quick search
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError, KeyError) as error:
        return None, f"importances not available: {error}"
    plt = _pyplot()
    names = list(importances)[::-1]
    figure, axis = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5))
    axis.barh(names, [importances[n] for n in names], color="#1f77b4")
    axis.set_xlabel("importance (fANOVA, completed trials)")
    axis.set_title("parameter importances", fontsize=10)
    return _save(figure, path), ""


def _tradeoff(trials: list[TrialRecord], seg: np.ndarray, metric: str, path: Path) -> Path:
    plt = _pyplot()
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


def _curves(trials: list[TrialRecord], metric: str, path: Path) -> Path:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.2))
    for trial in trials[:TOP]:
        axis.plot(range(1, len(trial.values) + 1), trial.values, label=trial.trial_id)
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric)
    axis.set_title(f"learning curves of the top {min(TOP, len(trials))} trials", fontsize=10)
    axis.legend(fontsize=8)
    return _save(figure, path)


def _img(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def build_report(name: str, metric: str, trials: list[TrialRecord], out: Path, *,
                 log_params: set[str], study: Any,
                 analysis_folders: list[Path]) -> Path:
    """Write out/report.html (+ PNGs); trials ranked best first. study: the search as an
    optuna.Study (for parameter importances) or None."""
    out.mkdir(parents=True, exist_ok=True)
    seg = np.array([_checkpoint_segregation(t.checkpoint) for t in trials])
    importance, note = (None, "no Optuna study")
    if study is not None:
        importance, note = _importances(study, out / "importances.png")
    rows = "".join(
        f"<tr><td>{html.escape(t.trial_id)}</td><td>{t.best:.4f}</td><td>{s:.3f}</td>"
        f"<td>{len(t.values)}</td><td>{html.escape(str(t.params))}</td></tr>"
        for t, s in zip(trials, seg))
    best_plots = "".join(f"<h3>{html.escape(f.name)}</h3>{_img(f / 'positions' / 'layers.png')}"
                         for f in analysis_folders)
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>spatialsearch report: {html.escape(name)}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}} img{{max-width:100%}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}
</style></head><body>
<h1>Search {html.escape(name)}: {len(trials)} trials</h1>
<h2>Trials</h2><table><tr><th>trial</th><th>{html.escape(metric)}</th><th>segregation</th>
<th>epochs</th><th>parameters</th></tr>{rows}</table>
<h2>Parameters vs {html.escape(metric)}</h2>
{_img(_parallel(trials, metric, log_params, out / "parallel.png"))}
<h2>Parameter importances</h2>{_img(importance)}<p>{html.escape(note)}</p>
<h2>{html.escape(metric)} vs segregation</h2>
{_img(_tradeoff(trials, seg, metric, out / "tradeoff.png"))}
<h2>Learning curves</h2>{_img(_curves(trials, metric, out / "curves.png"))}
<h2>Best trials' neuron positions</h2>{best_plots or "<p>no trial analysed</p>"}
</body></html>"""
    report = out / "report.html"
    report.write_text(page)
    return report
