"""The results table printed after a search."""

from __future__ import annotations

from spatialsearch.cli.tables import format_table
from spatialsearch.search.outcome.files import SearchSummary


def _summary(trials: int) -> SearchSummary:
    table = [{"trial_id": f"t{i:03d}", "params": {"lr": 0.01 * (i + 1), "norm": "l1"},
              "best_metric": 1 - i / 1000, "epochs": 50 - i % 3} for i in range(trials)]
    return SearchSummary(search="s", metric="val_accuracy", mode="max", objectives=[],
                         trials=trials, errored=0, stopped_early=0, best=None, table=table,
                         mlflow={})


def test_table_shows_the_best_trials_then_how_many_more_results_csv_holds():
    lines = format_table(_summary(25), top=20).splitlines()
    assert lines[0].split() == ["trial", "lr", "norm", "val_accuracy", "(best)", "epochs"]
    assert lines[1].split() == ["t000", "0.01", "l1", "1.0000", "50"]
    assert [line.split()[0] for line in lines[1:21]] == [f"t{i:03d}" for i in range(20)]
    assert lines[21] == "... 5 more trials in results.csv" and len(lines) == 22


def test_a_small_search_is_shown_whole_and_an_empty_one_says_so():
    assert len(format_table(_summary(3)).splitlines()) == 4
    assert format_table(_summary(0)) == "no trial finished"


def test_a_pareto_search_shows_every_objective_at_the_last_epoch_in_rank_order():
    """Segregation was missing: the table showed the first objective's best epoch only."""
    summary = _summary(3)
    for i, row in enumerate(summary.table):
        row["objectives"] = (0.9 - i / 10, 0.5 + i / 10)
    summary.pareto = {"objectives": [{"metric": "val_accuracy", "mode": "max"},
                                     {"metric": "segregation", "mode": "max"}]}
    lines = format_table(summary).splitlines()
    assert lines[0].split() == ["trial", "lr", "norm", "val_accuracy", "(last)", "segregation",
                                "(last)", "epochs"]
    assert lines[2].split() == ["t001", "0.02", "l1", "0.8000", "0.6000", "49"]
