"""Spatial networks built from a ModelConfig: a stack of spatial layers and a multi-task head.

Linear:      flatten -> [SpatialLinear(h_i) -> act]* -> SpatialLinear(T*C) head
Convolution: [SpatialConv2d(h_i) -> act]* -> global average pool -> SpatialLinear(T*C) head
The head's output is always viewed as (B, T, C), task-major (the original mixed two layouts).
The original's convolution model never ran; this one trains, saves and loads.
"""

from __future__ import annotations

from torch import Tensor, nn

from spatialsearch.config import ModelConfig, TrialConfig
from spatialsearch.layers import SpatialConv2d, SpatialLayer, SpatialLinear


class SpatialNetwork(nn.Module):
    """x (B, C_in, H, W) -> logits (B, T, C).

    Args:
        config: layer type, hidden widths h_0..h_{L-1}, activation, kernel, position dims.
        input_shape: (C_in, H, W) the network sees.
        num_tasks: T.
        labels: C, classes per task.
    """

    def __init__(self, config: ModelConfig, input_shape: tuple[int, int, int],
                 num_tasks: int, labels: int) -> None:
        super().__init__()
        self.num_tasks, self.labels = num_tasks, labels
        self.convolutional = config.type == "convolution"
        channels, height, width = input_shape
        width_in = channels if self.convolutional else channels * height * width
        hidden: list[SpatialLayer] = []
        for width_out in config.layers:
            if self.convolutional:
                hidden.append(SpatialConv2d(width_in, width_out, config.kernel, config.dim))
            else:
                hidden.append(SpatialLinear(width_in, width_out, config.dim))
            width_in = width_out
        self.hidden = nn.ModuleList(hidden)
        activation = getattr(nn, config.activation)
        self.activations = nn.ModuleList(activation() for _ in config.layers)
        self.head = SpatialLinear(width_in, num_tasks * labels, config.dim)

    @property
    def spatial_layers(self) -> list[SpatialLayer]:
        """The L + 1 spatial layers, index k = 0..L; k = L is the head."""
        return [*self.hidden, self.head]

    def features(self, x: Tensor) -> list[Tensor]:
        """Every spatial layer's output: hidden after its activation, the head's (B, T*C)."""
        outputs = []
        h = x if self.convolutional else x.flatten(1)
        for layer, activation in zip(self.hidden, self.activations):
            h = activation(layer(h))
            outputs.append(h)
        if self.convolutional:
            h = h.mean(dim=(2, 3))
        outputs.append(self.head(h))
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[-1].view(-1, self.num_tasks, self.labels)


def build_model(config: TrialConfig) -> SpatialNetwork:
    """The network a TrialConfig describes (positions and weights freshly initialised)."""
    data = config.data
    return SpatialNetwork(config.model, data.input_shape, data.num_tasks, data.labels)
