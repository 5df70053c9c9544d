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

from typing import Any, Sequence

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx

from spatialsearch.config import Norm
from spatialsearch.cpu_costs import (
    EPS,
    CostWorkspace,
    network_costs,
    proximity_cpu,
    transport_cpu,
)
from spatialsearch.layers import SpatialLayer


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


class _FusedTransport(torch.autograd.Function):
    """CPU transport of one layer; backward scales the gradients the kernel wrote."""

    @staticmethod
    def forward(ctx: FunctionCtx, weight: Tensor, pos_out: Tensor, pos_in: Tensor,
                l2: bool) -> Tensor:
        value, *ctx.grads = transport_cpu(weight, pos_out, pos_in, l2)
        return weight.new_tensor(value)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (*(g * grad for g in ctx.grads), None)


class _FusedProximity(torch.autograd.Function):
    """CPU proximity of one layer; backward scales the gradient the kernel wrote."""

    @staticmethod
    def forward(ctx: FunctionCtx, positions: Tensor) -> Tensor:
        value, ctx.grad = proximity_cpu(positions)
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
            f(W) is summed over the kernel per channel pair (docs/reference.md, model 4).
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


def penalised_backward(fit: Tensor, layers: Sequence[SpatialLayer], where: Sequence[int],
                       norm: Norm, alpha: float, beta: float,
                       workspace: CostWorkspace | None = None
                       ) -> tuple[float | Tensor, float | Tensor, float | Tensor]:
    """Backpropagate fit + alpha * Proximity + beta * Transport into the parameters' .grad.

    Returns (penalty, Proximity, Transport), the costs unscaled: floats on the CPU, detached
    0-d tensors elsewhere (no device sync per step). On the CPU the kernels first write the
    penalty's gradients (alpha and beta folded in) as the parameters' .grad, then
    fit.backward() adds the task gradients in place: the same gradients as
    (fit + penalty).backward(), without an autograd node and the passes that scaled and
    copied dW, which cost more than the kernels themselves at [1024, 1024]. (Kernels before
    the backward pass measured 2-3% faster per step at [256, 256] than after it.) Elsewhere
    (CUDA) it is (fit + alpha * P + beta * T).backward(). With alpha = beta = 0 the costs are
    measured for logging without any gradient work, and only fit is backpropagated.
    workspace: the caller's CostWorkspace for this network, kept across steps (the CPU path
    reuses its arrays; its gradient tensors become the parameters' .grad).
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
    values, weight_grads, position_grads = network_costs(
        weights, positions, where, norm == "l2", alpha, beta,
        VALUE_ONLY if no_penalty else WRITE, workspace)
    for parameter, grad in zip([*weights, *positions], [*weight_grads, *position_grads]):
        if grad is None:
            continue
        if parameter.grad is None:
            parameter.grad = grad
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
