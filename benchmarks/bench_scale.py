"""The cost curve of a search: the quickstart with 16, 128 and 1,024 trials on this machine,
and the driver alone up to 10,000 trials.

Usage:
    python benchmarks/bench_scale.py [--samples 16 128 1024] [--space <search space>]
    python benchmarks/bench_scale.py --synthetic [--samples 1000 4000 10000]

--synthetic: a benchmark-only trainable (synthetic_trial) reports the quickstart's metric
shape (its objectives and losses, every epoch of 10, values from the trial's parameters plus
seeded noise) at a fixed 2 ms per epoch, so the driver is the bottleneck. Each size runs in a
fresh process (so its peak memory is its own) and reports, per trial: driver CPU seconds,
sampler ms per suggestion (Optuna's ask/tell/suggest), scheduler ms per decision
(MultiObjectiveASHA.decide), MLflow ms (the writer thread's start/log/finish calls), the
driver's peak resident memory, and efficiency; then the slope of each figure against the
number of trials, from the smallest size to the largest (log-log: 1 = linear, 0 = flat).
Per size, one search (reseed 0, analyze 0: per-search costs, not per-trial ones):
- efficiency: as bench_search.py defines it, the trials' own seconds (Ray's time_total_s)
  / concurrent slots / wall seconds of the whole run_search; "fit" uses Tune's fit alone;
- driver CPU s / trial: user + system seconds of the driver process (Ray's and MLflow's
  threads in it, the Optuna-writer child once it exits) over the search, per trial;
- Optuna ms / trial: time in optuna's Study.ask, Study.tell and Trial._suggest (where a
  define-by-run space is sampled), counted by wrapping them here, per trial;
- MLflow store: mlflow.db plus logged artifacts, MiB;
- UI s: the MLflow UI's runs page (mlflow server on 127.0.0.1) in headless Chromium: wall
  seconds until the dumped DOM lists the search's run, less Chromium's own start.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_search import _recorded_seconds  # noqa: E402
from benchmarks.common import record, table  # noqa: E402
from spatialsearch.cli import load_config_file  # noqa: E402
from spatialsearch.search.space.config import search_config_from_dict  # noqa: E402
from tests.servers import start_mlflow_server  # noqa: E402

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--virtual-time-budget=60000", "--dump-dom"]


class CallClock:
    """Seconds and calls of some methods while installed (owner, name) -> wrapped."""

    def __init__(self, *methods: tuple[type, str]) -> None:
        self.seconds, self.calls = 0.0, 0
        self.saved = [(owner, name, getattr(owner, name)) for owner, name in methods]
        for owner, name, original in self.saved:
            setattr(owner, name, self._timed(original))

    def _timed(self, original):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1
        return timed

    def remove(self) -> None:
        for owner, name, original in self.saved:
            setattr(owner, name, original)


class OptunaClock(CallClock):
    """Seconds spent in optuna's Study.ask / tell and Trial._suggest while installed."""

    def __init__(self) -> None:
        import optuna

        super().__init__((optuna.study.Study, "ask"), (optuna.study.Study, "tell"),
                         (optuna.trial.Trial, "_suggest"))


SYNTHETIC_EPOCHS = 10
EPOCH_COST_S = 0.002


def synthetic_trial(config: dict, plan) -> None:  # noqa: ARG001 (the trainable's signature)
    """The quickstart's metric shape at a fixed cost per epoch: accuracy rises with epochs
    and falls with transport; selectivity rises with transport; seeded noise per trial."""
    import math
    import random

    from ray import tune

    rng = random.Random(hash((config.get("lr"), config.get("transport"))) & 0xFFFFFFFF)
    transport = math.log10(config.get("transport", 1.0)) + 1  # 0 .. 3
    quality = rng.random()
    for epoch in range(1, SYNTHETIC_EPOCHS + 1):
        time.sleep(EPOCH_COST_S)
        grown = 1 - math.exp(-epoch / 3)
        accuracy = 0.2 + 0.78 * grown * (1 - 0.08 * transport) * (0.8 + 0.2 * quality)
        selectivity = (0.1 + 0.25 * transport) * grown + 0.03 * rng.random()
        tune.report({"epoch": epoch, "val_accuracy": accuracy, "selectivity": selectivity,
                     "val_loss": 2 * (1 - accuracy), "train_loss": 2 * (1 - accuracy),
                     "val_accuracy_se": 0.01, "proximity": 0.1, "transport": transport,
                     "epoch_seconds": EPOCH_COST_S})


def _synthetic_size(base_path: str, samples: int, folder: Path) -> dict:
    """One synthetic search of `samples` trials in this process: the per-trial figures."""
    import resource

    import ray

    from spatialsearch.search.engine.moasha import MultiObjectiveASHA
    from spatialsearch.search.runner import run_search
    from spatialsearch.search.tracking.runs import SearchTracking
    from spatialsearch.search.tune_run import search_trainable

    document = load_config_file(base_path)
    config = search_config_from_dict({
        **document, "num_samples": samples, "analyze": 0, "reseed": 0, "output": str(folder),
        "checkpoint_every": SYNTHETIC_EPOCHS, "fixed": {**document["fixed"],
                                                        "epochs": SYNTHETIC_EPOCHS},
        "scheduler": {"type": "moasha", "grace_period": 1, "reduction_factor": 2}})
    slots = config.max_concurrent_trials
    ray.init(address="local", num_cpus=slots, include_dashboard=False,
             configure_logging=False, log_to_driver=False)
    sampler = OptunaClock()
    scheduler = CallClock((MultiObjectiveASHA, "decide"))
    mlflow = CallClock((SearchTracking, "start_trial"), (SearchTracking, "log_epochs"),
                       (SearchTracking, "finish_trial"))
    try:
        cpu, started = os.times(), time.perf_counter()
        summary = run_search(config, quiet=True,
                             trainable=search_trainable(config, synthetic_trial))
        wall = time.perf_counter() - started
        after = os.times()
    finally:
        ray.shutdown()
    own, _ = _recorded_seconds(config.folder / "ray" / config.name)
    trials = summary.trials
    return dict(trials=trials, wall_s=round(wall, 1),
                efficiency=round(own / slots / wall, 3),
                driver_cpu_s=round((sum(after[:4]) - sum(cpu[:4])) / trials, 4),
                sampler_ms=round(1000 * sampler.seconds / trials, 2),
                scheduler_ms=round(1000 * scheduler.seconds / max(scheduler.calls, 1), 3),
                mlflow_ms=round(1000 * mlflow.seconds / trials, 2),
                peak_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


def synthetic(args: argparse.Namespace) -> list[list[str]]:
    """Each size in a fresh process; the table and the slopes."""
    import json
    import math

    found = []
    with tempfile.TemporaryDirectory() as folder:
        for samples in args.samples:
            done = subprocess.run([sys.executable, __file__, "--space", args.space,
                                   "--one-synthetic", str(samples), "--folder",
                                   str(Path(folder) / f"s{samples}")],
                                  capture_output=True, text=True, check=True)
            found.append(json.loads(done.stdout.strip().splitlines()[-1]))
            record("scale_synthetic", **found[-1])
    keys = ["driver_cpu_s", "sampler_ms", "scheduler_ms", "mlflow_ms", "peak_mib",
            "efficiency"]
    rows = [[f"{r['trials']:,}", f"{r['wall_s']}", *(str(r[k]) for k in keys)] for r in found]
    if len(found) > 1:
        first, last = found[0], found[-1]
        grow = math.log(last["trials"] / first["trials"])
        rows.append(["slope (log-log)", "", *(
            f"{math.log(max(last[k], 1e-9) / max(first[k], 1e-9)) / grow:+.2f}" for k in keys)])
    print(table(rows, ["trials", "wall s", "driver CPU s/trial", "sampler ms/suggestion",
                       "scheduler ms/decision", "MLflow ms/trial", "driver peak MiB",
                       "efficiency"]))
    return rows


def _size_mib(folder: Path) -> float:
    files = [folder / "mlflow.db", *(folder / "mlartifacts").rglob("*")]
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def _ui_seconds(folder: Path, run_name: str, profile: Path) -> float:
    """The runs page in headless Chromium, until its DOM holds the search's run."""
    browser = shutil.which("chromium")
    if browser is None:
        return float("nan")
    server, base = start_mlflow_server(f"sqlite:///{folder / 'mlflow.db'}")
    try:
        from mlflow.tracking import MlflowClient

        experiment = MlflowClient(base).get_experiment_by_name("spatialsearch").experiment_id

        def load(url: str, name: str) -> tuple[float, str]:
            started = time.perf_counter()
            done = subprocess.run([browser, *CHROMIUM, f"--user-data-dir={profile / name}",
                                   url], capture_output=True, text=True, timeout=300)
            return time.perf_counter() - started, done.stdout

        start, _ = load("about:blank", "blank")
        seconds, dom = load(f"{base}/#/experiments/{experiment}/runs", "runs")
        return seconds - start if f">{run_name}<" in dom else float("nan")
    finally:
        os.killpg(server.pid, 9)  # the server this benchmark started, by its process group
        server.wait()


def main() -> list[list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="search_spaces/quickstart.yaml")
    parser.add_argument("--samples", type=int, nargs="+", default=None)
    parser.add_argument("--synthetic", action="store_true",
                        help="the driver alone, with a benchmark-only trainable")
    parser.add_argument("--one-synthetic", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_synthetic:
        import json

        print(json.dumps(_synthetic_size(args.space, args.one_synthetic, Path(args.folder))))
        return []
    if args.synthetic:
        args.samples = args.samples or [1000, 4000, 10000]
        return synthetic(args)
    args.samples = args.samples or [16, 128, 1024]
    import ray

    from spatialsearch.search.runner import run_search

    base = search_config_from_dict(load_config_file(args.space))
    slots = base.max_concurrent_trials
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        ray.init(address="local", num_cpus=slots, include_dashboard=False,
                 configure_logging=False, log_to_driver=False)
        try:
            for samples in args.samples:
                config = dataclasses.replace(base, num_samples=samples, analyze=0, reseed=0,
                                             output=str(Path(folder) / f"s{samples}"))
                clock = OptunaClock()
                cpu, started = os.times(), time.perf_counter()
                summary = run_search(config, quiet=True)
                wall = time.perf_counter() - started
                after = os.times()
                clock.remove()
                driver_cpu = sum(after[:4]) - sum(cpu[:4])
                own, _ = _recorded_seconds(config.folder / "ray" / config.name)
                ui = _ui_seconds(config.folder, config.name, Path(folder) / f"ui{samples}")
                efficiency, fit = own / slots / wall, own / slots / summary.search_seconds
                measured = dict(
                    trials=summary.trials, wall_s=round(wall, 1), efficiency=round(efficiency, 3),
                    fit_efficiency=round(fit, 3),
                    driver_cpu_s_per_trial=round(driver_cpu / summary.trials, 3),
                    optuna_ms_per_trial=round(1000 * clock.seconds / summary.trials, 2),
                    mlflow_mib=round(_size_mib(config.folder), 1), ui_s=round(ui, 2))
                record("scale", **measured)
                rows.append([str(v) for v in measured.values()])
        finally:
            ray.shutdown()
    print(table(rows, ["trials", "wall s", "efficiency", "fit efficiency", "driver CPU s/trial",
                       "Optuna ms/trial", "MLflow MiB", "UI runs page s"]))
    return rows


if __name__ == "__main__":
    main()
