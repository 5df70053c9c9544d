"""Multi-objective ranking: non-dominated sorting, crowding distance, hypervolume.

Pure numpy, no engine: the MO-ASHA scheduler, the Pareto set of a finished search and the
benchmarks all rank with these. Every function takes points as an (n, k) array in which
*larger is better* in every column (oriented(): minimised objectives are negated first).

A trial missing an objective (NaN) or with an infinite value there is *invalid*: oriented()
makes its whole row -inf, so it is dominated by every trial whose values are all finite, is
never on the Pareto front (pareto_indices), never ahead at a rung (moasha) and adds no
hypervolume. Invalid rows stay comparable among themselves: they form the last front.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def oriented(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """(n, k) raw objective values -> (n, k) float64 where larger is better (min columns
    negated); a row with any NaN or infinite value becomes -inf in every column (invalid)."""
    points = np.array(values, dtype=np.float64, ndmin=2).copy()
    for column, mode in enumerate(modes):
        if mode == "min":
            points[:, column] = -points[:, column]
    points[~np.all(np.isfinite(points), axis=1)] = -np.inf
    return points


def valid_rows(points: np.ndarray) -> np.ndarray:
    """(n,) bool: the rows whose values are all finite (oriented() made the others -inf)."""
    return np.all(np.isfinite(points), axis=1)


def non_dominated_fronts(points: np.ndarray) -> list[list[int]]:
    """Fast non-dominated sorting (Deb et al. 2002): front 0 holds the points no other point
    dominates, front 1 those dominated only by front 0, and so on. O(n^2 k), each front
    peeled in one vectorised step.
    points (n, k) -> list of fronts, each a sorted list of row indices; n = 0 gives []."""
    n = len(points)
    if n == 0:
        return []
    better_eq = np.ones((n, n), dtype=bool)  # [i, j]: i >= j in every objective
    strictly = np.zeros((n, n), dtype=bool)  # [i, j]: i > j in some objective
    for column in points.T:  # one objective at a time: (n, n) work, no (n, n, k) temporary
        better_eq &= column[:, None] >= column[None, :]
        strictly |= column[:, None] > column[None, :]
    dominance = better_eq & strictly  # [i, j]: i dominates j
    dominated_by = dominance.sum(axis=0)  # how many points dominate j
    fronts: list[list[int]] = []
    current = np.flatnonzero(dominated_by == 0)
    while len(current):
        fronts.append(current.tolist())
        dominated_by -= dominance[current].sum(axis=0)  # what the front dominated
        dominated_by[current] = -1  # taken
        current = np.flatnonzero(dominated_by == 0)
    return fronts


def crowding_distance(points: np.ndarray) -> np.ndarray:
    """Crowding distance of each point of one front (Deb et al. 2002): per objective, sort the
    front's distinct vectors, give the two ends +inf and every inner vector the gap between
    its neighbours divided by the objective's range; sum over objectives. Identical vectors
    are one vector here and share its distance (a sort would otherwise put twins on both
    sides of a cutoff). Fronts of 1 or 2 distinct vectors are all +inf. Non-finite values
    count as the nearest finite extreme in the gaps, so the neighbour of a -inf point gets a
    finite gap (only the two ends are protected).
    points (n, k) -> (n,) float64."""
    n, k = points.shape
    if n == 0:
        return np.zeros(0)
    distinct, twin_of = np.unique(points, axis=0, return_inverse=True)
    twin_of = twin_of.reshape(-1)
    if len(distinct) <= 2:
        return np.full(n, np.inf)
    distance = np.zeros(len(distinct))
    for column in range(k):
        values = distinct[:, column]
        order = np.argsort(values, kind="stable")
        distance[order[0]] = distance[order[-1]] = np.inf
        finite = values[np.isfinite(values)]
        span = finite.max() - finite.min() if len(finite) else 0.0
        if span <= 0:
            continue
        clipped = np.clip(values, finite.min(), finite.max())
        distance[order[1:-1]] += (clipped[order[2:]] - clipped[order[:-2]]) / span
    return distance[twin_of]


def rank_order(points: np.ndarray) -> list[int]:
    """Row indices, best first: by non-dominated front, then within a front by crowding
    distance (larger first: it keeps the front spread out), then by row index (stable).
    This is MO-ASHA's ranking at a rung (Schmucker et al. 2021 use NSGA-II's, this one)."""
    order: list[int] = []
    for front in non_dominated_fronts(points):
        crowding = crowding_distance(points[front])
        indices = np.array(front)
        order.extend(indices[np.lexsort((indices, -crowding))].tolist())
    return order


def pareto_indices(points: np.ndarray) -> list[int]:
    """The Pareto front: the valid rows no other row dominates (duplicates all kept); an
    invalid row is never on it, even when no row is valid."""
    valid = np.flatnonzero(valid_rows(points))
    fronts = non_dominated_fronts(points[valid])
    return valid[fronts[0]].tolist() if fronts else []


def hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume of the region dominated by `points` and dominating `reference` (all maximised):
    the Lebesgue measure of the union of boxes [reference, p] over the points p > reference.
    Exact, by slicing objectives (HSO, While et al. 2006): sort by the last objective and
    sum slab height x (k-1)-dimensional volume of the points above the slab. Fine for the
    tens of points and 2-3 objectives of a search. points (n, k), reference (k,) -> float."""
    reference = np.asarray(reference, dtype=np.float64)
    kept = np.array([p for p in np.asarray(points, dtype=np.float64) if np.all(p > reference)])
    if len(kept) == 0:
        return 0.0
    return _volume(kept, reference)


def _volume(points: np.ndarray, reference: np.ndarray) -> float:
    if points.shape[1] == 1:
        return float(points[:, 0].max() - reference[0])
    points = points[np.argsort(-points[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(points)):
        low = points[i + 1, -1] if i + 1 < len(points) else reference[-1]
        height = points[i, -1] - low
        if height > 0:
            volume += height * _volume(points[: i + 1, :-1], reference[:-1])
    return volume


def hypervolume_history(points: np.ndarray, reference: np.ndarray) -> list[float]:
    """Hypervolume of the first i points, for i = 1..n (points in the order they arrived)."""
    return [hypervolume(points[: i + 1], reference) for i in range(len(points))]
