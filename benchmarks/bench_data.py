"""(b) training samples per second: our device-resident data path vs a DataLoader.

Usage:
    python benchmarks/bench_data.py [--samples 60000] [--batch 256]
Both read the same torchvision MNIST and FashionMNIST objects (files written in torchvision's
IDX format into a temporary folder: no download). Baseline, the original's way: a Dataset whose
__getitem__ indexes one sample of each torchvision dataset (PIL image + ToTensor) and stacks them
(concatenate mode), in torch.utils.data.DataLoader(batch, shuffle=True). Ours: the tensors of
those datasets, paired per epoch by index permutations (spatialsearch.data.TaskBatches).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import device_name, record, table  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.data.modes import TaskBatches  # noqa: E402
from spatialsearch.data.sources import load_task_data  # noqa: E402
from tests.idx_files import write_dataset  # noqa: E402


class PairedTorchvision(torch.utils.data.Dataset):
    """Sample i = (image_i of every dataset stacked on channels, labels): per-sample Python."""

    def __init__(self, datasets: list) -> None:
        self.datasets = datasets

    def __len__(self) -> int:
        return max(len(d) for d in self.datasets)

    def __getitem__(self, index: int):
        items = [d[index % len(d)] for d in self.datasets]
        return torch.cat([x for x, _ in items]), torch.tensor([y for _, y in items])


def measure(samples: int, batch: int, device: torch.device) -> dict:
    import torchvision
    from torchvision.transforms import ToTensor

    with tempfile.TemporaryDirectory() as root:
        for seed, name in enumerate(("MNIST", "FashionMNIST")):
            write_dataset(Path(root), name, train=samples, test=100, seed=seed)
        datasets = [getattr(torchvision.datasets, n)(root, train=True, transform=ToTensor())
                    for n in ("MNIST", "FashionMNIST")]
        loader = torch.utils.data.DataLoader(PairedTorchvision(datasets), batch_size=batch,
                                             shuffle=True)
        baseline_batches = 40
        started = time.perf_counter()
        for i, (x, y) in enumerate(loader):
            x, y = x.to(device), y.to(device)
            if i + 1 == baseline_batches:
                break
        baseline = baseline_batches * batch / (time.perf_counter() - started)

        config = trial_config_from_dict({"datasets": ["MNIST", "FashionMNIST"], "labels": 10,
                                         "root": root, "batch": batch,
                                         "validation_fraction": 0.01})
        data = load_task_data(config.data, 1, device)
    batches = TaskBatches(data.train, "concatenate", "random", batch, torch.Generator())
    for _ in batches.epoch():  # warm-up pass
        pass
    started = time.perf_counter()
    seen = 0
    for _ in range(3):
        for x, y in batches.epoch():
            seen += len(y)
        if device.type == "cuda":
            torch.cuda.synchronize()
    ours = seen / (time.perf_counter() - started)
    return record("data", samples=samples, batch=batch, device=device_name(device),
                  baseline_samples_per_s=round(baseline), ours_samples_per_s=round(ours),
                  speedup=round(ours / baseline, 1))


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    r = measure(args.samples, args.batch, torch.device(args.device))
    rows = [[f"{r['baseline_samples_per_s']:,}", f"{r['ours_samples_per_s']:,}",
             f"{r['speedup']}x"]]
    print(table(rows, ["DataLoader samples/s", "ours samples/s", "speed-up"]))
    return rows


if __name__ == "__main__":
    main()
