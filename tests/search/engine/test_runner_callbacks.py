"""The search's own progress callbacks, driven with trial stand-ins (their logic, not Tune's)."""

from __future__ import annotations

from types import SimpleNamespace

from spatialsearch.search.engine import progress


def _trials(finished: int, running: int) -> list:
    return ([SimpleNamespace(status="TERMINATED")] * finished
            + [SimpleNamespace(status="RUNNING")] * running)


def test_tail_actions_start_once_the_tail_leaves_a_core_idle():
    """5 trials on 2 slots: once 4 are finished, at most one runs and a core is free."""
    calls = []
    tail = progress.OnTail(num_samples=5, slots=2,
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
    tail = progress.OnTail(num_samples=1, slots=2, actions=[lambda: calls.append("a")])
    tail.on_trial_complete(0, _trials(0, 1), SimpleNamespace(status="RUNNING"))
    tail.thread.join(5)
    assert calls == ["a"]


def test_the_run_waits_for_its_tail_before_the_analysis_imports_the_same_modules():
    """The tail warms the report's imports (matplotlib) in a thread; the analysis after the
    Tune run imports them too, and two threads importing matplotlib.pyplot at once failed a
    search's analysis ("partially initialized module"). wait() returns once the actions ran;
    without a tail started it returns at once."""
    import threading
    import time

    release, calls = threading.Event(), []

    def slow() -> None:
        release.wait(5)
        time.sleep(0.05)
        calls.append("warmed")

    tail = progress.OnTail(num_samples=1, slots=2, actions=[slow])
    progress.OnTail(num_samples=1, slots=2, actions=[slow]).wait()  # never started
    tail.on_trial_complete(0, _trials(0, 1), SimpleNamespace(status="RUNNING"))
    assert calls == []
    release.set()
    tail.wait()
    assert calls == ["warmed"] and not tail.thread.is_alive()


def test_trial_lines_count_ended_trials_and_keep_the_best_so_far(caplog):
    lines = progress.TrialLines("val_accuracy", "max", total=3)
    first, second = SimpleNamespace(trial_id="a"), SimpleNamespace(trial_id="b")
    for epoch, value in ((1, 0.5), (2, 0.9), (3, 0.7)):  # a trial's best, not its last
        lines.on_trial_result(0, [], first, {"val_accuracy": value, "epoch": epoch,
                                             "time_total_s": 1.25})
    lines.on_trial_result(0, [], second, {"val_accuracy": 0.8, "epoch": 1,
                                          "time_total_s": 0.5})
    with caplog.at_level("INFO", logger="spatialsearch.search.engine.progress"):
        lines.on_trial_complete(0, _trials(0, 2), first)
        lines.on_trial_complete(0, _trials(1, 1), second)
        lines.on_trial_error(0, _trials(2, 1), SimpleNamespace(trial_id="c"))
    assert caplog.messages == [
        "[1/3] trial a done: val_accuracy 0.9000 after 3 epochs (1.2 s); best a 0.9000",
        "[2/3] trial b done: val_accuracy 0.8000 after 1 epochs (0.5 s); best a 0.9000",
        "[3/3] trial c failed (see its MLflow run's spatialsearch.failure tag)"]


def test_trial_lines_best_is_the_lowest_when_the_mode_is_min(caplog):
    lines = progress.TrialLines("val_loss", "min", total=2)
    for trial_id, value in (("a", 0.3), ("b", 0.2)):
        lines.on_trial_result(0, [], SimpleNamespace(trial_id=trial_id),
                              {"val_loss": value, "epoch": 1})
    with caplog.at_level("INFO", logger="spatialsearch.search.engine.progress"):
        lines.on_trial_complete(0, _trials(0, 2), SimpleNamespace(trial_id="a"))
        lines.on_trial_complete(0, _trials(1, 1), SimpleNamespace(trial_id="b"))
    assert caplog.messages[-1].endswith("; best b 0.2000")
