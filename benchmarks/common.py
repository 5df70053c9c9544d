"""Shared benchmark helpers: timing (warm-up, median, IQR), the plain baseline net, records."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from typing import Callable

import torch
from torch import nn


def time_ms(step: Callable[[], None], *, warmup: int = 5, repeats: int = 20,
            inner: int = 1) -> tuple[float, float]:
    """(median, IQR) in ms of `inner` calls of step, over `repeats` timings after warm-up."""
    for _ in range(warmup):
        step()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(inner):
            step()
        samples.append((time.perf_counter() - started) * 1000 / inner)
    q = statistics.quantiles(samples, n=4)
    return statistics.median(samples), q[2] - q[0]


def interleaved_ms(steps: dict[str, Callable[[], None]], *, warmup: int = 5, repeats: int = 20,
                   inner: int = 10) -> dict[str, tuple[float, float]]:
    """(median, IQR) ms per call of several steps. A sample is `inner` calls in a row (as
    training runs one network's steps back to back); the steps take turns, in reversed order
    every other round, so drift and whose caches are warm hit all alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for round_ in range(repeats):
        for name in names if round_ % 2 == 0 else reversed(names):
            step = steps[name]
            started = time.perf_counter()
            for _ in range(inner):
                step()
            samples[name].append((time.perf_counter() - started) * 1000 / inner)
    out = {}
    for name, values in samples.items():
        q = statistics.quantiles(values, n=4)
        out[name] = (statistics.median(values), q[2] - q[0])
    return out


def plain_network(in_features: int, widths: list[int], outputs: int,
                  activation: str = "Sigmoid") -> nn.Sequential:
    """The same layers as a linear SpatialNetwork, as plain nn.Linear, no positions."""
    layers: list[nn.Module] = [nn.Flatten()]
    for width in widths:
        layers += [nn.Linear(in_features, width), getattr(nn, activation)()]
        in_features = width
    layers.append(nn.Linear(in_features, outputs))
    return nn.Sequential(*layers)


def git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def record(name: str, **fields: object) -> dict:
    """Print one JSON line for the benchmark and return it."""
    line = {"name": name, "torch": torch.__version__, "git": git_sha(), **fields}
    print(json.dumps(line))
    return line


def table(rows: list[list[str]], header: list[str]) -> str:
    """A Markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa
    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(fmt, rows)])
