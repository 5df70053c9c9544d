"""Fused CPU kernels for the spatial costs: value and all gradients in one pass over the weights.

Why numba: on the CPU a cost is memory-bound elementwise work (O(weights)) next to the training
step's O(batch x weights) matmuls. With torch ops every step re-reads the (n_out, n_in) matrices
~12 times (distances, f(W), products, sums, k=2 matmuls that BLAS runs badly); these loops read W
once and write dW once, computing distances in registers. They compute the gradient in the forward
pass, so the autograd backward is a multiply by the incoming scalar gradient.

Layout: positions come transposed, (d, n) contiguous, so the inner loops over j are unit-stride
and vectorise; constants are typed like the arrays (float32 stays float32).
Used only for CPU tensors; CUDA tensors take the torch-op path in costs.py.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

# Reassociation lets LLVM vectorise the sums; no-NaN/no-inf flags stay off so a diverging
# network still shows NaN in its loss instead of undefined values.
_FAST = {"reassoc", "nsz", "arcp", "contract"}

EXP_CLAMP = 32.0  # fast exp(-d) treats d > 32 as 32: exp(-32) = 1.3e-14, below float32 noise
# exp(-y) near y = 1/2 (|y - 1/2| <= 1/2): exp(-1/2) * sum_k (-(y - 1/2))^k / k!, k <= 7.
_C = [math.exp(-0.5) * (-1.0) ** k / math.factorial(k) for k in range(8)]
C0, C1, C2, C3, C4, C5, C6, C7 = _C


@numba.njit(fastmath=_FAST, cache=True, inline="always")
def _exp_neg_f32(d: np.float32) -> np.float32:
    """exp(-d), d >= 0, as (e^{-d/32})^32 with a degree-7 polynomial: no libm call, so the
    loop around it vectorises. Relative error < 1e-5 (checked in tests)."""
    clamped = d if d < np.float32(EXP_CLAMP) else np.float32(EXP_CLAMP)
    y = clamped * np.float32(1.0 / EXP_CLAMP) - np.float32(0.5)
    p = np.float32(C7)
    p = p * y + np.float32(C6)
    p = p * y + np.float32(C5)
    p = p * y + np.float32(C4)
    p = p * y + np.float32(C3)
    p = p * y + np.float32(C2)
    p = p * y + np.float32(C1)
    p = p * y + np.float32(C0)
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


# Whether a kernel computes gradients (logging with alpha = beta = 0 needs the costs only).
VALUE_ONLY = 0  # the cost only; no gradient array is touched
WRITE = 1  # grad_weight = coef * dC/dW; position gradients added to their arrays


@numba.njit(fastmath=_FAST, cache=True, inline="always")
def _magnitude(w: np.floating, l2: bool) -> np.floating:
    """f(w) = w^2 (l2) or |w| (l1)."""
    return w * w if l2 else abs(w)


@numba.njit(fastmath=_FAST, cache=True, inline="always")
def _slope(w: np.floating, l2: bool) -> np.floating:
    """f'(w) = 2w (l2) or sign(w) (l1)."""
    return w + w if l2 else np.sign(w)


@numba.njit(parallel=True, fastmath=_FAST, cache=True, nogil=True)
def transport_fused(weight: np.ndarray, pos_out: np.ndarray, pos_in: np.ndarray, l2: bool,
                    eps: np.floating, coef: np.floating, mode: int, grad_weight: np.ndarray,
                    grad_out: np.ndarray, grad_in_parts: np.ndarray) -> float:
    """T = mean_ij D_ij * f(W_ij), D_ij = sqrt(||out_i - in_j||^2 + eps); coef * dT in place.

    weight (n_out, n_in, K) (K = 1 linear, kh*kw conv; f summed over K); pos_out (d, n_out);
    pos_in (d, n_in); grad_weight like weight, written unless mode is VALUE_ONLY;
    grad_out (d, n_out), added to; grad_in_parts (chunks, d, n_in), one accumulator per
    parallel chunk, overwritten, summed by the caller. Taking coef here saves the caller a
    pass over dW per factor.
    Returns T as a float (rows summed in the array dtype, chunks in float64).
    """
    n_out, n_in, kernel = weight.shape
    dim = pos_out.shape[0]
    chunks = grad_in_parts.shape[0]
    zero = weight.dtype.type(0.0)
    scale = weight.dtype.type(coef / (n_out * n_in))
    partial = np.zeros(chunks)
    for chunk in prange(chunks):
        grad_in = grad_in_parts[chunk]
        if mode != VALUE_ONLY:
            grad_in[:] = zero
        distance = np.empty(n_in, weight.dtype)
        ratio = np.empty(n_in, weight.dtype)
        total = 0.0
        for i in range(chunk, n_out, chunks):
            distance[:] = eps
            for t in range(dim):
                here = pos_out[t, i]
                for j in range(n_in):
                    diff = here - pos_in[t, j]
                    distance[j] += diff * diff
            row_total = zero
            if kernel == 1:
                for j in range(n_in):
                    d = math.sqrt(distance[j])
                    distance[j] = d
                    magnitude = _magnitude(weight[i, j, 0], l2)
                    row_total += d * magnitude
                    ratio[j] = magnitude / d * scale
            else:
                for j in range(n_in):
                    d = math.sqrt(distance[j])
                    distance[j] = d
                    magnitude = zero
                    for k in range(kernel):
                        magnitude += _magnitude(weight[i, j, k], l2)
                    row_total += d * magnitude
                    ratio[j] = magnitude / d * scale
            total += row_total
            if mode == VALUE_ONLY:
                continue
            if kernel == 1:  # unit stride over j, so this vectorises
                for j in range(n_in):
                    grad_weight[i, j, 0] = _slope(weight[i, j, 0], l2) * distance[j] * scale
            else:
                for j in range(n_in):
                    for k in range(kernel):
                        grad_weight[i, j, k] = _slope(weight[i, j, k], l2) * distance[j] * scale
            for t in range(dim):
                here = pos_out[t, i]
                pulled = zero
                for j in range(n_in):
                    pull = ratio[j] * (here - pos_in[t, j])
                    pulled += pull
                    grad_in[t, j] -= pull
                grad_out[t, i] += pulled
        partial[chunk] = total
    return partial.sum() / (n_out * n_in)


@numba.njit(parallel=True, fastmath=_FAST, cache=True, nogil=True)
def proximity_fused(positions: np.ndarray, eps: np.floating, coef: np.floating, with_grad: bool,
                    grad: np.ndarray, single: bool) -> float:
    """P = mean_{i != j} exp(-D_ij) over ordered pairs; coef * dP added into grad (d, n).

    positions (d, n). By symmetry dP/dp_i = 2 sum_j r_ij (p_i - p_j), r_ij = -e^{-D_ij} / D_ij
    / (n (n - 1)), so each row is independent: no scattered writes, rows run in parallel.
    The self-pair term (D_ii = sqrt(eps)) is subtracted from the total; its gradient is 0.
    with_grad False: grad is not touched. single (float32 arrays): the polynomial exp
    (relative error < 1e-5); else libm's.
    """
    dim, n = positions.shape
    zero = positions.dtype.type(0.0)
    scale = positions.dtype.type(coef / (n * (n - 1)))
    self_distance = math.sqrt(eps)
    self_closeness = _exp_neg_f32(self_distance) if single else math.exp(-self_distance)
    totals = np.zeros(n)
    for i in prange(n):
        if dim == 2:  # the common case: one pass, all in registers
            x, y = positions[0, i], positions[1, i]
            row_total = zero
            pulled_x = zero
            pulled_y = zero
            for j in range(n):
                dx = x - positions[0, j]
                dy = y - positions[1, j]
                d = math.sqrt(dx * dx + dy * dy + eps)
                closeness = _exp_neg_f32(d) if single else math.exp(-d)
                row_total += closeness
                r = closeness / d * scale
                pulled_x += r * dx
                pulled_y += r * dy
            totals[i] = row_total - self_closeness
            if with_grad:
                grad[0, i] += -2 * pulled_x
                grad[1, i] += -2 * pulled_y
            continue
        ratio = np.empty(n, positions.dtype)
        ratio[:] = eps
        for t in range(dim):
            here = positions[t, i]
            for j in range(n):
                diff = here - positions[t, j]
                ratio[j] += diff * diff
        row_total = zero
        if single:
            for j in range(n):
                d = math.sqrt(ratio[j])
                closeness = _exp_neg_f32(d)
                row_total += closeness
                ratio[j] = closeness / d * scale
        else:
            for j in range(n):
                d = math.sqrt(ratio[j])
                closeness = math.exp(-d)
                row_total += closeness
                ratio[j] = closeness / d * scale
        totals[i] = row_total - self_closeness
        if not with_grad:
            continue
        for t in range(dim):
            here = positions[t, i]
            pulled = zero
            for j in range(n):
                pulled += ratio[j] * (here - positions[t, j])
            grad[t, i] += -2 * pulled
    return totals.sum() / (n * (n - 1))


def worker_chunks() -> int:
    """Parallel chunks (one gradient accumulator each): numba's thread count."""
    return numba.get_num_threads()
