"""A network cut down to some of its hidden neurons: what the positions split (and
analysis/split.py) evaluate."""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from spatialsearch.models import SpatialNetwork


def apply_masks(model: SpatialNetwork, masks: list[Tensor]) -> SpatialNetwork:
    """A copy whose hidden neuron n of layer k is scaled by masks[k][n] (n_k,): incoming
    weights and bias zeroed where the mask is 0, outgoing weights multiplied by the mask."""
    network = copy.deepcopy(model)
    layers = network.spatial_layers
    with torch.no_grad():
        for k, mask in enumerate(masks):
            mask = mask.to(layers[k].weight.device, layers[k].weight.dtype)
            removed = mask == 0
            layers[k].weight[removed] = 0.0
            layers[k].bias[removed] = 0.0
            outgoing = layers[k + 1].weight  # (n_{k+1}, n_k, ...)
            shape = [1, -1] + [1] * (outgoing.dim() - 2)
            outgoing.mul_(mask.view(shape))
    return network.eval()
