"""The CPU path of the costs: numba kernels (spatialsearch.kernels) called from numpy views of
the parameters, per layer (the autograd functions of costs) or for a whole network in one call
from a CostWorkspace kept across steps (costs.penalised_backward, the training path)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

EPS = 1e-8  # added to squared distances: coincident neurons give D = 1e-4, never NaN


def _kernel_layout(positions: Tensor) -> np.ndarray:
    """(n, d) positions -> (d, n) contiguous array, the kernels' layout (a copy)."""
    return np.ascontiguousarray(positions.detach().numpy().T)


def transport_cpu(weight: Tensor, pos_out: Tensor, pos_in: Tensor, l2: bool
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


def proximity_cpu(positions: Tensor) -> tuple[float, Tensor]:
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
    workspace a step is one kernels_network.network_costs call. Rebuilt when a parameter's memory
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
        """kernels_network.network_costs, layer by layer with the parallel kernels (large
        layers)."""
        from spatialsearch import kernels, kernels_network

        with_grads = mode != kernels.VALUE_ONLY
        eps = self.dtype(EPS)
        kernels_network.lay_out(self.positions, self.layouts, self.sums, self.used, with_grads)
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
            kernels_network.hand_over(self.sums, self.position_grad_arrays, moved)
        return prox_total, trans_total


def network_costs(weights: Sequence[Tensor], positions: Sequence[Tensor], where: Sequence[int],
                   l2: bool, alpha: float, beta: float, mode: int,
                   workspace: CostWorkspace | None = None
                   ) -> tuple[tuple[float, float], list[Tensor | None], list[Tensor | None]]:
    """(Proximity, Transport) of a network and the gradients of alpha * P + beta * T.

    Returns the two unscaled costs, then per layer the weight gradients (None where there is
    none) and the position gradients (None where there is none): the workspace's tensors,
    valid until its next step (a fresh workspace when none is given). A term scaled by 0 gets
    no gradient pass.
    """
    from spatialsearch import kernels, kernels_network

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
        prox_sum, trans_sum = kernels_network.network_costs(
            space.weights, space.positions, space.layouts, space.sums, space.weight_grad_arrays,
            space.position_grad_arrays, space.where, space.used, moved, l2, dtype(EPS),
            dtype(prox_coef), dtype(trans_coef), mode)
    return ((prox_sum / prox_count if prox_count else 0.0,
             trans_sum / trans_count if trans_count else 0.0), weight_grads, position_grads)
