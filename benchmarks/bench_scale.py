"""The cost curve of a search: the quickstart with 16, 128 and 1,024 trials on this machine.

Usage:
    python benchmarks/bench_scale.py [--samples 16 128 1024] [--space <search space>]
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


class OptunaClock:
    """Seconds spent in optuna's Study.ask / tell and Trial._suggest while installed."""

    def __init__(self) -> None:
        import optuna

        self.seconds = 0.0
        self.saved = [(optuna.study.Study, "ask"), (optuna.study.Study, "tell"),
                      (optuna.trial.Trial, "_suggest")]
        self.originals = [getattr(owner, name) for owner, name in self.saved]
        for (owner, name), original in zip(self.saved, self.originals):
            setattr(owner, name, self._timed(original))

    def _timed(self, original):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
        return timed

    def remove(self) -> None:
        for (owner, name), original in zip(self.saved, self.originals):
            setattr(owner, name, original)


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
    parser.add_argument("--samples", type=int, nargs="+", default=[16, 128, 1024])
    args = parser.parse_args()
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
