"""Optuna's interactive figures (plotly) of a search's study, as HTML fragments for the report:
the Pareto front (several objectives), parallel coordinates and parameter importances (one
per objective). plotly.js is inlined once by the page (plotly_script), so the report opens
offline and inside MLflow's artifact viewer."""

from __future__ import annotations

import html
import logging
from typing import Any, Callable

_logger = logging.getLogger(__name__)


def plotly_script() -> str:
    from plotly.offline import get_plotlyjs

    return f"<script>{get_plotlyjs()}</script>"


def _fragment(title: str, draw: Callable[[], Any]) -> tuple[str, str]:
    """(title, HTML div of the figure), or a paragraph saying why there is none."""
    try:
        figure = draw()
    except (ValueError, RuntimeError, KeyError, ZeroDivisionError) as error:
        return title, f"<p>not available: {html.escape(str(error).splitlines()[0][:200])}</p>"
    figure.update_layout(height=460, margin={"l": 60, "r": 20, "t": 50, "b": 50})
    return title, figure.to_html(full_html=False, include_plotlyjs=False)


def study_figures(study: Any, names: list[str]) -> list[tuple[str, str]]:
    """Optuna's figures of the study: names are its objectives, in order."""
    import optuna
    import optuna.visualization as vis

    # fANOVA by name: optuna 5's default (PED-ANOVA) gives equal importances below ~20 trials
    evaluator = lambda: optuna.importance.FanovaImportanceEvaluator(seed=0)  # noqa: E731
    figures = []
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    basis = (f"on the {complete} completed trials of {len(study.trials)}; trials stopped early "
             f"or failed are left out")
    if len(names) > 1:
        figures.append(_fragment(f"Pareto front (Optuna, {basis})",
                                 lambda: vis.plot_pareto_front(study, target_names=names)))
    for index, name in enumerate(names):
        target = (lambda t, i=index: t.values[i]) if len(names) > 1 else None
        figures.append(_fragment(f"Parameters vs {name} ({basis})", lambda t=target, n=name:
                                 vis.plot_parallel_coordinate(study, target=t, target_name=n)))
        few = "; too few for reliable importances" if complete < 20 else ""
        figures.append(_fragment(f"Parameter importances for {name} (fANOVA, {basis}{few})",
                                 lambda t=target, n=name: vis.plot_param_importances(
                                     study, evaluator=evaluator(), target=t, target_name=n)))
    return figures
