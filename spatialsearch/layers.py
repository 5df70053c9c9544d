"""Spatial layers: ordinary linear and convolution layers whose neurons have 2-D positions.

Positions enter no forward pass, only the costs (docs/reference.md, model 3). They are a
parameter of shape (n_out, d), one row per neuron (linear) or output channel (convolution);
the original stored (d, n_out). Both layers save and load through `state_dict` like their parents.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _init_positions(count: int, dim: int) -> nn.Parameter:
    """N(0, 1) positions, (count, dim)."""
    return nn.Parameter(torch.randn(count, dim))


class SpatialLinear(nn.Linear):
    """y = x W^T + b, with neuron positions P.

    Args:
        in_features: n_in.
        out_features: n_out, the number of neurons.
        dim: d, dimensions of position space.
    Shapes: x (B, n_in) -> y (B, n_out); weight (n_out, n_in); positions (n_out, d).
    """

    def __init__(self, in_features: int, out_features: int, dim: int = 2) -> None:
        super().__init__(in_features, out_features)
        self.positions = _init_positions(out_features, dim)

    @property
    def num_neurons(self) -> int:
        return self.out_features


class SpatialConv2d(nn.Conv2d):
    """Convolution with one position per output channel; padding "same", stride 1.

    Args:
        in_channels: n_in.
        out_channels: n_out, the number of "neurons" (channels).
        kernel: odd kernel size k.
        dim: d, dimensions of position space.
    Shapes: x (B, n_in, H, W) -> y (B, n_out, H, W); weight (n_out, n_in, k, k);
        positions (n_out, d).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3,
                 dim: int = 2) -> None:
        super().__init__(in_channels, out_channels, kernel, padding="same")
        self.positions = _init_positions(out_channels, dim)

    @property
    def num_neurons(self) -> int:
        return self.out_channels


SpatialLayer = SpatialLinear | SpatialConv2d


def neuron_outputs(layer: SpatialLayer, output: Tensor) -> Tensor:
    """Per-neuron view of a layer's output: (B, n_out) for linear, channel mean for conv."""
    return output.mean(dim=(2, 3)) if output.dim() == 4 else output
