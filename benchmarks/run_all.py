"""Run every benchmark in one process-less sequence and print their tables.

Usage:
    python benchmarks/run_all.py        # or: make bench
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("bench_step.py", "bench_data.py", "bench_epoch.py", "bench_search.py",
               "bench_startup.py", "bench_scale.py", "bench_refusal.py",
               "gpu_check.py"):  # the last says so and exits 0 without CUDA
    print(f"\n## {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
