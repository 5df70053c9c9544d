"""search/outcome/rows.py: one row per trial, however often Tune's results list it."""

from __future__ import annotations

import logging

from spatialsearch.search.outcome.rows import TrialRow, once_each


def _row(trial_id: str, epochs: int, status: str = "TERMINATED", ended_at: float = 0.0):
    return TrialRow(trial_id, status, {"lr": 0.01}, 0.9, epochs, "", (0.9,), (0.9,),
                    ended_at=ended_at)


def test_a_trial_listed_twice_counts_once_as_its_furthest_row(caplog):
    rows = [_row("b", 40), _row("a", 12), _row("b", 40, ended_at=9.0), _row("c", 8),
            _row("a", 40, status="ERROR"), _row("a", 40)]
    with caplog.at_level(logging.WARNING, logger="spatialsearch.search.outcome.rows"):
        kept = once_each(rows)
    assert [(r.trial_id, r.epochs, r.status, r.ended_at) for r in kept] == [
        ("b", 40, "TERMINATED", 9.0), ("a", 40, "TERMINATED", 0.0), ("c", 8, "TERMINATED", 0.0)]
    assert [r.getMessage() for r in caplog.records] == [
        "trial b is listed twice in Tune's results; counted once",
        "trial a is listed twice in Tune's results; counted once",
        "trial a is listed twice in Tune's results; counted once"]


def test_distinct_trials_pass_unchanged():
    rows = [_row("x", 3), _row("y", 5)]
    assert once_each(rows) == rows
