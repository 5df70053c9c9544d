"""A trial's data start-up: reading its datasets from files (each trial, before) against
splitting them from the arrays the driver put into Ray's object store once (after).

Usage:
    python benchmarks/bench_startup.py [--repeats 5]
Each measurement runs in a Ray task on a local Ray, in its own worker process, as a trial
does: "files" = load_task_data (read and parse the files, split, fold); "object store" =
ray.get of the shared datasets (data/shared.py) + their split. The driver's one-off cost
(read once + ray.put) is shown too. digits: scikit-learn's embedded CSV; Fashion-MNIST: the
real 70,000 images (Debian's dataset-fashion-mnist, gzipped IDX), all of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import record, table  # noqa: E402
from spatialsearch.config import DataConfig  # noqa: E402
from spatialsearch.data.sources import system_source  # noqa: E402

CASES = {"digits": DataConfig(datasets=("digits",), labels=5),
         "Fashion-MNIST": DataConfig(datasets=("FashionMNIST",), labels=5)}


def _from_files(config: DataConfig) -> float:
    import torch

    from spatialsearch.data.sources import load_task_data

    started = time.perf_counter()
    load_task_data(config, 0, torch.device("cpu"))
    return time.perf_counter() - started


def _from_store(config: DataConfig, holder: list) -> float:
    import ray
    import torch

    started = time.perf_counter()
    shared = ray.get(holder[0])
    shared.task_data(config, 0, torch.device("cpu"))
    return time.perf_counter() - started


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import ray

    from spatialsearch.data.shared import SharedDatasets

    rows = []
    with tempfile.TemporaryDirectory() as root:
        ray.init(address="local", num_cpus=2, include_dashboard=False,
                 configure_logging=False, log_to_driver=False)
        files = ray.remote(max_calls=1)(_from_files)  # a fresh worker each time, as a trial
        store = ray.remote(max_calls=1)(_from_store)
        try:
            for name, config in CASES.items():
                config = DataConfig(**{**config.__dict__, "root": root})
                if name != "digits" and system_source("FashionMNIST", root) is None:
                    print(f"{name}: skipped (apt-get install dataset-fashion-mnist)")
                    continue
                started = time.perf_counter()
                shared = SharedDatasets.read(config.datasets, root, False)
                reference = ray.put(shared)
                driver = time.perf_counter() - started
                before = [ray.get(files.remote(config)) for _ in range(args.repeats)]
                after = [ray.get(store.remote(config, [reference])) for _ in range(args.repeats)]
                b, a = statistics.median(before), statistics.median(after)
                record("startup", data=name, files_ms=round(b * 1000, 1),
                       store_ms=round(a * 1000, 1), driver_once_ms=round(driver * 1000, 1),
                       mib=round(shared.nbytes / 2**20, 1))
                rows.append([name, f"{shared.nbytes / 2**20:.1f}", f"{b * 1000:.0f}",
                             f"{a * 1000:.0f}", f"{b / a:.1f}x", f"{driver * 1000:.0f}"])
        finally:
            ray.shutdown()
    print(table(rows, ["data", "MiB", "files ms / trial", "object store ms / trial", "ratio",
                       "driver once ms"]))
    return rows


if __name__ == "__main__":
    main()
