"""Fused CPU kernels for the spatial costs: value and all gradients in one pass over the weights.

Why numba: on the CPU a cost is memory-bound elementwise work (O(weights)) next to the training
step's O(batch x weights) matmuls. With torch ops every step re-reads the (n_out, n_in) matrices
~12 times (distances, f(W), products, sums, k=2 matmuls that BLAS runs badly); these loops read W
once and write dW once, computing distances in registers. They compute the gradient in the forward
pass, so the autograd backward is a multiply by the incoming scalar gradient.

Layout: positions come transposed, (d, n) contiguous, so the inner loops over j are unit-stride
and vectorise; constants are typed like the arrays (float32 stays float32).
Used only for CPU tensors; CUDA tensors take the torch-op path in costs.py.

Two ways to run them, one set of row loops (_transport_row, _proximity_row):
- kernels_network.network_costs: the whole network in one call on one thread, for small
  layers. At [256, 256] a training step spent more time in the Python between per-layer
  kernel calls and in starting numba's parallel regions than in the kernels: one call took
  the step ratio against a plain network from 1.11-1.13x to 1.06-1.08x.
- transport_fused / proximity_fused: one layer, its rows spread over numba's threads; faster
  from about a million weights or pairs per layer (PARALLEL_FROM).
error_model="numpy": a division needs no ZeroDivisionError check, which kept the serial loops
from vectorising (8-12x slower).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange, types
from numba.extending import overload

# Reassociation lets LLVM vectorise the sums; no-NaN/no-inf flags stay off so a diverging
# network still shows NaN in its loss instead of undefined values.
_FAST = {"reassoc", "nsz", "arcp", "contract"}

EXP_CLAMP = 32.0  # fast exp(-d) treats d > 32 as 32: exp(-32) = 1.3e-14, below float32 noise
# exp(-y) near y = 1/2 (|y - 1/2| <= 1/2): exp(-1/2) * sum_k (-(y - 1/2))^k / k!, k <= 7.
_C = [math.exp(-0.5) * (-1.0) ** k / math.factorial(k) for k in range(8)]
C0, C1, C2, C3, C4, C5, C6, C7 = _C


def _exp_neg_polynomial(d):  # noqa: ANN001, ANN201 (overload matches signatures)
    """exp(-d), d >= 0, as (e^{-d/32})^32 with a degree-7 polynomial: no libm call, so the
    loop around it vectorises. Relative error < 1e-5 (checked in tests)."""
    clamped = min(d, np.float32(EXP_CLAMP))
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


def _exp_neg_libm(d):  # noqa: ANN001, ANN201
    return math.exp(-d)


_exp_neg_f32 = numba.njit(fastmath=_FAST, cache=True)(_exp_neg_polynomial)  # for the tests


def _exp_neg(d: np.floating) -> np.floating:
    """exp(-d) in d's precision: the polynomial for float32, libm's for float64, chosen when
    numba compiles (the overload below), so the loops around it carry no branch and
    vectorise. Run as plain Python (numba's NUMBA_DISABLE_JIT=1, for debugging and for the
    mutation score, docs/testing.md) it chooses the same way at each call."""
    return _exp_neg_polynomial(d) if isinstance(d, np.float32) else _exp_neg_libm(d)


@overload(_exp_neg, inline="always", fastmath=_FAST)
def _exp_neg_typed(d):  # noqa: ANN001, ANN201
    return _exp_neg_polynomial if d == types.float32 else _exp_neg_libm


# Whether a kernel computes gradients (logging with alpha = beta = 0 needs the costs only).
VALUE_ONLY = 0  # the cost only; no gradient array is touched
WRITE = 1  # grad_weight = coef * dC/dW; position gradients added to their arrays


def _magnitude_of(w: np.floating, l2: bool) -> np.floating:
    """f(w) = w^2 (l2) or |w| (l1)."""
    return w * w if l2 else abs(w)


def _slope_of(w: np.floating, l2: bool) -> np.floating:
    """f'(w) = 2w (l2) or sign(w) (l1)."""
    return w + w if l2 else np.sign(w)


# Every kernel is a plain function compiled by assignment, not under a decorator: the same
# source then also runs as Python under NUMBA_DISABLE_JIT=1 (debugging, and the mutation
# score in docs/testing.md, whose tool rewrites undecorated functions only).
_magnitude = numba.njit(fastmath=_FAST, cache=True, inline="always")(_magnitude_of)
_slope = numba.njit(fastmath=_FAST, cache=True, inline="always")(_slope_of)


# One function (51 lines) on purpose: split, numba no longer vectorises the inner loops.
def _transport_row(i: int, weight: np.ndarray, pos_out: np.ndarray, pos_in: np.ndarray,
                   l2: bool, eps: np.floating, scale: np.floating, mode: int,
                   grad_weight: np.ndarray, grad_out: np.ndarray, grad_in: np.ndarray,
                   distance: np.ndarray, ratio: np.ndarray) -> np.floating:
    """Row i of transport: returns sum_j D_ij f(W_ij); unless mode is VALUE_ONLY writes
    grad_weight[i] = scale f'(W_ij) D_ij, adds scale sum_j f(W_ij) / D_ij (out_i - in_j) to
    grad_out[:, i] and subtracts each term from grad_in[:, j]. distance, ratio: (n_in,) scratch.
    """
    n_in, kernel = weight.shape[1], weight.shape[2]
    zero = weight.dtype.type(0.0)
    distance[:] = eps
    for t in range(pos_out.shape[0]):
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
    if mode == VALUE_ONLY:
        return row_total
    if kernel == 1:  # unit stride over j, so this vectorises
        for j in range(n_in):
            grad_weight[i, j, 0] = _slope(weight[i, j, 0], l2) * distance[j] * scale
    else:
        for j in range(n_in):
            for k in range(kernel):
                grad_weight[i, j, k] = _slope(weight[i, j, k], l2) * distance[j] * scale
    for t in range(pos_out.shape[0]):
        here = pos_out[t, i]
        pulled = zero
        for j in range(n_in):
            pull = ratio[j] * (here - pos_in[t, j])
            pulled += pull
            grad_in[t, j] -= pull
        grad_out[t, i] += pulled
    return row_total


def _proximity_row(i: int, positions: np.ndarray, eps: np.floating, scale: np.floating,
                   with_grad: bool, grad: np.ndarray, ratio: np.ndarray) -> np.floating:
    """Row i of proximity: returns sum_{j != i} exp(-D_ij); with_grad adds
    -2 scale sum_j e^{-D_ij} / D_ij (p_i - p_j) to grad[:, i]. ratio: (n,) scratch.
    By symmetry dP/dp_i needs row i only, so rows are independent: no scattered writes.
    The self-pair (D_ii = sqrt(eps)) is subtracted; its gradient is 0.
    """
    dim, n = positions.shape
    zero = positions.dtype.type(0.0)
    self_closeness = _exp_neg(positions.dtype.type(math.sqrt(eps)))
    row_total = zero
    if dim == 2:  # the common case: one pass, all in registers
        x, y = positions[0, i], positions[1, i]
        pulled_x = zero
        pulled_y = zero
        for j in range(n):
            dx = x - positions[0, j]
            dy = y - positions[1, j]
            d = math.sqrt(dx * dx + dy * dy + eps)
            closeness = _exp_neg(d)
            row_total += closeness
            r = closeness / d * scale
            pulled_x += r * dx
            pulled_y += r * dy
        if with_grad:
            grad[0, i] += -2 * pulled_x
            grad[1, i] += -2 * pulled_y
        return row_total - self_closeness
    ratio[:] = eps
    for t in range(dim):
        here = positions[t, i]
        for j in range(n):
            diff = here - positions[t, j]
            ratio[j] += diff * diff
    for j in range(n):
        d = math.sqrt(ratio[j])
        closeness = _exp_neg(d)
        row_total += closeness
        ratio[j] = closeness / d * scale
    if with_grad:
        for t in range(dim):
            here = positions[t, i]
            pulled = zero
            for j in range(n):
                pulled += ratio[j] * (here - positions[t, j])
            grad[t, i] += -2 * pulled
    return row_total - self_closeness


# Each row loop compiled twice: called from the parallel kernels (as a function, whose loops
# then split well over threads) and inlined into network_costs (a call per row, with a dozen
# array arguments, cost 15% there).
_ROW = dict(fastmath=_FAST, error_model="numpy", nogil=True)
_SERIAL = dict(_ROW, cache=True)
_transport_row_call = numba.njit(**_SERIAL)(_transport_row)
_proximity_row_call = numba.njit(**_SERIAL)(_proximity_row)
_transport_row_inline = numba.njit(inline="always", **_ROW)(_transport_row)
_proximity_row_inline = numba.njit(inline="always", **_ROW)(_proximity_row)


def _transport_all_rows(weight: np.ndarray, pos_out: np.ndarray, pos_in: np.ndarray,
                        l2: bool, eps: np.floating, coef: np.floating, mode: int,
                        grad_weight: np.ndarray, grad_out: np.ndarray,
                        grad_in_parts: np.ndarray) -> float:
    """T = mean_ij D_ij * f(W_ij), D_ij = sqrt(||out_i - in_j||^2 + eps); coef * dT in place.

    weight (n_out, n_in, K) (K = 1 linear, kh*kw conv; f summed over K); pos_out (d, n_out);
    pos_in (d, n_in); grad_weight like weight, written unless mode is VALUE_ONLY; grad_out
    (d, n_out), added to; grad_in_parts (chunks, d, n_in): one accumulator per parallel chunk,
    added to (zeros the caller sums, or with one chunk the gradient itself). Taking coef here
    saves the caller a pass over dW per factor.
    Returns T as a float (rows summed in the array dtype, chunks in float64).
    """
    n_out, n_in = weight.shape[0], weight.shape[1]
    chunks = grad_in_parts.shape[0]
    scale = weight.dtype.type(coef / (n_out * n_in))
    partial = np.zeros(chunks)
    for chunk in prange(chunks):
        distance = np.empty(n_in, weight.dtype)
        ratio = np.empty(n_in, weight.dtype)
        grad_in = grad_in_parts[chunk]  # taken out of the loop: indexed inside, it was slow
        total = 0.0
        for i in range(chunk, n_out, chunks):
            total += _transport_row_call(i, weight, pos_out, pos_in, l2, eps, scale, mode,
                                         grad_weight, grad_out, grad_in, distance, ratio)
        partial[chunk] = total
    return partial.sum() / (n_out * n_in)


def _proximity_all_rows(positions: np.ndarray, eps: np.floating, coef: np.floating,
                        with_grad: bool, grad: np.ndarray) -> float:
    """P = mean_{i != j} exp(-D_ij) over ordered pairs; coef * dP added into grad (d, n).

    positions (d, n); rows in parallel. with_grad False: grad is not touched. float32 uses
    the polynomial exp (relative error < 1e-5), float64 libm's. Fewer than 2 neurons have no
    pairs: P = 0, no gradient.
    """
    dim, n = positions.shape
    if n < 2:
        return 0.0
    scale = positions.dtype.type(coef / (n * (n - 1)))
    totals = np.zeros(n)
    unused = np.empty(0, positions.dtype)  # 2-D rows need no scratch
    for i in prange(n):
        ratio = unused if dim == 2 else np.empty(n, positions.dtype)
        totals[i] = _proximity_row_call(i, positions, eps, scale, with_grad, grad, ratio)
    return totals.sum() / (n * (n - 1))


_PARALLEL = dict(_SERIAL, parallel=True)
transport_fused = numba.njit(**_PARALLEL)(_transport_all_rows)
proximity_fused = numba.njit(**_PARALLEL)(_proximity_all_rows)


#: Work in a layer (weights x kernel size, or neuron pairs n^2) from which the per-layer
#: parallel kernels beat kernels_network.network_costs. Step ratios against a plain
#: network, 2 cores, same process: [256, 256] network_costs 1.06-1.08x, parallel
#: 1.10-1.12x; [512, 512] 1.07-1.09x against 1.08-1.10x; [1024, 1024] 1.08-1.09x against
#: 1.07x.
PARALLEL_FROM = 1 << 19


def transport_layer(weight: np.ndarray, pos_out: np.ndarray, pos_in: np.ndarray, l2: bool,
                    eps: np.floating, coef: np.floating, mode: int, grad_weight: np.ndarray,
                    grad_out: np.ndarray, grad_in: np.ndarray) -> float:
    """transport_fused on all of numba's threads, grad_in (d, n_in) added to directly: one
    accumulator per thread (the array itself for one thread), summed into it afterwards."""
    chunks = numba.get_num_threads()
    parts = grad_in[None] if chunks == 1 else np.zeros((chunks, *grad_in.shape), grad_in.dtype)
    value = transport_fused(weight, pos_out, pos_in, l2, eps, coef, mode, grad_weight,
                            grad_out, parts)
    if chunks > 1 and mode != VALUE_ONLY:
        grad_in += parts.sum(0)
    return value
