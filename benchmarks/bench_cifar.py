"""What a CIFAR-10 trial of search_spaces/cifar10_conv.yaml costs, without the real files.

Writes CIFAR-10's python batches (random pixels, the real count: 50,000 train, 10,000 test)
in torchvision's layout, then times: reading them the first time (unpickling, converted into
the cache), reading them again (the cached uint8 arrays), and one training epoch of the
search space's network (two tasks, 6 input channels, convolution layers [32, 32]) on its
10,000-image train subset, with torch on `--threads` threads (a trial's CPU count).

Usage:
    python benchmarks/bench_cifar.py [--device cpu|cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch.config import trial_config_from_dict  # noqa: E402
from spatialsearch.data.sources import read_dataset  # noqa: E402
from spatialsearch.train import Trainer  # noqa: E402

SPACE = Path(__file__).resolve().parents[1] / "search_spaces" / "cifar10_conv.yaml"


def write_cifar10(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"data": rng.integers(0, 256, (10000, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, 10000).tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fixed = yaml.safe_load(SPACE.read_text())["fixed"]
    with tempfile.TemporaryDirectory() as root:
        write_cifar10(Path(root))
        started = time.perf_counter()
        read_dataset("CIFAR10", root, download=False)
        first = time.perf_counter() - started
        started = time.perf_counter()
        read_dataset("CIFAR10", root, download=False)
        cached = time.perf_counter() - started
        config = trial_config_from_dict({**fixed, "root": root, "device": args.device,
                                         "proximity": 1.0, "transport": 1.0})
        trainer = Trainer(config)
        trainer.run_epoch()  # warm-up
        started = time.perf_counter()
        trainer.run_epoch()
        epoch = time.perf_counter() - started
    line = record("cifar", device=args.device, threads=args.threads, first_read_s=round(first, 2),
                  cached_read_s=round(cached, 2), epoch_s=round(epoch, 2),
                  train_images=fixed["train_samples"])
    print(table([[args.device, str(args.threads), f"{line['first_read_s']:.2f}",
                  f"{line['cached_read_s']:.2f}", f"{line['epoch_s']:.2f}"]],
                ["device", "threads", "first read s", "cached read s",
                 f"epoch s ({fixed['train_samples']} images)"]))


if __name__ == "__main__":
    main()
