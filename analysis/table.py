"""The report's trials table: one column per searched parameter (4 significant digits), the
metric, segregation, other objectives and epochs; sortable by clicking a header (a few lines
of script, numbers compared as numbers)."""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

import numpy as np

SORT_SCRIPT = """<script>
function sortTable(header) {
  const table = header.closest("table"), column = header.cellIndex;
  const rows = Array.from(table.tBodies[0].rows);
  const ascending = header.dataset.order !== "asc";
  const key = row => {
    const cell = row.cells[column], text = cell.dataset.value || cell.textContent;
    const number = parseFloat(text);
    return isNaN(number) ? text : number;
  };
  rows.sort((a, b) => { const x = key(a), y = key(b);
                        return (x > y ? 1 : x < y ? -1 : 0) * (ascending ? 1 : -1); });
  rows.forEach(row => table.tBodies[0].appendChild(row));
  header.dataset.order = ascending ? "asc" : "desc";
}
</script>"""


def significant(value: Any) -> str:
    """4 significant digits for floats; '-' for a conditional key the trial did not sample."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _cell(value: Any) -> str:
    raw = value if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    return f'<td data-value="{raw}">{significant(value)}</td>'


def trials_table(trials: Sequence[Any], seg: np.ndarray, metric: str,
                 other_objectives: Sequence[str]) -> str:
    """HTML table of report.TrialRecord rows (best first) with the click-to-sort script."""
    keys = sorted({k for t in trials for k in t.params})
    header = ["trial", *keys, f"best {metric}", *[f"last {n}" for n in other_objectives],
              "segregation (best checkpoint)", "epochs"]
    head = "".join(f'<th class="sortable" onclick="sortTable(this)">{html.escape(h)}</th>'
                   for h in header)
    body = []
    for trial, s in zip(trials, seg):
        others = list(trial.objectives[1:1 + len(other_objectives)])
        others += [float("nan")] * (len(other_objectives) - len(others))
        cells = [f"<td>{html.escape(trial.trial_id)}</td>",
                 *(_cell(trial.params.get(k)) for k in keys), _cell(float(trial.best)),
                 *(_cell(float(v)) for v in others), _cell(float(s)),
                 _cell(len(trial.values))]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f"{SORT_SCRIPT}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
