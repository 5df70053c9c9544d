"""runner's own Tune callbacks, driven with trial stand-ins (their logic, not Tune's)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from spatialsearch import runner


def _trials(finished: int, running: int) -> list:
    return ([SimpleNamespace(status="TERMINATED")] * finished
            + [SimpleNamespace(status="RUNNING")] * running)


def test_report_imports_start_once_the_tail_leaves_a_core_idle(monkeypatch):
    """5 trials on 2 slots: once 4 are finished, at most one runs and a core is free."""
    started = threading.Event()
    calls = []
    monkeypatch.setattr(runner, "_warm_report", lambda: (calls.append(1), started.set()))
    warm = runner.WarmReportInTail(num_samples=5, slots=2)
    completing = SimpleNamespace(status="RUNNING")  # Tune marks it after the callbacks
    warm.on_trial_complete(0, _trials(2, 3), completing)  # 3 done with this one: 2 left
    assert not started.wait(0.2)
    warm.on_trial_error(0, _trials(3, 2), completing)  # 4 done: 1 left
    assert started.wait(5)
    warm.on_trial_complete(0, _trials(4, 1), completing)
    assert calls == [1]


def test_a_search_of_fewer_trials_than_slots_warms_up_at_its_first_end(monkeypatch):
    started = threading.Event()
    monkeypatch.setattr(runner, "_warm_report", started.set)
    warm = runner.WarmReportInTail(num_samples=1, slots=2)
    warm.on_trial_complete(0, _trials(0, 1), SimpleNamespace(status="RUNNING"))
    assert started.wait(5)
