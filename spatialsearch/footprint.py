"""How much memory one training run needs, estimated from its config before anything runs.

bytes ~= 28 P + 12 B A + D, where
    P = parameters (weights, biases, positions), float32: weights, gradients, Adam's two
        moments, the cost workspace's gradient arrays and scratch (2x), the best weights
        kept aside: 7 copies of 4 bytes;
    A = activations per sample (every layer's outputs; a convolution's are channels x H x W),
        B = the batch (4x for evaluation batches): outputs, pre-activations and their
        gradients, 12 bytes per value;
    D = the datasets' pixels, uint8, as loaded.
It is an estimate for refusing the impossible (a width of 10^6), not a prediction: Python,
torch and Ray add a few hundred MiB per worker on top.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from spatialsearch.config import TrialConfig
from spatialsearch.datasets import dataset_info


def parameters(config: TrialConfig) -> int:
    """Weights, biases and positions of the network the config builds."""
    data, model = config.data, config.model
    channels, height, width = data.input_shape
    outputs = data.num_tasks * data.labels
    sizes = [*model.layers, outputs]
    total, fan_in = 0, (channels if model.type == "convolution" else channels * height * width)
    for index, size in enumerate(sizes):
        head = index == len(sizes) - 1
        kernel = model.kernel ** 2 if model.type == "convolution" and not head else 1
        total += fan_in * size * kernel + size + size * model.dim
        fan_in = size
    return total


def activations_per_sample(config: TrialConfig) -> int:
    _, height, width = config.data.input_shape
    per_position = height * width if config.model.type == "convolution" else 1
    return sum(config.model.layers) * per_position + config.data.num_tasks * config.data.labels


def dataset_bytes(config: TrialConfig) -> int:
    pixels = 0
    for name in config.data.datasets:
        info = dataset_info(name)
        channels, height, width = info.shape
        samples = info.samples
        if config.data.train_samples:
            samples = min(samples, config.data.train_samples + 10000)
        pixels += samples * channels * height * width
    return pixels


def trial_bytes(config: TrialConfig) -> int:
    """The estimate of the module docstring, in bytes."""
    batch = 4 * config.data.batch  # evaluation batches are 4x the training batch
    return (28 * parameters(config) + 12 * batch * activations_per_sample(config)
            + dataset_bytes(config))


def available_bytes() -> int:
    """Memory available to new processes now (Linux MemAvailable; else physical memory)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**27 else f"{math.ceil(size / 2**20)} MiB"
