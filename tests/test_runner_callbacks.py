"""runner's own Tune callbacks, driven with trial stand-ins (their logic, not Tune's)."""

from __future__ import annotations

from types import SimpleNamespace

from spatialsearch import runner


def _trials(finished: int, running: int) -> list:
    return ([SimpleNamespace(status="TERMINATED")] * finished
            + [SimpleNamespace(status="RUNNING")] * running)


def test_tail_actions_start_once_the_tail_leaves_a_core_idle():
    """5 trials on 2 slots: once 4 are finished, at most one runs and a core is free."""
    calls = []
    tail = runner.OnTail(num_samples=5, slots=2,
                         actions=[lambda: calls.append("a"), lambda: calls.append("b")])
    completing = SimpleNamespace(status="RUNNING")  # Tune marks it after the callbacks
    tail.on_trial_complete(0, _trials(2, 3), completing)  # 3 done with this one: 2 left
    assert tail.thread is None and calls == []
    tail.on_trial_error(0, _trials(3, 2), completing)  # 4 done: 1 left
    thread = tail.thread
    thread.join(5)
    assert calls == ["a", "b"]  # in order, in one background thread
    tail.on_trial_complete(0, _trials(4, 1), completing)
    assert tail.thread is thread and calls == ["a", "b"]


def test_a_search_of_fewer_trials_than_slots_starts_its_tail_at_its_first_end():
    calls = []
    tail = runner.OnTail(num_samples=1, slots=2, actions=[lambda: calls.append("a")])
    tail.on_trial_complete(0, _trials(0, 1), SimpleNamespace(status="RUNNING"))
    tail.thread.join(5)
    assert calls == ["a"]
