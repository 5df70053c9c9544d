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


def _transport_cpu(weight: Tensor, pos_out: Tensor, pos_in: Tensor, l2: bool,
                   coef: float = 1.0, mode: int = 1
                   ) -> tuple[float, Tensor | None, Tensor | None, Tensor | None]:
    """T and coef * (dT/dW, dT/dP_out, dT/dP_in) from one kernel pass.

    mode (spatialsearch.kernels): VALUE_ONLY returns (T, None, None, None); WRITE returns a
    fresh dW; ADD adds coef * dT/dW into weight.grad in place and returns None for it.
    """
    from spatialsearch.kernels import ADD, VALUE_ONLY, transport_fused, worker_chunks

    n_out, n_in = weight.shape[:2]
    weight3 = weight.detach().reshape(n_out, n_in, -1).contiguous()
    out_t = pos_out.detach().t().contiguous()  # (d, n_out)
    in_t = pos_in.detach().t().contiguous()  # (d, n_in)
    if mode == VALUE_ONLY:  # untouched placeholders of the same array types
        grad_weight, grad_out = weight3.new_empty((0, 0, 0)), out_t.new_empty((0, 0))
        grad_in_parts = out_t.new_empty((worker_chunks(), 0, 0))
    else:
        grad_weight = (weight.grad.view(weight3.shape) if mode == ADD
                       else torch.empty_like(weight3))
        grad_out = torch.empty_like(out_t)
        grad_in_parts = out_t.new_empty((worker_chunks(), *in_t.shape))
    dtype = out_t.numpy().dtype.type
    value = transport_fused(
        weight3.numpy(), out_t.numpy(), in_t.numpy(), l2, dtype(EPS), dtype(coef), mode,
        grad_weight.numpy(), grad_out.numpy(), grad_in_parts.numpy(),
    )
    if mode == VALUE_ONLY:
        return value, None, None, None
    returned = None if mode == ADD else grad_weight.view(weight.shape)
    return value, returned, grad_out.t(), grad_in_parts.sum(0).t()


def _proximity_cpu(positions: Tensor, coef: float = 1.0,
                   with_grad: bool = True) -> tuple[float, Tensor | None]:
    """P and coef * dP/dpositions (None without with_grad) from one kernel pass."""
    from spatialsearch.kernels import proximity_fused

    if positions.shape[0] < 2:
        return 0.0, torch.zeros_like(positions) if with_grad else None
    pos_t = positions.detach().t().contiguous()  # (d, n)
    grad = torch.empty_like(pos_t) if with_grad else pos_t.new_empty((0, 0))
    array = pos_t.numpy()
    dtype = array.dtype.type
    value = proximity_fused(array, dtype(EPS), dtype(coef), with_grad, grad.numpy(),
                            positions.dtype == torch.float32)
    return value, grad.t() if with_grad else None


def _network_costs(weights: Sequence[Tensor], positions: Sequence[Tensor], where: Sequence[int],
                   l2: bool, alpha: float, beta: float, mode: int
                   ) -> tuple[tuple[float, float], list[Tensor | None], list[Tensor | None]]:
    """(Proximity, Transport) of a network and the gradients of alpha * P + beta * T.

    Returns the two unscaled costs, then per layer the weight gradients (None where there is
    none, and always under mode ADD, which added them to each weight's .grad) and the
    position gradients (None where there is none). A term scaled by 0 gets no gradient pass.
    """
    from spatialsearch.kernels import VALUE_ONLY

    transported = [k for k in where if k >= 1]
    weight_grads: list[Tensor | None] = [None] * len(weights)
    position_grads: list[Tensor | None] = [None] * len(positions)

    def add(k: int, grad: Tensor | None) -> None:
        if grad is not None:
            position_grads[k] = grad if position_grads[k] is None else position_grads[k] + grad

    prox_coef = alpha / max(len(where), 1)
    prox_total = 0.0
    for k in where:
        value, grad = _proximity_cpu(positions[k], prox_coef,
                                     mode != VALUE_ONLY and prox_coef != 0)
        prox_total += value
        add(k, grad)
    trans_coef = beta / max(len(transported), 1)
    trans_mode = VALUE_ONLY if trans_coef == 0 else mode
    trans_total = 0.0
    for k in transported:
        value, weight_grads[k], grad_out, grad_in = _transport_cpu(
            weights[k], positions[k], positions[k - 1], l2, trans_coef, trans_mode)
        trans_total += value
        add(k, grad_out)
        add(k - 1, grad_in)
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
    0-d tensors elsewhere (no device sync per step). On the CPU fit.backward() runs first and the kernels then add the penalty's
    gradients straight into each weight's .grad (kernels.ADD): the same gradients as
    (fit + penalty).backward(), without a fresh dW per layer and autograd's pass adding it
    in, which cost more than the kernels themselves at [1024, 1024]. Elsewhere (CUDA) it is
    (fit + spatial_penalty(...)).backward(). With alpha = beta = 0 the costs are measured for
    logging without any gradient work, and only fit is backpropagated.
    """
    from spatialsearch.kernels import ADD, VALUE_ONLY

    weights = [layer.weight for layer in layers]
    positions = [layer.positions for layer in layers]
    no_penalty = alpha == 0 and beta == 0
    if not _fused(*weights, *positions):  # floats would sync the device every step
        with torch.set_grad_enabled(not no_penalty):
            prox, trans = spatial_costs(layers, where, norm)
            penalty = alpha * prox + beta * trans
        (fit if no_penalty else fit + penalty).backward()
        return penalty.detach(), prox.detach(), trans.detach()
    fit.backward()
    if not no_penalty:
        for weight in weights:  # every weight reaches fit, so .grad exists: kept as a guard
            if weight.grad is None or not weight.grad.is_contiguous():
                weight.grad = (torch.zeros_like(weight) if weight.grad is None
                               else weight.grad.contiguous())
    values, _, position_grads = _network_costs(weights, positions, where, norm == "l2", alpha,
                                               beta, VALUE_ONLY if no_penalty else ADD)
    for position, grad in zip(positions, position_grads):
        if grad is not None:
            if position.grad is None:
                position.grad = grad.contiguous()
            else:
                position.grad.add_(grad)
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
