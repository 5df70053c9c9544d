"""Spatial networks built from a ModelConfig: a stack of spatial layers and a multi-task head.

Linear:      flatten -> [SpatialLinear(h_i) -> act]* -> SpatialLinear(T*C) head
Convolution: [SpatialConv2d(h_i) -> act]* -> global average pool -> SpatialLinear(T*C) head
The head's output is always viewed as (B, T, C), task-major (the original mixed two layouts).
The original's convolution model never ran; this one trains, saves and loads. Deliberate
change: the convolution model starts from init_pooled_network_, because torch's default
init kept the reference command's Sigmoid network at chance for 50 epochs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spatialsearch.config import ModelConfig, TrialConfig
from spatialsearch.layers import SpatialConv2d, SpatialLayer, SpatialLinear

# Init gain of the convolution model per activation where torch's calculate_gain is not used.
# Sigmoid: 8 (torch says 1). Chosen on digits, reference command with --type convolution,
# seeds 1-3: best validation accuracy 0.976-0.993 at 8 (0.26 with torch's init; 0.93-0.96 at 6).
_CONVOLUTION_GAINS = {"Sigmoid": 8.0}


def convolution_gain(activation: str) -> float:
    """Gain of init_pooled_network_: the table above, else torch's gain for the activation
    (ReLU sqrt(2), Tanh 5/3, SELU 3/4), else 1."""
    if activation in _CONVOLUTION_GAINS:
        return _CONVOLUTION_GAINS[activation]
    try:
        return nn.init.calculate_gain(activation.lower())
    except ValueError:
        return 1.0


@torch.no_grad()
def init_pooled_network_(layers: list[SpatialLayer], gain: float) -> None:
    """W ~ N(0, (gain / sqrt(fan_in))^2), filters then centred (minus each filter's mean), biases
    zero; fan_in = n_in (* k * k). Positions keep their N(0, 1) init.

    A centred filter maps a constant input to its bias, so the positive mean of the previous
    layer's outputs (1/2 after a Sigmoid) does not drown the variation that reaches the global
    average pool; the pooled features then vary little between images, and the head's larger
    weights carry that variation to the logits. Both were needed (centring alone: 0.35).
    """
    for layer in layers:
        fan_in = layer.weight[0].numel()
        layer.weight.normal_(0.0, gain / fan_in**0.5)
        if layer.weight.dim() == 4:
            layer.weight -= layer.weight.mean(dim=(1, 2, 3), keepdim=True)
        layer.bias.zero_()


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
        if self.convolutional:
            init_pooled_network_(self.spatial_layers, convolution_gain(config.activation))

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
