"""The GPU check's plumbing on the CPU (benchmarks/gpu_check.py --stand-in-cpu): every part
runs, the CUDA tests pass with the CPU standing in, both searches are complete (every trial
finished and in MLflow, the report, the Pareto answer), and the table and JSON lines carry
the figures a lent GPU will fill in."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import gpu_check  # noqa: E402


@pytest.mark.slow
def test_the_gpu_check_runs_every_part_on_the_cpu_stand_in(tmp_path, capsys):
    out = tmp_path / "gpu-check.jsonl"
    assert gpu_check.main(["--stand-in-cpu", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["part"] for row in rows] == list(gpu_check.PARTS)
    assert all(row["ok"] is True and row["device"] == "cpu" for row in rows), rows
    by_part = {row["part"]: row for row in rows}
    assert by_part["cuda tests"]["result"].startswith("5 passed")
    for search in ("gpu search", "cpu search"):
        assert by_part[search]["trials"] == 4 and by_part[search]["failed"] == 0
        assert by_part[search]["trials_per_hour"] > 0
    assert by_part["bench_step"]["step_ratio_32x32"] > 0
    assert by_part["bench_data"]["data_speedup"] > 0
    table = capsys.readouterr().out
    assert "| trials per hour, card / CPU |" in table and "| total |" in table


def test_without_cuda_it_says_so_in_one_line_and_exits_0(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("gpu-check: no CUDA device here")


def test_a_part_whose_packages_are_missing_is_skipped(monkeypatch, tmp_path):
    """On a bare GPU image without Ray, the search parts say so instead of failing."""
    monkeypatch.setitem(gpu_check.PARTS, "gpu search",
                        (gpu_check.part_gpu_search, ("no_such_package_here",)))
    rows = gpu_check.run_parts(gpu_check.Sizes(stand_in=True), ["gpu search"])
    assert rows[0]["ok"] is None
    assert rows[0]["result"] == "skipped: no_such_package_here not installed"
    assert "skipped" in gpu_check.summary_table(rows)
