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


def _transport_cpu(weight: Tensor, pos_out: Tensor, pos_in: Tensor, l2: bool
                   ) -> tuple[float, Tensor, Tensor, Tensor]:
    """T and (dT/dW, dT/dP_out, dT/dP_in) of one layer (the per-layer autograd API)."""
    from spatialsearch import kernels

    out, inp = _kernel_layout(pos_out), _kernel_layout(pos_in)
    grad_out, grad_in = np.zeros_like(out), np.zeros_like(inp)
    weight3 = weight.detach().reshape(*weight.shape[:2], -1).contiguous()
    grad_weight = torch.empty_like(weight3)
    dtype = out.dtype.type
    value = kernels.transport_layer(weight3.numpy(), out, inp, l2, dtype(EPS), dtype(1.0),
                                    kernels.WRITE, grad_weight.numpy(), grad_out, grad_in)
    return (value, grad_weight.view(weight.shape), torch.from_numpy(grad_out.T),
            torch.from_numpy(grad_in.T))


def _proximity_cpu(positions: Tensor) -> tuple[float, Tensor]:
    """P and dP/dpositions of one layer (the per-layer autograd API)."""
    from spatialsearch.kernels import proximity_fused

    pos = _kernel_layout(positions)
    grad = np.zeros_like(pos)
    dtype = pos.dtype.type
    value = proximity_fused(pos, dtype(EPS), dtype(1.0), True, grad)
    return value, torch.from_numpy(grad.T)


class CostWorkspace:
    """What the CPU costs of one network keep from one step to the next.

    numpy views of the weights (n_out, n_in, K) and positions (n, d) (the parameters' own
    memory), the kernels' (d, n) position layouts and gradient sums, and the gradient
    tensors handed to the parameters as .grad. At [256, 256] building these every step, and
    calling the kernels layer by layer from Python, cost more than the kernels; with the
    workspace a step is one kernels.network_costs call. Rebuilt when a parameter's memory
    or dtype, or `where`, changes, and when a parameter still holds one of its gradient
    tensors as .grad (gradients accumulated without zero_grad(set_to_none=True)), so that a
    step never overwrites a gradient someone holds.
    """

    def __init__(self) -> None:
        self._key: tuple = ()
        self._handed: dict[tuple[bool, bool], tuple] = {}

    def prepare(self, weights: Sequence[Tensor], positions: Sequence[Tensor],
                where: Sequence[int]) -> None:
        """Views and arrays for these parameters (rebuilt only when something changed)."""
        key = (tuple(where), weights[0].dtype, *(t.data_ptr() for t in weights),
               *(t.data_ptr() for t in positions))
        if key == self._key and not self._held(weights, positions):
            return
        from spatialsearch.kernels import PARALLEL_FROM

        dtype = weights[0].detach().numpy().dtype
        self.where = np.asarray(where, np.int64)
        self.transported = [k for k in where if k >= 1]
        self.weights = tuple(w.detach().view(*w.shape[:2], -1).numpy() for w in weights)
        self.positions = tuple(p.detach().numpy() for p in positions)
        self.layouts = tuple(np.empty(p.shape[::-1], dtype) for p in self.positions)
        self.sums = tuple(np.empty_like(layout) for layout in self.layouts)
        self.weight_grads = [torch.empty_like(w) if k in self.transported else None
                             for k, w in enumerate(weights)]
        self.weight_grad_arrays = tuple(
            np.empty((0, 0, 0), dtype) if g is None else g.view(*g.shape[:2], -1).numpy()
            for g in self.weight_grads)
        self.position_grads = [torch.empty_like(p) for p in positions]
        self.position_grad_arrays = tuple(g.numpy() for g in self.position_grads)
        self.used = np.zeros(len(positions), np.bool_)
        self.used[list(where) + [k - 1 for k in self.transported]] = True
        work = [self.layouts[k].shape[1] ** 2 for k in where]
        work += [self.weights[k].size for k in self.transported]
        self.parallel = max(work, default=0) >= PARALLEL_FROM
        self.dtype = dtype.type
        self._key = key
        self._handed = {}

    def _held(self, weights: Sequence[Tensor], positions: Sequence[Tensor]) -> bool:
        """Does a parameter still hold one of our gradient tensors as its .grad?"""
        for parameter, mine in zip([*weights, *positions],
                                   [*self.weight_grads, *self.position_grads]):
            if (parameter.grad is not None and mine is not None
                    and parameter.grad.data_ptr() == mine.data_ptr()):
                return True
        return False

    def handed(self, prox_moves: bool, trans_moves: bool
               ) -> tuple[np.ndarray, list[Tensor | None], list[Tensor | None]]:
        """(moved flags, weight gradients, position gradients) of a step whose proximity
        and/or transport gradients are computed; None where a parameter gets none."""
        if (prox_moves, trans_moves) not in self._handed:
            moved = np.zeros_like(self.used)
            if prox_moves:
                moved[[k for k in self.where if self.layouts[k].shape[1] >= 2]] = True
            if trans_moves:
                moved[self.transported + [k - 1 for k in self.transported]] = True
            weight_grads = self.weight_grads if trans_moves else [None] * len(self.weights)
            position_grads = [g if moved[k] else None for k, g in enumerate(self.position_grads)]
            self._handed[prox_moves, trans_moves] = (moved, weight_grads, position_grads)
        return self._handed[prox_moves, trans_moves]

    def run_layers(self, l2: bool, prox_coef: float, trans_coef: float, mode: int,
                   moved: np.ndarray) -> tuple[float, float]:
        """kernels.network_costs, layer by layer with the parallel kernels (large layers)."""
        from spatialsearch import kernels

        with_grads = mode != kernels.VALUE_ONLY
        eps = self.dtype(EPS)
        kernels.lay_out(self.positions, self.layouts, self.sums, self.used, with_grads)
        prox_total = sum(
            kernels.proximity_fused(self.layouts[k], eps, self.dtype(prox_coef),
                                    with_grads and prox_coef != 0, self.sums[k])
            for k in self.where)
        trans_mode = kernels.VALUE_ONLY if trans_coef == 0 else mode
        trans_total = 0.0
        for k in self.transported:
            trans_total += kernels.transport_layer(
                self.weights[k], self.layouts[k], self.layouts[k - 1], l2, eps,
                self.dtype(trans_coef), trans_mode, self.weight_grad_arrays[k], self.sums[k],
                self.sums[k - 1])
        if with_grads:
            kernels.hand_over(self.sums, self.position_grad_arrays, moved)
        return prox_total, trans_total


def _network_costs(weights: Sequence[Tensor], positions: Sequence[Tensor], where: Sequence[int],
                   l2: bool, alpha: float, beta: float, mode: int,
                   workspace: CostWorkspace | None = None
                   ) -> tuple[tuple[float, float], list[Tensor | None], list[Tensor | None]]:
    """(Proximity, Transport) of a network and the gradients of alpha * P + beta * T.

    Returns the two unscaled costs, then per layer the weight gradients (None where there is
    none) and the position gradients (None where there is none): the workspace's tensors,
    valid until its next step (a fresh workspace when none is given). A term scaled by 0 gets
    no gradient pass.
    """
    from spatialsearch import kernels

    space = workspace if workspace is not None else CostWorkspace()
    space.prepare(weights, positions, where)
    prox_count, trans_count = len(where), len(space.transported)
    prox_coef = alpha / max(prox_count, 1)
    trans_coef = beta / max(trans_count, 1)
    with_grads = mode != kernels.VALUE_ONLY
    moved, weight_grads, position_grads = space.handed(with_grads and prox_coef != 0,
                                                       with_grads and trans_coef != 0)
    if space.parallel:
        prox_sum, trans_sum = space.run_layers(l2, prox_coef, trans_coef, mode, moved)
    else:
        dtype = space.dtype
        prox_sum, trans_sum = kernels.network_costs(
            space.weights, space.positions, space.layouts, space.sums, space.weight_grad_arrays,
            space.position_grad_arrays, space.where, space.used, moved, l2, dtype(EPS),
            dtype(prox_coef), dtype(trans_coef), mode)
    return ((prox_sum / prox_count if prox_count else 0.0,
             trans_sum / trans_count if trans_count else 0.0), weight_grads, position_grads)


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
    (CUDA) it is (fit + spatial_penalty(...)).backward(). With alpha = beta = 0 the costs are
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
    values, weight_grads, position_grads = _network_costs(
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
