"""The two spatial cost terms, proximity and transport, as fused autograd functions.

On CPU tensors both run as one-pass numba kernels (spatialsearch.kernels) that return the value
and every gradient at once. Elsewhere (CUDA) they run as torch ops: both work on a pairwise
distance matrix D_ij = sqrt(||a_i - b_j||^2 + eps) computed once in the
forward pass (through ||a||^2 + ||b||^2 - 2 a.b, one small matmul) and kept for the backward
pass, whose position gradients are again small matmuls:
    d/da_i sum_j R_ij D_ij = a_i sum_j R_ij / D_ij - sum_j (R_ij / D_ij) b_j.
This avoids the (n, m, d) difference tensor and the second distance evaluation autograd would
do through `torch.cdist`, which is what made the original code 1.6-2.5x slower than a plain net.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from spatialsearch.layers import SpatialLayer

Norm = Literal["l1", "l2"]
EPS = 1e-8  # added to squared distances: coincident neurons give D = 1e-4, never NaN


def pairwise_distance(a: Tensor, b: Tensor) -> Tensor:
    """D_ij = sqrt(||a_i - b_j||^2 + EPS). a (n, d), b (m, d) -> (n, m), a.dtype."""
    squared = torch.addmm(
        (a * a).sum(1, keepdim=True), a, b.t(), alpha=-2.0
    ).add_((b * b).sum(1)[None, :])
    return squared.clamp_min_(0.0).add_(EPS).sqrt_()


def _position_grads(scale: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of sum_ij S_ij * D_ij's a and b parts given S_ij / D_ij = scale (n, m)."""
    grad_a = a * scale.sum(1, keepdim=True) - scale @ b
    grad_b = b * scale.sum(0)[:, None] - scale.t() @ a
    return grad_a, grad_b


class _TorchTransport(torch.autograd.Function):
    """mean_ij D(pos_out_i, pos_in_j) * f(W_ij), f summed over a convolution kernel."""

    @staticmethod
    def forward(ctx: FunctionCtx, weight: Tensor, pos_out: Tensor, pos_in: Tensor,
                l2: bool) -> Tensor:
        distance = pairwise_distance(pos_out, pos_in)  # (n_out, n_in)
        magnitude = weight.square() if l2 else weight.abs()
        if weight.dim() > 2:  # convolution: (n_out, n_in, kh, kw) -> (n_out, n_in)
            magnitude = magnitude.flatten(2).sum(2)
        ctx.save_for_backward(weight, pos_out, pos_in, distance, magnitude)
        ctx.l2 = l2
        return torch.dot(distance.flatten(), magnitude.flatten()) / distance.numel()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, pos_out, pos_in, distance, magnitude = ctx.saved_tensors
        scale = grad / distance.numel()
        grad_weight = grad_out = grad_in = None
        if ctx.needs_input_grad[0]:
            derivative = weight * 2.0 if ctx.l2 else weight.sign()
            spread = distance.view(*distance.shape, *([1] * (weight.dim() - 2)))
            grad_weight = derivative.mul_(spread).mul_(scale)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            ratio = magnitude.div(distance).mul_(scale)
            grad_out, grad_in = _position_grads(ratio, pos_out, pos_in)
        return grad_weight, grad_out, grad_in, None


class _TorchProximity(torch.autograd.Function):
    """mean over ordered pairs i != j of exp(-D(p_i, p_j))."""

    @staticmethod
    def forward(ctx: FunctionCtx, positions: Tensor) -> Tensor:
        n = positions.shape[0]
        distance = pairwise_distance(positions, positions)  # (n, n)
        closeness = distance.neg().exp_()
        closeness.diagonal().zero_()  # self-pairs excluded (the original counted them)
        ctx.save_for_backward(positions, distance, closeness)
        return closeness.sum() / (n * (n - 1))

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor]:
        positions, distance, closeness = ctx.saved_tensors
        n = positions.shape[0]
        # d exp(-D_ij) / dD_ij = -exp(-D_ij); rows and columns both move p_i, hence a + b.
        ratio = closeness.div(distance).mul_(-grad / (n * (n - 1)))
        grad_a, grad_b = _position_grads(ratio, positions, positions)
        return (grad_a + grad_b,)


def _kernel_layout(positions: Tensor) -> np.ndarray:
    """(n, d) positions -> (d, n) contiguous array, the kernels' layout (a copy)."""
    return np.ascontiguousarray(positions.detach().numpy().T)


def _proximity_into(pos: np.ndarray, coef: float, grad: np.ndarray | None) -> float:
    """P of one layer; coef * dP added into grad (d, n) unless it is None. pos (d, n)."""
    from spatialsearch.kernels import proximity_fused

    if pos.shape[1] < 2:
        return 0.0
    dtype = pos.dtype.type
    target = grad if grad is not None else np.empty((0, 0), pos.dtype)
    return proximity_fused(pos, dtype(EPS), dtype(coef), grad is not None, target,
                           pos.dtype == np.float32)


def _transport_into(weight: Tensor, out: np.ndarray, inp: np.ndarray, l2: bool, coef: float,
                    mode: int, grad_out: np.ndarray | None, grad_in: np.ndarray | None
                    ) -> tuple[float, Tensor | None]:
    """T of one layer from one kernel pass; out (d, n_out), inp (d, n_in) positions.

    mode (spatialsearch.kernels): VALUE_ONLY computes T only; WRITE returns a fresh
    coef * dT/dW and adds coef * dT/dP into grad_out (d, n_out) and grad_in (d, n_in).
    """
    from spatialsearch.kernels import VALUE_ONLY, transport_fused, worker_chunks

    n_out, n_in = weight.shape[:2]
    weight3 = weight.detach().reshape(n_out, n_in, -1)
    dtype = out.dtype.type
    fresh = None
    if mode == VALUE_ONLY:  # untouched placeholders of the same array types
        grad_weight, parts = np.empty((0, 0, 0), out.dtype), np.empty((worker_chunks(), 0, 0),
                                                                       out.dtype)
        grad_out = np.empty((0, 0), out.dtype)
    else:
        fresh = torch.empty_like(weight3)
        grad_weight = fresh.numpy()
        parts = np.empty((worker_chunks(), *inp.shape), out.dtype)
    value = transport_fused(weight3.contiguous().numpy(), out, inp, l2, dtype(EPS), dtype(coef),
                            mode, grad_weight, grad_out, parts)
    if mode != VALUE_ONLY:
        grad_in += parts.sum(0)
    return value, None if fresh is None else fresh.view(weight.shape)


def _transport_cpu(weight: Tensor, pos_out: Tensor, pos_in: Tensor, l2: bool
                   ) -> tuple[float, Tensor, Tensor, Tensor]:
    """T and (dT/dW, dT/dP_out, dT/dP_in) of one layer."""
    from spatialsearch.kernels import WRITE

    out, inp = _kernel_layout(pos_out), _kernel_layout(pos_in)
    grad_out, grad_in = np.zeros_like(out), np.zeros_like(inp)
    value, grad_weight = _transport_into(weight, out, inp, l2, 1.0, WRITE, grad_out, grad_in)
    return value, grad_weight, torch.from_numpy(grad_out.T), torch.from_numpy(grad_in.T)


def _proximity_cpu(positions: Tensor) -> tuple[float, Tensor]:
    """P and dP/dpositions of one layer."""
    pos = _kernel_layout(positions)
    grad = np.zeros_like(pos)
    return _proximity_into(pos, 1.0, grad), torch.from_numpy(grad.T)


def _network_costs(weights: Sequence[Tensor], positions: Sequence[Tensor], where: Sequence[int],
                   l2: bool, alpha: float, beta: float, mode: int
                   ) -> tuple[tuple[float, float], list[Tensor | None], list[Tensor | None]]:
    """(Proximity, Transport) of a network and the gradients of alpha * P + beta * T.

    Returns the two unscaled costs, then per layer the weight gradients (None where there is
    none) and the position gradients, (n, d) views (None where there is none). Each layer's
    positions are laid out for the kernels once and its position gradients summed in one
    numpy array: at [256, 256] torch's per-op overhead on these small arrays was as large as
    the kernels. A term scaled by 0 gets no gradient pass.
    """
    from spatialsearch.kernels import VALUE_ONLY

    transported = [k for k in where if k >= 1]
    used = sorted(set(where) | {k - 1 for k in transported})
    layout = {k: _kernel_layout(positions[k]) for k in used}
    with_grads = mode != VALUE_ONLY
    sums = {k: np.zeros_like(layout[k]) for k in used} if with_grads else {}
    moved: set[int] = set()
    prox_coef = alpha / max(len(where), 1)
    prox_total = 0.0
    for k in where:
        grad = sums[k] if with_grads and prox_coef != 0 else None
        prox_total += _proximity_into(layout[k], prox_coef, grad)
        if grad is not None and layout[k].shape[1] >= 2:
            moved.add(k)
    trans_coef = beta / max(len(transported), 1)
    trans_mode = VALUE_ONLY if trans_coef == 0 else mode
    weight_grads: list[Tensor | None] = [None] * len(weights)
    trans_total = 0.0
    for k in transported:
        value, weight_grads[k] = _transport_into(
            weights[k], layout[k], layout[k - 1], l2, trans_coef, trans_mode,
            sums.get(k), sums.get(k - 1))
        trans_total += value
        if trans_mode != VALUE_ONLY:
            moved.update((k, k - 1))
    position_grads: list[Tensor | None] = [
        torch.from_numpy(sums[k].T) if k in moved else None for k in range(len(positions))]
    return ((prox_total / len(where) if where else 0.0,
             trans_total / len(transported) if transported else 0.0),
            weight_grads, position_grads)


class _FusedPenalty(torch.autograd.Function):
    """CPU alpha * Proximity + beta * Transport of a whole network as one autograd node.

    Inputs: alpha, beta, l2, where, then the L + 1 weights and L + 1 positions. Returns the
    0-d penalty; the unscaled (Proximity, Transport) are left on it as .costs for logging.
    The kernels write gradients already scaled by alpha and beta, and the backward multiplies
    by the incoming gradient only when it is not 1 (loss.backward() gives 1).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, alpha: float, beta: float, l2: bool,
                where: tuple[int, ...], *tensors: Tensor) -> Tensor:
        from spatialsearch.kernels import WRITE

        count = len(tensors) // 2
        values, weight_grads, position_grads = _network_costs(
            tensors[:count], tensors[count:], where, l2, alpha, beta, WRITE)
        ctx.grads = [*weight_grads, *position_grads]
        result = tensors[0].new_tensor(alpha * values[0] + beta * values[1])
        result.costs = values  # (Proximity, Transport) as floats, for logging
        return result

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if float(grad) == 1.0:
            return (None, None, None, None, *ctx.grads)
        return (None, None, None, None, *(None if g is None else g * grad for g in ctx.grads))


class _FusedTransport(torch.autograd.Function):
    """CPU transport of one layer; backward scales the gradients the kernel wrote."""

    @staticmethod
    def forward(ctx: FunctionCtx, weight: Tensor, pos_out: Tensor, pos_in: Tensor,
                l2: bool) -> Tensor:
        value, *ctx.grads = _transport_cpu(weight, pos_out, pos_in, l2)
        return weight.new_tensor(value)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (*(g * grad for g in ctx.grads), None)


class _FusedProximity(torch.autograd.Function):
    """CPU proximity of one layer; backward scales the gradient the kernel wrote."""

    @staticmethod
    def forward(ctx: FunctionCtx, positions: Tensor) -> Tensor:
        value, ctx.grad = _proximity_cpu(positions)
        return positions.new_tensor(value)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor]:
        return (ctx.grad * grad,)


def _fused(*tensors: Tensor) -> bool:
    """Use the numba kernels: CPU tensors of float32/float64 (not under double backward)."""
    return all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
               for t in tensors)


def transport(weight: Tensor, pos_out: Tensor, pos_in: Tensor, norm: Norm) -> Tensor:
    """mean_ij ||pos_out_i - pos_in_j||_2 * f(W_ij), f = |w| (l1) or w**2 (l2).

    Args:
        weight: (n_out, n_in) linear weight, or (n_out, n_in, kh, kw) convolution weight whose
            f(W) is summed over the kernel per channel pair (SPEC section 4).
        pos_out: (n_out, d) positions of the layer's neurons.
        pos_in: (n_in, d) positions of the previous layer's neurons.
        norm: "l1" or "l2"; applies to the weight, not the distance.
    Returns:
        0-d tensor, weight.dtype; distances use sqrt(d^2 + 1e-8).
    """
    function = _FusedTransport if _fused(weight, pos_out, pos_in) else _TorchTransport
    return function.apply(weight, pos_out, pos_in, norm == "l2")


def proximity(positions: Tensor) -> Tensor:
    """mean_{i != j} exp(-||p_i - p_j||_2). positions (n, d), n >= 2 -> 0-d tensor.

    The original averaged over all n^2 pairs including the n self-pairs (a constant ~1/n with
    no gradient); we exclude them, so an evenly spread layer scores the same at every width.
    A layer of one neuron has no pairs and scores 0.
    """
    if positions.shape[0] < 2:
        return positions.sum() * 0.0
    function = _FusedProximity if _fused(positions) else _TorchProximity
    return function.apply(positions)


def spatial_penalty(layers: Sequence[SpatialLayer], where: Sequence[int], norm: Norm,
                    alpha: float, beta: float) -> tuple[Tensor, float, float]:
    """(alpha * Proximity + beta * Transport, Proximity, Transport): the penalty a training
    step adds to its task loss (0-d tensor) and the two unscaled costs as floats for logging.
    On the CPU one fused autograd node; elsewhere spatial_costs' torch ops."""
    weights = [layer.weight for layer in layers]
    positions = [layer.positions for layer in layers]
    if _fused(*weights, *positions):
        penalty = _FusedPenalty.apply(alpha, beta, norm == "l2", tuple(where), *weights,
                                      *positions)
        return penalty, penalty.costs[0], penalty.costs[1]
    prox, trans = spatial_costs(layers, where, norm)
    return alpha * prox + beta * trans, float(prox), float(trans)


def penalised_backward(fit: Tensor, layers: Sequence[SpatialLayer], where: Sequence[int],
                       norm: Norm, alpha: float, beta: float
                       ) -> tuple[float | Tensor, float | Tensor, float | Tensor]:
    """Backpropagate fit + alpha * Proximity + beta * Transport into the parameters' .grad.

    Returns (penalty, Proximity, Transport), the costs unscaled: floats on the CPU, detached
    0-d tensors elsewhere (no device sync per step). On the CPU the kernels first write the
    penalty's gradients (alpha and beta folded in) as the parameters' .grad, then
    fit.backward() adds the task gradients in place: the same gradients as
    (fit + penalty).backward(), without an autograd node and the passes that scaled and
    copied dW, which cost more than the kernels themselves at [1024, 1024]. (Kernels before
    the backward pass measured 2-3% faster per step at [256, 256] than after it.) Elsewhere
    (CUDA) it is (fit + spatial_penalty(...)).backward(). With alpha = beta = 0 the costs are
    measured for logging without any gradient work, and only fit is backpropagated.
    """
    from spatialsearch.kernels import VALUE_ONLY, WRITE

    weights = [layer.weight for layer in layers]
    positions = [layer.positions for layer in layers]
    no_penalty = alpha == 0 and beta == 0
    if not _fused(*weights, *positions):  # floats would sync the device every step
        with torch.set_grad_enabled(not no_penalty):
            prox, trans = spatial_costs(layers, where, norm)
            penalty = alpha * prox + beta * trans
        (fit if no_penalty else fit + penalty).backward()
        return penalty.detach(), prox.detach(), trans.detach()
    values, weight_grads, position_grads = _network_costs(
        weights, positions, where, norm == "l2", alpha, beta,
        VALUE_ONLY if no_penalty else WRITE)
    for parameter, grad in zip([*weights, *positions], [*weight_grads, *position_grads]):
        if grad is None:
            continue
        if parameter.grad is None:
            parameter.grad = grad.contiguous()  # positions: a copy of the (n, d) view
        else:
            parameter.grad.add_(grad)
    fit.backward()
    return alpha * values[0] + beta * values[1], values[0], values[1]


def spatial_costs(layers: Sequence[SpatialLayer], where: Sequence[int],
                  norm: Norm) -> tuple[Tensor, Tensor]:
    """(Proximity, Transport) of a network, each a 0-d tensor.

    layers: the L + 1 spatial layers k = 0..L; where: indices k that receive costs.
    Proximity = mean_{k in where} proximity(P_k).
    Transport = mean_{k in where, k >= 1} transport(W_k, P_k, P_{k-1}); layer 0 has none
    (input pixels have no positions). Empty selections give 0.
    """
    weights = [layer.weight for layer in layers]
    positions = [layer.positions for layer in layers]
    zero = positions[0].new_zeros(())
    prox = [proximity(positions[k]) for k in where]
    trans = [transport(weights[k], positions[k], positions[k - 1], norm)
             for k in where if k >= 1]
    return (torch.stack(prox).mean() if prox else zero,
            torch.stack(trans).mean() if trans else zero)
