"""MO-ASHA's rung rule (moasha.continues, rung_scores) without a Tune run: with one objective
it decides exactly as Ray's own AsyncHyperBandScheduler bracket on the same scripted streams;
with several, ties are not decided by arrival; an invalid vector never goes ahead; and the
state a decision depends on survives a save/restore (what --resume does)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers.async_hyperband import _Bracket

from spatialsearch.search.engine.moasha import MultiObjectiveASHA, continues, rung_scores

MAX_T, GRACE = 50, 5  # rungs 5, 10, 20, 40 (none at max_t: Ray's would decide at the end)


def _stream(rng: np.random.Generator, trials: int, interleave: bool) -> list[tuple[str, int]]:
    """(trial, epoch) in the order results arrive: one trial after another, or round-robin
    over groups of 4 running at once."""
    names = [f"t{i}" for i in range(trials)]
    if not interleave:
        return [(name, epoch) for name in names for epoch in range(1, MAX_T + 1)]
    order = []
    for start in range(0, trials, 4):
        group = names[start:start + 4]
        order += [(name, epoch) for epoch in range(1, MAX_T + 1) for name in group]
    return order


def _decisions(decide, stream, value) -> dict[str, int]:
    """The epoch each trial stopped at (MAX_T if never)."""
    stopped: dict[str, int] = {}
    for name, epoch in stream:
        if name in stopped:
            continue
        if decide(name, epoch, value(name, epoch)) == "STOP":
            stopped[name] = epoch
    return {name: stopped.get(name, MAX_T) for name, _ in stream}


@pytest.mark.parametrize("factor", [2, 3, 4])
@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("interleave", [False, True])
def test_one_objective_decides_as_rays_asha(factor, mode, interleave):
    rng = np.random.default_rng(factor)
    quality = {f"t{i}": rng.uniform() for i in range(40)}
    # a learning curve with noise, and ties: values rounded to 2 decimals
    curve = {(n, e): round(q * (1 - math.exp(-e / 10)) + rng.normal(0, 0.02), 2)
             for n, q in quality.items() for e in range(1, MAX_T + 1)}
    value = curve.__getitem__
    ray_bracket = _Bracket(GRACE, MAX_T, factor, 0, stop_last_trials=False)
    sign = 1 if mode == "max" else -1

    def ray(name, epoch, reward):
        return ray_bracket.on_result(SimpleNamespace(trial_id=name), epoch, sign * reward)

    ours = MultiObjectiveASHA(["a"], [mode], max_t=MAX_T, grace_period=GRACE,
                              reduction_factor=factor)
    stream = _stream(rng, 40, interleave)
    expected = _decisions(ray, stream, lambda n, e: value((n, e)))
    got = _decisions(lambda n, e, v: ours.decide(n, {"epoch": e, "a": v}), stream,
                     lambda n, e: value((n, e)))
    assert got == expected
    assert ours.stopped == sum(epoch < MAX_T for epoch in expected.values()) > 0


def test_two_mutually_non_dominated_vectors_both_continue():
    """Fronts of 1-2 points are all +inf crowding; the tie went to the first arrival, so a
    newcomer that dominates nobody and is dominated by nobody always stopped at n = 2."""
    assert continues(np.array([[0.9, 0.1]]), np.array([0.1, 0.9]), 2) is True
    assert continues(np.array([[0.9, 0.9]]), np.array([0.1, 0.1]), 2) is False
    assert continues(np.array([[0.5, 0.5]]), np.array([0.5, 0.5]), 2) is True  # equal: tie
    scheduler = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=4, grace_period=1,
                                   reduction_factor=2)
    assert scheduler.decide("x", {"epoch": 1, "a": 0.9, "b": 0.1}) == "CONTINUE"
    assert scheduler.decide("y", {"epoch": 1, "a": 0.1, "b": 0.9}) == "CONTINUE"


def test_rung_scores_known_answers():
    """Front 0: (0, 4), (1, 3), (4, 0): crowding inf, (4-0)/4 + (4-0)/4 = 2, inf;
    front 1: (0.5, 0.5) alone: inf. Scores -front + c / (2 (1 + c)), inf -> 0.5."""
    points = np.array([[0.0, 4.0], [1.0, 3.0], [4.0, 0.0], [0.5, 0.5]])
    assert rung_scores(points).tolist() == pytest.approx([0.5, 2 / 6, 0.5, -0.5])
    assert rung_scores(np.array([[1.0], [-math.inf]]))[1] != rung_scores(  # NaN: ignored
        np.array([[1.0], [-math.inf]]))[1]


@pytest.mark.parametrize("result", [
    {"epoch": 1, "a": 0.99, "b": math.nan},      # NaN segregation, top accuracy
    {"epoch": 1, "a": 0.99},                     # segregation missing at a rung epoch
    {"epoch": 1, "a": 0.99, "b": math.inf},
    {"epoch": 1, "a": 0.99, "b": "n/a"},
])
def test_an_invalid_vector_never_goes_ahead_at_a_rung(result):
    scheduler = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=4, grace_period=1,
                                   reduction_factor=2)
    assert scheduler.decide("first", result) == "STOP"  # even as the rung's first
    assert scheduler.decide("valid", {"epoch": 1, "a": 0.1, "b": 0.1}) == "CONTINUE"
    assert scheduler.stopped == 1 and set(scheduler.rungs[1]) == {"first", "valid"}
    assert scheduler.decide("first", {"epoch": 2, "a": 1, "b": 1}) == "STOP"  # stays stopped
    # off the rungs nothing is decided, with or without objectives
    assert scheduler.decide("valid", {"epoch": 3}) == "CONTINUE"


def test_the_rung_state_survives_a_restart(tmp_path):
    """--resume: a scheduler built anew (or unpickled, as a restored Tuner's is) reads the
    saved rungs before its first decision; a trial reaching a rung afterwards is judged
    against the vectors recorded before (the first at a rung no longer continues for free),
    and a trial stopped before is stopped again when its results are replayed."""
    import pickle

    import pyarrow.fs as pafs

    from spatialsearch.search.places.place import Place

    state = Place(pafs.LocalFileSystem(), str(tmp_path / "ray" / "moasha.json"))

    def build():
        return MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=8, grace_period=1,
                                  reduction_factor=2, state=state)

    before = build()
    pickled = pickle.dumps(before)  # what Tune keeps from the start of the search
    for name, a in (("t0", 0.9), ("t1", 0.8), ("t2", 0.1), ("t3", math.nan)):
        before.decide(name, {"epoch": 1, "a": a, "b": a})
    assert before.stopped_trials == ["t1", "t2", "t3"]  # t1: below t0, the cutoff
    fresh = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=8, grace_period=1,
                               reduction_factor=2)
    assert fresh.decide("probe", {"epoch": 1, "a": 0.05, "b": 0.05}) == "CONTINUE"
    for after in (build(), pickle.loads(pickled)):
        assert after.decide("t2", {"epoch": 1, "a": 0.1, "b": 0.1}) == "STOP"  # replayed
        assert after.rungs[1].keys() == before.rungs[1].keys() and after.stopped == 3
        assert math.isnan(after.rungs[1]["t3"][0])
        assert after.decide("t0", {"epoch": 2, "a": 0.0, "b": 0.0}) == "CONTINUE"
    after = build()
    assert after.decide("late", {"epoch": 1, "a": 0.05, "b": 0.05}) == "STOP"
    assert after.stopped == 4 and list(after.rungs[1])[-1] == "late"


def test_each_decision_is_one_appended_line_and_a_replay_is_exact(tmp_path):
    """The saved state is a journal: N decisions are N lines, the file only grows, and a
    scheduler that replays it holds the same rungs and stopped trials, in order."""
    import pyarrow.fs as pafs

    from spatialsearch.search.places.place import Place

    state = Place(pafs.LocalFileSystem(), str(tmp_path / "journal"))
    build = lambda: MultiObjectiveASHA(["a", "b"], ["max", "min"], max_t=16,  # noqa: E731
                                       grace_period=2, reduction_factor=2, state=state)
    scheduler, rng, sizes = build(), np.random.default_rng(3), []
    for step in range(40):
        epoch = int(rng.choice([2, 4, 8]))
        scheduler.decide(f"t{step % 25}", {"epoch": epoch, "a": float(rng.random()),
                                           "b": float(rng.random())})
        sizes.append((tmp_path / "journal").stat().st_size)
    decided = sum(len(r) for r in scheduler.rungs.values())
    lines = (tmp_path / "journal").read_text().splitlines()
    assert len(lines) == decided and sizes == sorted(sizes)
    again = build()
    again.decide("probe-stopped-check", {"epoch": 3})  # any decision loads the journal
    assert again.state_dict() == scheduler.state_dict()
    with open(tmp_path / "journal", "a") as file:
        file.write('{"rung": 2, "trial": "half')  # a crash mid-append
    assert build().decide("x", {"epoch": 3}) == "CONTINUE"  # the partial line is skipped


def test_a_journal_on_s3_appends_one_object_per_entry(s3_endpoint):
    from spatialsearch.search.places.journal import Journal
    from spatialsearch.search.places.place import Place, s3_filesystem
    from spatialsearch.search.space.storage import StorageConfig
    from tests.s3_server import filesystem, objects

    filesystem(s3_endpoint).create_dir("bucket-journal")
    place = Place(s3_filesystem(StorageConfig("s3://bucket-journal", s3_endpoint)),
                  "bucket-journal/resume/moasha_journal")
    journal = Journal(place)
    for index in range(3):
        journal.append({"rung": 2, "trial": f"t{index}", "vector": [index], "stopped": False})
    assert [e["trial"] for e in Journal(place).entries()] == ["t0", "t1", "t2"]
    assert len(objects(s3_endpoint, "bucket-journal")) == 3
    later = Journal(place)
    later.entries()
    later.append({"rung": 4, "trial": "t0", "vector": [1], "stopped": True})
    assert [e["rung"] for e in Journal(place).entries()] == [2, 2, 2, 4]


def test_a_decision_ranks_the_newcomer_among_the_last_window_vectors():
    """Vectors (v, v) recorded 0.9, 0.8, 0.1, then a newcomer 0.5. Over all of them the fronts
    are 0.9, 0.8, 0.5, 0.1 (scores 0.5, -0.5, -1.5, -2.5): the newcomer's -1.5 is below the
    median of the earlier scores (-0.5) and stops. In a window of 2 it meets 0.8 and 0.1 only
    (scores 0.5, -0.5, -1.5): -0.5 reaches their median (-0.5) and goes on."""
    def run(window):
        scheduler = MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=8, grace_period=1,
                                       reduction_factor=2, window=window)
        for name, value in (("t0", 0.9), ("t1", 0.8), ("t2", 0.1)):
            scheduler.decide(name, {"epoch": 1, "a": value, "b": value})
        return scheduler.decide("new", {"epoch": 1, "a": 0.5, "b": 0.5})

    assert run(2) == "CONTINUE" and run(1000) == "STOP"


def test_a_trial_stopped_at_a_rung_retrains_to_that_rung_after_a_resume(tmp_path):
    """Stopped at rung 2 just before the driver died, a trial restored from its epoch-1
    checkpoint reports epoch 1 again: it goes on until it reaches rung 2 once more and stops
    there, so it trains exactly to its rung (it used to stop at its first replayed epoch)."""
    import pyarrow.fs as pafs

    from spatialsearch.search.places.place import Place

    state = Place(pafs.LocalFileSystem(), str(tmp_path / "journal"))
    build = lambda: MultiObjectiveASHA(["a", "b"], ["max", "max"], max_t=8,  # noqa: E731
                                       grace_period=2, reduction_factor=2, state=state)
    first = build()
    first.decide("good", {"epoch": 2, "a": 0.9, "b": 0.9})
    assert first.decide("weak", {"epoch": 2, "a": 0.1, "b": 0.1}) == "STOP"
    resumed = build()
    assert resumed.decide("weak", {"epoch": 1, "a": 0.1, "b": 0.1}) == "CONTINUE"
    assert resumed.decide("weak", {"epoch": 2, "a": 0.1, "b": 0.1}) == "STOP"
