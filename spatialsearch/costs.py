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


def _transport_cpu(weight: Tensor, pos_out: Tensor, pos_in: Tensor,
                   l2: bool) -> tuple[float, Tensor, Tensor, Tensor]:
    """Value and (dW, dP_out, dP_in) of transport from one kernel pass."""
    from spatialsearch.kernels import transport_fused, worker_chunks

    n_out, n_in = weight.shape[:2]
    weight3 = weight.detach().reshape(n_out, n_in, -1).contiguous()
    out_t = pos_out.detach().t().contiguous()  # (d, n_out)
    in_t = pos_in.detach().t().contiguous()  # (d, n_in)
    grad_weight = torch.empty_like(weight3)
    grad_out = torch.empty_like(out_t)
    grad_in_parts = out_t.new_empty((worker_chunks(), *in_t.shape))
    value = transport_fused(
        weight3.numpy(), out_t.numpy(), in_t.numpy(), l2, out_t.numpy().dtype.type(EPS),
        grad_weight.numpy(), grad_out.numpy(), grad_in_parts.numpy(),
    )
    return value, grad_weight.view(weight.shape), grad_out.t(), grad_in_parts.sum(0).t()


def _proximity_cpu(positions: Tensor) -> tuple[float, Tensor]:
    """Value and dP of proximity from one kernel pass."""
    from spatialsearch.kernels import proximity_fused

    if positions.shape[0] < 2:
        return 0.0, torch.zeros_like(positions)
    pos_t = positions.detach().t().contiguous()  # (d, n)
    grad = torch.empty_like(pos_t)
    array = pos_t.numpy()
    value = proximity_fused(array, array.dtype.type(EPS), grad.numpy(),
                            positions.dtype == torch.float32)
    return value, grad.t()


class _FusedPenalty(torch.autograd.Function):
    """CPU alpha * Proximity + beta * Transport of a whole network as one autograd node.

    Inputs: alpha, beta, l2, where, then the L + 1 weights and L + 1 positions. Returns the
    0-d penalty; the unscaled (Proximity, Transport) are left on ctx for logging. The
    gradients are scaled by alpha / beta in the forward pass, and the backward multiplies by
    the incoming gradient only when it is not 1 (loss.backward() gives 1): together ~40% of
    the cost terms' per-step time at [256, 256] (benchmarks/bench_step.py).
    """

    @staticmethod
    def forward(ctx: FunctionCtx, alpha: float, beta: float, l2: bool,
                where: tuple[int, ...], *tensors: Tensor) -> Tensor:
        values, prox_grads, trans_grads = _network_costs(l2, where, tensors)
        grads: list[Tensor | None] = []
        for prox, trans in zip(prox_grads, trans_grads):
            parts = [g.mul_(scale) for g, scale in ((prox, alpha), (trans, beta))
                     if g is not None and scale != 0]
            grads.append(None if not parts else parts[0] if len(parts) == 1 else
                         parts[0].add_(parts[1]))
        ctx.grads = grads
        penalty = alpha * values[0] + beta * values[1]
        result = tensors[0].new_tensor(penalty)
        result.costs = values  # (Proximity, Transport) as floats, for logging
        return result

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        if float(grad) == 1.0:
            return (None, None, None, None, *ctx.grads)
        return (None, None, None, None, *(None if g is None else g * grad for g in ctx.grads))


def _network_costs(l2: bool, where: tuple[int, ...], tensors: Sequence[Tensor]
                   ) -> tuple[tuple[float, float], list[Tensor | None], list[Tensor | None]]:
    """(Proximity, Transport) values and per-input gradients of each, from the kernels."""
    count = len(tensors) // 2
    weights, positions = tensors[:count], tensors[count:]
    transported = [k for k in where if k >= 1]
    prox_grads: list[Tensor | None] = [None] * len(tensors)
    trans_grads: list[Tensor | None] = [None] * len(tensors)
    prox_total = trans_total = 0.0
    for k in where:
        value, grad = _proximity_cpu(positions[k])
        prox_total += value
        prox_grads[count + k] = grad.div_(len(where))
    for k in transported:
        value, grad_w, grad_out, grad_in = _transport_cpu(
            weights[k], positions[k], positions[k - 1], l2)
        trans_total += value
        share = len(transported)
        trans_grads[k] = grad_w.div_(share)
        for index, grad in ((count + k, grad_out), (count + k - 1, grad_in)):
            grad = grad / share
            previous = trans_grads[index]
            trans_grads[index] = grad if previous is None else previous + grad
    values = (prox_total / len(where) if where else 0.0,
              trans_total / len(transported) if transported else 0.0)
    return values, prox_grads, trans_grads


class _FusedNetworkCosts(torch.autograd.Function):
    """CPU (Proximity, Transport) of a whole network in one autograd node -> (2,) tensor.

    Inputs: l2, where (layer indices), then the L + 1 weights and the L + 1 positions.
    One node instead of one per layer and cost keeps per-step Python and autograd overhead
    low: at [256, 256] it was a third of the cost terms' time.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, l2: bool, where: tuple[int, ...],
                *tensors: Tensor) -> Tensor:
        values, prox_grads, trans_grads = _network_costs(l2, where, tensors)
        ctx.grads = prox_grads, trans_grads
        return tensors[0].new_tensor(values)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        scaled: list[Tensor | None] = []
        for prox, trans in zip(*ctx.grads):
            parts = [g * grad[i] for i, g in enumerate((prox, trans)) if g is not None]
            scaled.append(None if not parts else parts[0] if len(parts) == 1 else sum(parts))
        return (None, None, *scaled)


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
    if _fused(*weights, *positions):
        both = _FusedNetworkCosts.apply(norm == "l2", tuple(where), *weights, *positions)
        return both[0], both[1]
    zero = positions[0].new_zeros(())
    prox = [proximity(positions[k]) for k in where]
    trans = [transport(weights[k], positions[k], positions[k - 1], norm)
             for k in where if k >= 1]
    return (torch.stack(prox).mean() if prox else zero,
            torch.stack(trans).mean() if trans else zero)
