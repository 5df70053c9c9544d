"""Naive float64 loop versions of the costs, written from SPEC section 4's formulas alone."""

from __future__ import annotations

import math

import torch
from torch import Tensor

EPS = 1e-8


def distance(a: Tensor, b: Tensor) -> Tensor:
    return torch.sqrt(((a - b) ** 2).sum() + EPS)


def proximity(positions: Tensor) -> Tensor:
    """mean over ordered pairs i != j of exp(-||p_i - p_j||); 0 for fewer than 2 neurons
    (no pairs), as costs.proximity defines it."""
    n = positions.shape[0]
    total = positions.new_zeros(())
    if n < 2:
        return total + positions.sum() * 0
    for i in range(n):
        for j in range(n):
            if i != j:
                total = total + torch.exp(-distance(positions[i], positions[j]))
    return total / (n * (n - 1))


def transport(weight: Tensor, pos_out: Tensor, pos_in: Tensor, norm: str) -> Tensor:
    """mean over (i, j) of ||p_i - q_j|| * f(W_ij), f summed over a conv kernel."""
    n_out, n_in = weight.shape[:2]
    total = weight.new_zeros(())
    for i in range(n_out):
        for j in range(n_in):
            w = weight[i, j]
            f = (w**2).sum() if norm == "l2" else w.abs().sum()
            total = total + distance(pos_out[i], pos_in[j]) * f
    return total / (n_out * n_in)


def network_costs(layers: list, where: list[int], norm: str) -> tuple[Tensor, Tensor]:
    prox = [proximity(layers[k].positions) for k in where]
    trans = [transport(layers[k].weight, layers[k].positions, layers[k - 1].positions, norm)
             for k in where if k >= 1]
    mean = lambda xs: sum(xs) / len(xs) if xs else torch.zeros((), dtype=torch.float64)  # noqa
    return mean(prox), mean(trans)


def exp_neg(d: float) -> float:
    return math.exp(-d)
