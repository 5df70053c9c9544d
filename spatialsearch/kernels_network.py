"""The costs of a whole network in one numba call on one thread (small layers): the row loops
of spatialsearch.kernels inlined, layer after layer, from a workspace's arrays
(cpu_costs.CostWorkspace). See kernels' docstring for when this beats the per-layer kernels.
"""

from __future__ import annotations

import numba
import numpy as np

from spatialsearch.kernels import (
    _SERIAL,
    VALUE_ONLY,
    _proximity_row_inline,
    _transport_row_inline,
)


def _lay_out(positions: tuple, layouts: tuple, sums: tuple, used: np.ndarray,
             with_grads: bool) -> None:
    """layouts[k] = positions[k].T ((n, d) -> (d, n)) and sums[k] = 0 for the used layers."""
    for k in range(len(layouts)):
        if used[k]:
            layouts[k][:] = positions[k].T
            if with_grads:
                sums[k][:] = 0


def _hand_over(sums: tuple, position_grads: tuple, moved: np.ndarray) -> None:
    """position_grads[k] = sums[k].T ((d, n) -> (n, d)) for the layers whose positions move."""
    for k in range(len(sums)):
        if moved[k]:
            position_grads[k][:] = sums[k].T


# One function (51 lines) on purpose: one jitted call per step is its reason to exist.
def _network_costs(weights: tuple, positions: tuple, layouts: tuple, sums: tuple,
                   weight_grads: tuple, position_grads: tuple, where: np.ndarray,
                   used: np.ndarray, moved: np.ndarray, l2: bool, eps: np.floating,
                   prox_coef: np.floating, trans_coef: np.floating,
                   mode: int) -> tuple[float, float]:
    """(sum over k in where of P_k, sum over k in where, k >= 1 of T_k) of a whole network on
    one thread, and in WRITE mode the gradients of prox_coef * that P + trans_coef * that T.

    Per layer k (tuples of L + 1 arrays): weights (n_out, n_in, K) and positions (n, d), the
    parameters' memory; layouts and sums (d, n) scratch; weight_grads like weights, written
    for k in where, k >= 1 (unless trans_coef is 0); position_grads (n, d), written where
    `moved`. used: layers whose positions a cost reads. A coefficient of 0 skips its
    gradient work.
    """
    with_grads = mode != VALUE_ONLY
    lay_out(positions, layouts, sums, used, with_grads)
    prox_total = 0.0
    for k in where:
        pos = layouts[k]
        n = pos.shape[1]
        if n < 2:
            continue
        scale = pos.dtype.type(prox_coef / (n * (n - 1)))
        ratio = np.empty(n, pos.dtype)
        grad = sums[k]
        with_grad = with_grads and prox_coef != 0
        row_sum = 0.0
        for i in range(n):
            row_sum += _proximity_row_inline(i, pos, eps, scale, with_grad, grad, ratio)
        prox_total += row_sum / (n * (n - 1))
    trans_mode = VALUE_ONLY if trans_coef == 0 else mode
    trans_total = 0.0
    for k in where:
        if k < 1:
            continue
        weight = weights[k]
        n_out, n_in = weight.shape[0], weight.shape[1]
        scale = weight.dtype.type(trans_coef / (n_out * n_in))
        distance = np.empty(n_in, weight.dtype)
        ratio = np.empty(n_in, weight.dtype)
        pos_out, pos_in, grad_weight = layouts[k], layouts[k - 1], weight_grads[k]
        grad_out, grad_in = sums[k], sums[k - 1]
        row_sum = 0.0
        for i in range(n_out):
            row_sum += _transport_row_inline(i, weight, pos_out, pos_in, l2, eps, scale,
                                             trans_mode, grad_weight, grad_out, grad_in,
                                             distance, ratio)
        trans_total += row_sum / (n_out * n_in)
    if with_grads:
        hand_over(sums, position_grads, moved)
    return prox_total, trans_total


# Compiled by assignment, as in spatialsearch.kernels (which says why).
lay_out = numba.njit(**_SERIAL)(_lay_out)
hand_over = numba.njit(**_SERIAL)(_hand_over)
network_costs = numba.njit(**_SERIAL)(_network_costs)
