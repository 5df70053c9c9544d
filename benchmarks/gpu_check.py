"""`make gpu-check`: every check that needs a GPU, in one command sized for a lent card's
window (target: <= 8 minutes on one modern GPU, the install included).

Parts, each timed:
  cuda tests   tests/test_cuda.py on the card: the costs and their gradients against the
               float64 CPU reference, training against the CPU, a checkpoint saved on the
               card and loaded on the CPU
  gpu search   a quickstart-like search (both objectives, random search seeded, FIFO, the
               150-100-50 network on digits), resources.gpu 0.25 and 4 trials at once, every
               trial pinned to the card (`device: cuda` fails a trial that has none). Checked:
               every trial finished, one FINISHED MLflow run each, the report, the Pareto
               answer
  cpu search   the same search on the CPU, 4 trials at once, one CPU each: trials per hour on
               the card against the CPU, in the same run
  bench_step   benchmarks/bench_step.py on the card (ms per step vs plain nn.Linear)
  bench_data   benchmarks/bench_data.py on the card (the data path vs a DataLoader)
A part whose packages are missing (Ray, MLflow and Optuna on a bare GPU image) is reported
as skipped. One table at the end; one JSON line per part in --out.

Without CUDA it says so in one line and exits 0. --stand-in-cpu runs every part on the CPU at
tiny sizes, the CUDA tests with SPATIALSEARCH_TEST_DEVICE=cpu: the test suite's dry run, so
that the script cannot rot while no GPU is there.

Usage:
    make gpu-check                                  # = python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --stand-in-cpu --out runs/gpu-check-dry.jsonl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[1]
SEARCH_PACKAGES = ("ray", "mlflow", "optuna")


class Sizes:
    """What each part runs: full on a card, tiny for the CPU stand-in."""

    def __init__(self, stand_in: bool) -> None:
        self.device = "cpu" if stand_in else "cuda"
        self.trials = 4 if stand_in else 16
        self.epochs = 2 if stand_in else 10
        self.layers = [16, 8] if stand_in else [150, 100, 50]
        self.cpu_per_trial = 0.5 if stand_in else 1.0  # 4 at once on a 2-core CI machine
        self.step = (["--widths", "32,32", "--repeats", "3", "--batch", "64"] if stand_in
                     else ["--widths", "256,256", "1024,1024", "--repeats", "20"])
        self.data = ["--samples", "2000"] if stand_in else ["--samples", "60000"]


def _environment(device: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "SPATIALSEARCH_TEST_DEVICE": device,
            "PYTHONUNBUFFERED": "1"}


def _run(command: list[str], device: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=_environment(device), capture_output=True,
                          text=True)


def part_cuda_tests(sizes: Sizes, scratch: Path) -> dict[str, Any]:
    done = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                 "tests/test_cuda.py"], sizes.device)
    last = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    return {"ok": done.returncode == 0 and "skipped" not in last, "result": last}


def _space(sizes: Sizes, on_card: bool, output: Path, name: str) -> Path:
    doc = {
        "name": name, "output": str(output), "num_samples": sizes.trials,
        "max_concurrent_trials": 4,
        "objectives": [{"metric": "val_accuracy", "mode": "max"},
                       {"metric": "segregation", "mode": "max"}],
        "scheduler": {"type": "fifo"}, "search": {"algorithm": "random", "seed": 0},
        "resources": {"cpu": sizes.cpu_per_trial,
                      "gpu": 0.25 if on_card and sizes.device == "cuda" else 0},
        "checkpoint_every": sizes.epochs, "analyze": 1,
        "fixed": {"datasets": ["digits"], "labels": 5, "layers": sizes.layers,
                  "activation": "Sigmoid", "epochs": sizes.epochs,
                  "device": sizes.device if on_card else "cpu"},
        "space": {"proximity": {"loguniform": [0.01, 10]},
                  "transport": {"loguniform": [0.1, 100]},
                  "lr": {"loguniform": [0.001, 0.02]}},
    }
    path = output / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _search(sizes: Sizes, scratch: Path, on_card: bool) -> dict[str, Any]:
    name = "gpu" if on_card else "cpu"
    space = _space(sizes, on_card, scratch, name)
    done = _run([sys.executable, "run_search.py", str(space), "--quiet"], sizes.device)
    folder = scratch / name
    if done.returncode != 0 or not (folder / "summary.json").is_file():
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"ok": False, "result": f"exit {done.returncode}: {tail[:160]}"}
    summary = json.loads((folder / "summary.json").read_text())
    seconds = float(summary["search_seconds"])
    figures = {"trials": summary["trials"], "failed": summary["errored"],
               "search_seconds": round(seconds, 1),
               "trials_per_hour": round(summary["trials"] / seconds * 3600)}
    problems = _incomplete(folder, summary)
    return {"ok": not problems, "result": "; ".join(problems) or "complete", **figures}


def _incomplete(folder: Path, summary: dict[str, Any]) -> list[str]:
    """What a finished search lacks: failed trials, MLflow runs, the report, the answer."""
    from mlflow.tracking import MlflowClient

    problems = []
    if summary["errored"]:
        problems.append(f"{summary['errored']} trials failed")
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(summary["mlflow"]["experiment"])
    runs = client.search_runs([experiment.experiment_id],
                              "tags.`spatialsearch.kind` = 'trial'", max_results=1000)
    finished = sum(run.info.status == "FINISHED" for run in runs)
    if finished < summary["trials"]:
        problems.append(f"MLflow: {finished} of {summary['trials']} trial runs FINISHED")
    if not (folder / "report" / "report.html").is_file():
        problems.append("no report/report.html")
    if not summary.get("pareto") or not (folder / "pareto.csv").is_file():
        problems.append("no Pareto answer")
    return problems


def part_gpu_search(sizes: Sizes, scratch: Path) -> dict[str, Any]:
    return _search(sizes, scratch, on_card=True)


def part_cpu_search(sizes: Sizes, scratch: Path) -> dict[str, Any]:
    return _search(sizes, scratch, on_card=False)


def _bench(script: str, flags: list[str], sizes: Sizes) -> dict[str, Any]:
    done = _run([sys.executable, f"benchmarks/{script}", "--device", sizes.device, *flags],
                sizes.device)
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not records:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"ok": False, "result": f"exit {done.returncode}: {tail[:160]}"}
    return {"ok": True, "result": "measured", "records": records}


def part_bench_step(sizes: Sizes, scratch: Path) -> dict[str, Any]:
    result = _bench("bench_step.py", sizes.step, sizes)
    for r in result.get("records", []):
        result[f"step_ratio_{'x'.join(map(str, r['widths']))}"] = r["ratio_vs_fused"]
    return result


def part_bench_data(sizes: Sizes, scratch: Path) -> dict[str, Any]:
    result = _bench("bench_data.py", sizes.data, sizes)
    for r in result.get("records", []):
        result["data_speedup"] = r["speedup"]
    return result


PARTS: dict[str, tuple[Callable[[Sizes, Path], dict[str, Any]], tuple[str, ...]]] = {
    "cuda tests": (part_cuda_tests, ("pytest",)),
    "gpu search": (part_gpu_search, SEARCH_PACKAGES),
    "cpu search": (part_cpu_search, SEARCH_PACKAGES),
    "bench_step": (part_bench_step, ()),
    "bench_data": (part_bench_data, ("torchvision",)),
}


def run_parts(sizes: Sizes, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        for name in names:
            function, needs = PARTS[name]
            missing = [p for p in needs if importlib.util.find_spec(p) is None]
            started = time.perf_counter()
            if missing:
                result = {"ok": None, "result": f"skipped: {', '.join(missing)} not installed"}
            else:
                result = function(sizes, Path(scratch))
            rows.append({"part": name, "device": sizes.device,
                         "seconds": round(time.perf_counter() - started, 1), **result})
            print(f"gpu-check: {name}: {rows[-1]['result']} ({rows[-1]['seconds']} s)",
                  flush=True)
    return rows


def summary_table(rows: list[dict[str, Any]]) -> str:
    by_part = {row["part"]: row for row in rows}
    gpu, cpu = by_part.get("gpu search", {}), by_part.get("cpu search", {})
    lines = ["| part | ok | seconds | figures |", "|---|---|---|---|"]
    for row in rows:
        figures = {k: v for k, v in row.items() if k not in (
            "part", "ok", "seconds", "result", "records", "device")}
        shown = ", ".join(f"{k} {v}" for k, v in figures.items()) or row["result"]
        ok = {True: "yes", False: "NO", None: "skipped"}[row["ok"]]
        lines.append(f"| {row['part']} | {ok} | {row['seconds']} | {shown} |")
    if gpu.get("trials_per_hour") and cpu.get("trials_per_hour"):
        ratio = gpu["trials_per_hour"] / cpu["trials_per_hour"]
        lines.append(f"| trials per hour, card / CPU | | | {ratio:.2f}x "
                     f"({gpu['trials_per_hour']} vs {cpu['trials_per_hour']}) |")
    lines.append(f"| total | | {sum(r['seconds'] for r in rows):.1f} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stand-in-cpu", action="store_true",
                        help="run every part on the CPU at tiny sizes (CI's dry run)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "gpu-check.jsonl"),
                        help="JSON lines, one per part")
    parser.add_argument("--parts", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args(argv)
    import torch

    if not args.stand_in_cpu and not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing "
              "to check (--stand-in-cpu runs the plumbing on the CPU)")
        return 0
    sizes = Sizes(args.stand_in_cpu)
    name = torch.cuda.get_device_name() if sizes.device == "cuda" else "CPU stand-in"
    print(f"gpu-check on {name}, torch {torch.__version__}", flush=True)
    rows = run_parts(sizes, args.parts)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"gpu": name, **row}) + "\n" for row in rows))
    print(summary_table(rows))
    print(f"gpu-check: JSON lines in {out}")
    return 0 if all(row["ok"] is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
