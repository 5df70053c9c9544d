"""(c) seconds per epoch of 60,000 concatenated pairs: spatial (both costs) vs plain.

Usage:
    python benchmarks/bench_epoch.py [--samples 60000] [--widths 256 256] [--batch 256]
Same data path for both (device tensors, index permutations; 28x28 pairs written in
torchvision's format), same optimizer (fused Adam 5e-3): the ratio isolates what spatial
layers and costs add to a whole epoch. Ours is spatialsearch.train.Trainer.train_epoch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import device_name, plain_network, record, table  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.data.modes import TaskBatches  # noqa: E402
from spatialsearch.data.sources import load_task_data  # noqa: E402
from spatialsearch.evaluation import task_loss  # noqa: E402
from spatialsearch.train import Trainer  # noqa: E402
from tests.idx_files import write_dataset  # noqa: E402


def measure(samples: int, widths: list[int], batch: int, device: torch.device) -> dict:
    with tempfile.TemporaryDirectory() as root:
        for seed, name in enumerate(("MNIST", "FashionMNIST")):
            write_dataset(Path(root), name, train=samples, test=100, seed=seed)
        config = trial_config_from_dict({
            "datasets": ["MNIST", "FashionMNIST"], "labels": 10, "root": root, "batch": batch,
            "layers": widths, "proximity": 1, "transport": 10, "validation_fraction": 0.001,
            "device": device.type})
        data = load_task_data(config.data, 1, device)
    trainer = Trainer(config, data)
    plain = plain_network(1568, widths, 20).to(device)
    optimizer = torch.optim.Adam(plain.parameters(), 5e-3, fused=True)
    batches = TaskBatches(data.train, "concatenate", "random", batch, torch.Generator())

    def plain_epoch() -> None:
        for x, y in batches.epoch():
            optimizer.zero_grad(set_to_none=True)
            task_loss(plain(x).view(-1, 2, 10), y).backward()
            optimizer.step()

    def spatial_epoch() -> None:
        trainer.train_epoch()

    times: dict[str, list[float]] = {"spatial": [], "plain": []}
    for repeat in range(6):  # first round is warm-up; the fastest of the rest counts
        for name, epoch in (("spatial", spatial_epoch), ("plain", plain_epoch)):
            started = time.perf_counter()
            epoch()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if repeat:
                times[name].append(time.perf_counter() - started)
    spatial, plain_s = min(times["spatial"]), min(times["plain"])
    return record("epoch", samples=batches.num_samples, widths=widths, batch=batch,
                  device=device_name(device), spatial_s=round(spatial, 2),
                  plain_s=round(plain_s, 2), ratio=round(spatial / plain_s, 3))


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    r = measure(args.samples, args.widths, args.batch, torch.device(args.device))
    rows = [[str(r["samples"]), str(r["widths"]), f"{r['spatial_s']:.2f}", f"{r['plain_s']:.2f}",
             f"{r['ratio']:.2f}x"]]
    print(table(rows, ["pairs", "widths", "spatial s/epoch", "plain s/epoch", "ratio"]))
    return rows


if __name__ == "__main__":
    main()
