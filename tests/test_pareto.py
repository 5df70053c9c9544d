"""Multi-objective ranking against brute force and hand-made fronts with known answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from spatialsearch.pareto import (
    crowding_distance,
    hypervolume,
    hypervolume_history,
    non_dominated_fronts,
    oriented,
    pareto_indices,
    rank_order,
)
from spatialsearch.search.engine.moasha import rung_epochs
from spatialsearch.search.outcome.ranking import (
    Candidate,
    TrialOutcome,
    pareto_front,
    rank_single,
)
from spatialsearch.search.space.objectives import Objective


def _brute_fronts(points: np.ndarray) -> list[list[int]]:
    """Peel: front = the points no remaining point dominates, by definition."""
    left, fronts = list(range(len(points))), []
    while left:
        front = [i for i in left if not any(
            np.all(points[j] >= points[i]) and np.any(points[j] > points[i]) for j in left)]
        fronts.append(front)
        left = [i for i in left if i not in front]
    return fronts


def _brute_hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Inclusion-exclusion over every subset: the union of boxes [reference, p]."""
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.min(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(np.clip(corner - reference, 0, None)))
    return total


def test_hand_made_front_and_its_layers():
    points = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.4, 0.4], [0.1, 0.1], [0.5, 0.5]])
    assert non_dominated_fronts(points) == [[0, 1, 2, 5], [3], [4]]
    assert pareto_indices(points) == [0, 1, 2, 5]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("objectives", [2, 3])
def test_non_dominated_sorting_matches_brute_force(seed, objectives):
    rng = np.random.default_rng(seed)
    points = rng.integers(0, 5, size=(14, objectives)).astype(float)  # many ties
    assert non_dominated_fronts(points) == _brute_fronts(points)


def test_hypervolume_by_hand():
    # boxes [0,1]x[0,3], [0,2]x[0,2], [0,3]x[0,1]: 3 + 4 + 3 - 2 - 1 - 2 + 1 = 6
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]])
    assert hypervolume(points, np.zeros(2)) == pytest.approx(6.0)
    assert hypervolume(points, np.array([1.0, 1.0])) == pytest.approx(1.0)  # only (2,2) left
    assert hypervolume(points[:1], np.array([1.0, 0.0])) == 0.0  # on the reference: no volume
    assert hypervolume(np.array([[2.0, 2.0, 2.0]]), np.ones(3)) == pytest.approx(1.0)
    assert hypervolume_history(points, np.zeros(2)) == pytest.approx([3.0, 5.0, 6.0])


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("objectives", [2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(seed, objectives):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, size=(7, objectives))
    reference = rng.uniform(0, 0.3, size=objectives)
    assert hypervolume(points, reference) == pytest.approx(
        _brute_hypervolume(points, reference), rel=1e-12, abs=1e-15)


def test_orientation_negates_min_and_a_missing_objective_makes_the_row_worst():
    points = oriented(np.array([[0.9, 0.2], [0.8, math.nan]]), ["max", "min"])
    assert points.tolist() == [[0.9, -0.2], [-math.inf, -math.inf]]
    # a NaN segregation with the top accuracy is dominated by every trial with values: it
    # was non-dominated before (issue: the front must be right on every input)
    values = oriented(np.array([[0.9, math.nan], [0.5, 0.6]]), ["max", "max"])
    assert non_dominated_fronts(values) == [[1], [0]]
    assert pareto_indices(values) == [1]
    # an infinite value is invalid too; invalid rows are never on the front, even alone
    values = oriented(np.array([[0.99, math.inf], [0.5, 0.6], [0.4, 0.5]]), ["max", "min"])
    assert pareto_indices(values) == [1, 2]
    assert pareto_indices(oriented(np.array([[0.9, math.nan]]), ["max", "max"])) == []
    assert hypervolume(values, np.array([0.2, -1.0])) == pytest.approx(
        hypervolume(values[1:], np.array([0.2, -1.0])))


def test_crowding_distance_and_rank_order_by_hand():
    front = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    # inner points: (3-0)/4 + (4-1)/4 = 1.5 for (1,3) and (4-1)/4 + (3-0)/4 = 1.5 for (3,1)
    assert crowding_distance(front).tolist() == [math.inf, 1.5, 1.5, math.inf]
    front = np.array([[0.0, 4.0], [1.0, 3.5], [3.0, 1.0], [4.0, 0.0]])
    # (1,3.5): (3-0)/4 + (4-1)/4 = 1.5; (3,1): (4-1)/4 + (3.5-0)/4 = 1.625
    assert crowding_distance(front) == pytest.approx([math.inf, 1.5, 1.625, math.inf])
    points = np.vstack([front, [[0.5, 0.5]]])
    assert rank_order(points) == [0, 3, 2, 1, 4]


def test_rungs_are_rays():
    assert rung_epochs(50, 5, 2) == (5, 10, 20, 40)
    assert rung_epochs(40, 5, 2) == (5, 10, 20, 40)
    assert rung_epochs(9, 1, 3) == (1, 3, 9)


def test_one_objective_ties_within_the_standard_error_go_to_the_lowest_loss():
    candidates = [
        Candidate("lucky", 1.0, val_loss=0.09, accuracy_se=0.0085),
        Candidate("steady", 0.9939, val_loss=0.03, accuracy_se=0.0100),
        Candidate("close", 0.99, val_loss=0.01, accuracy_se=0.0110),
        Candidate("behind", 0.95, val_loss=0.001, accuracy_se=0.02),
    ]
    assert rank_single("val_accuracy", "max", candidates) == ["close", "steady", "lucky",
                                                               "behind"]
    apart = [Candidate("a", 1.0, 0.5, 0.001), Candidate("b", 0.99, 0.1, 0.001)]
    assert rank_single("val_accuracy", "max", apart) == ["a", "b"]
    assert rank_single("val_loss", "min", [Candidate("x", 0.3, 0.3, 0), Candidate(
        "y", 0.2, 0.2, 0)]) == ["y", "x"]


def test_front_takes_full_trials_only_with_chance_reference_and_history():
    objectives = (Objective("val_accuracy", "max"), Objective("segregation", "max"))
    outcomes = [
        TrialOutcome("a", True, (0.9, 0.7), 103.0),
        TrialOutcome("stopped", False, (0.99, 0.99), 101.0),
        TrialOutcome("b", True, (0.8, 0.9), 105.0),
        TrialOutcome("c", True, (0.7, 0.6), 104.0),
        TrialOutcome("nan", True, (0.95, math.nan), 106.0),
    ]
    front = pareto_front(objectives, outcomes, labels=5, num_tasks=2, started_at=100.0)
    assert front.reference == (0.2, 0.5)
    assert front.members == ("a", "b")  # the NaN trial's top accuracy does not put it there
    # (0.9-0.2)(0.7-0.5) + (0.8-0.2)(0.9-0.7) = 0.14 + 0.12; the NaN trial adds no volume
    assert front.hypervolume == pytest.approx(0.26)
    assert [(n, s) for n, s, _ in front.history] == [(1, 3.0), (2, 4.0), (3, 5.0), (4, 6.0)]
    assert [h for _, _, h in front.history] == pytest.approx([0.14, 0.14, 0.26, 0.26])
    loss = (Objective("val_accuracy", "max"), Objective("val_loss", "min"))
    worst = pareto_front(loss, [TrialOutcome("a", True, (0.9, 0.4), 1.0),
                                TrialOutcome("b", False, (0.5, 2.0), 1.0)],
                         labels=5, num_tasks=2, started_at=0.0)
    # no chance level for a loss: beyond the worst *full* trial; the stopped b is ignored,
    # so a's 0.4 alone is the worst: a tenth of |0.4| beyond it
    assert worst.reference == pytest.approx((0.2, 0.44))


def test_crowding_distance_known_answers():
    """Worked by hand. Column 0: 1, 2, 4, 7 (span 6); column 1: 0.3, 0.2, 0.1, 0.0 (span 0.3,
    below 1). Inner points: (4 - 1) / 6 + (0.3 - 0.1) / 0.3 and (7 - 2) / 6 + (0.2 - 0) / 0.3;
    the ends are infinite."""
    points = np.array([[1, 0.3], [2, 0.2], [4, 0.1], [7, 0.0]])
    distance = crowding_distance(points)
    assert distance[0] == distance[3] == math.inf
    assert distance[1] == pytest.approx(3 / 6 + 0.2 / 0.3)
    assert distance[2] == pytest.approx(5 / 6 + 0.2 / 0.3)
    # three points: the middle one is finite (only fronts of 1 or 2 are all infinite)
    assert crowding_distance(points[:3])[1] == pytest.approx(3 / 3 + 0.2 / 0.2)
    assert crowding_distance(points[:2]).tolist() == [math.inf, math.inf]


def test_crowding_distance_skips_constant_and_infinite_columns():
    """A column with no spread (constant, or no finite value) adds nothing; the next column
    still counts. Non-finite values count as the nearest finite extreme in the gaps: the
    neighbour of a -inf point is not protected as an end."""
    constant_first = np.array([[5.0, 1.0], [5.0, 2.0], [5.0, 4.0]])
    assert crowding_distance(constant_first)[1] == pytest.approx(3 / 3)
    no_finite = np.array([[-math.inf, 1.0], [-math.inf, 2.0], [-math.inf, 4.0]])
    assert crowding_distance(no_finite)[1] == pytest.approx(3 / 3)
    beside_inf = np.array([[-math.inf, 1.0], [-math.inf, 2.0], [-math.inf, 3.0], [0.0, 4.0],
                           [1.0, 5.0]])
    # column 0 clipped to [0, 0, 0, 0, 1] (span 1), column 1 span 4: point 1: 0 + 2/4,
    # point 2: 0 + 2/4, point 3 (beside the -inf ones): (1 - 0)/1 + (5 - 3)/4
    distance = crowding_distance(beside_inf)
    assert distance[0] == distance[4] == math.inf
    assert distance[1:4].tolist() == pytest.approx([0.5, 0.5, 1.5])


def test_orientation_and_empty_fronts():
    assert oriented([0.5, 2.0], ["max", "min"]).tolist() == [[0.5, -2.0]]  # one point: (1, k)
    assert oriented([[1, float("nan")]], ["max", "max"]).tolist() == [[-math.inf, -math.inf]]
    assert pareto_indices(np.zeros((0, 2))) == [] and non_dominated_fronts(np.zeros((0, 2))) == []
