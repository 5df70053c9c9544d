"""The mutation score per module (docs/testing.md): mutmut 3, in a copy of the repository per
group of modules, each mutant checked by the fast tests that cover the function it changes.

Usage:
    make mutation                                        # every group, ~22 min on 2 CPUs
    .venv/bin/python tests/mutations/score.py kernels    # one group: python or kernels
    .venv/bin/python tests/mutations/score.py --report   # table and report from the last run

Prints the table (score = killed / all mutants) and writes docs/mutation-survivors.md: each
surviving mutant, its change, and why it survives (the rules of tests/mutations/reasons.py;
"not explained" where none matches). The copies stay in runs/mutation/<group>;
`cd runs/mutation/<group> && ../../../.venv/bin/mutmut show NAME` prints a mutant's diff.

Two groups, because the kernels run differently:
- python: the plain-Python modules, with the whole fast suite to choose covering tests from.
- kernels: the numba kernels, run as Python (NUMBA_DISABLE_JIT=1; mutmut's trampolines do
  not compile), with the cost tests that call them. The training tests (tests/test_train.py)
  are left out: as Python, each takes 20-40 s per mutant.
Both with one OpenMP/MKL/numba thread and numba's workqueue threading layer: mutmut forks a
process per mutant, and a fork of a process that has run GNU OpenMP terminates itself at
numba's next parallel region ("fork() called from a process already using GNU OpenMP") or
hangs in torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.mutations.reasons import reason_for  # noqa: E402 (run as a script)

MUTMUT = Path(sys.executable).with_name("mutmut")
FORK_SAFE = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
             "NUMBA_THREADING_LAYER": "workqueue"}
QUIET = ["-p", "no:cacheprovider", "-q"]


@dataclass(frozen=True)
class Group:
    """Modules mutated together, the tests that may cover them, and their environment."""

    modules: tuple[str, ...]
    tests: tuple[str, ...]
    environment: tuple[tuple[str, str], ...] = ()


GROUPS = {
    "python": Group(
        modules=("spatialsearch/segregation.py", "spatialsearch/checkpoint.py",
                 "spatialsearch/costs.py", "spatialsearch/cpu_costs.py",
                 "spatialsearch/search/space/config.py", "analysis/split.py",
                 "spatialsearch/pareto.py"),
        # Ray workers import the installed package, not mutmut's copy
        tests=("-m", "not slow", "--ignore=tests/search/engine/test_trainable.py")),
    "kernels": Group(
        modules=("spatialsearch/kernels.py", "spatialsearch/kernels_network.py"),
        tests=("tests/test_kernels.py", "tests/test_costs.py",
               "tests/test_cost_scaling.py", "-m", "not slow"),
        # 2 threads: transport_layer's per-thread accumulators are checked (no OpenMP runs:
        # prange is range without the JIT)
        environment=(("NUMBA_DISABLE_JIT", "1"), ("NUMBA_NUM_THREADS", "2"))),
}

#: mutmut's exit codes of a mutant's test run (mutmut/stats.py), by what they mean here
KILLED, SURVIVED, TIMEOUT, NO_TESTS = {1, 3}, {0}, {24, -24, 36, 152, 255}, {5, 33}


def mutmut_section(group: Group) -> str:
    """The [tool.mutmut] table of pyproject.toml for one group."""
    also_copy = ["spatialsearch", "analysis", "tests", "search_spaces", "README.md", "docs",
                 ".ci", "Makefile", "pyproject.toml", "run_search.py", "benchmarks"]
    return "\n".join([
        "[tool.mutmut]",
        f"source_paths = {json.dumps(list(group.modules))}",
        f"also_copy = {json.dumps(also_copy)}",
        f"pytest_add_cli_args = {json.dumps(QUIET)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(list(group.tests))}",
        ""])


def prepare(name: str, group: Group) -> Path:
    """runs/mutation/<name>: a fresh copy of the working tree whose [tool.mutmut] is the
    group's."""
    copy = ROOT / "runs" / "mutation" / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "runs", "mutants", "__pycache__", ".hypothesis", "*.egg-info"))
    project = copy / "pyproject.toml"
    text = re.sub(r"\[tool\.mutmut\].*?(?=^\[|\Z)", "", project.read_text(),
                  flags=re.S | re.M)
    project.write_text(text.rstrip() + "\n\n" + mutmut_section(group))
    return copy


def outcomes(copy: Path, module: str) -> dict[str, int]:
    """Each mutant of `module` and the exit code of its tests, from mutmut's record."""
    return json.loads((copy / "mutants" / f"{module}.meta").read_text())["exit_code_by_key"]


def tally(codes: dict[str, int]) -> dict[str, object]:
    """Counts by outcome, the score and the survivors' names."""
    counts = {"mutants": len(codes),
              "killed": sum(c in KILLED for c in codes.values()),
              "survived": sum(c in SURVIVED for c in codes.values()),
              "timeout": sum(c in TIMEOUT for c in codes.values()),
              "no tests": sum(c in NO_TESTS for c in codes.values())}
    counts["other"] = counts["mutants"] - sum(v for k, v in counts.items() if k != "mutants")
    counts["score"] = counts["killed"] / counts["mutants"] if codes else 0.0
    counts["survivors"] = sorted(m for m, c in codes.items() if c in SURVIVED)
    return counts


def change(copy: Path, mutant: str) -> tuple[str, str]:
    """(the original lines, the mutated lines) of one mutant, from `mutmut show`."""
    shown = subprocess.run([str(MUTMUT), "show", mutant], cwd=copy, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    removed = [line[1:].strip() for line in shown
               if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in shown
             if line.startswith("+") and not line.startswith("+++")]
    return " / ".join(removed), " / ".join(added)


def score(name: str, run: bool = True) -> dict[str, dict[str, object]]:
    """Run mutmut over one group (or read its last run); its tally per module, each
    survivor with its change."""
    group = GROUPS[name]
    copy = ROOT / "runs" / "mutation" / name
    if run:
        copy = prepare(name, group)
        environment = {**os.environ, **FORK_SAFE, **dict(group.environment)}
        subprocess.run([str(MUTMUT), "run"], cwd=copy, env=environment, check=True)
    results = {module: tally(outcomes(copy, module)) for module in group.modules}
    for result in results.values():
        result["survivors"] = [(mutant, *change(copy, mutant))
                               for mutant in result["survivors"]]
    return results


def table(results: dict[str, dict[str, object]]) -> str:
    """The markdown table of docs/testing.md."""
    lines = ["| module | mutants | killed | survived | timeout | no tests | other | score |",
             "|---|---|---|---|---|---|---|---|"]
    for module, r in results.items():
        lines.append(f"| {module} | {r['mutants']} | {r['killed']} | {r['survived']} | "
                     f"{r['timeout']} | {r['no tests']} | {r['other']} | "
                     f"**{100 * r['score']:.1f}%** |")
    return "\n".join(lines)


def _cell(code: str) -> str:
    code = code if len(code) <= 110 else code[:107] + "..."
    return "`" + code.replace("|", "\\|").replace("`", "'") + "`"


def survivor_report(results: dict[str, dict[str, object]]) -> str:
    """docs/mutation-survivors.md: per module, each survivor, its change and its reason."""
    lines = ["# Surviving mutants", "",
             "Written by `make mutation` (tests/mutations/score.py, mutmut 3.8.1): every mutant",
             "that no fast test kills, the line it changes, and why it survives (the rules in",
             "tests/mutations/reasons.py). Scores and method: [testing.md](testing.md).", ""]
    for module, result in results.items():
        survivors = result["survivors"]
        lines += [f"## {module}: {len(survivors)} of {result['mutants']} survive", ""]
        if not survivors:
            continue
        lines += ["| mutant | original | mutated | why it survives |", "|---|---|---|---|"]
        for mutant, removed, added in survivors:
            lines.append(f"| {mutant.rsplit('.', 1)[-1]} | {_cell(removed)} | {_cell(added)} "
                         f"| {reason_for(module, removed, added)} |")
        lines.append("")
    return "\n".join(lines)


def main(arguments: list[str]) -> int:
    report_only = "--report" in arguments
    names = [a for a in arguments if a != "--report"]
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        print(f"group: {unknown[0]!r} is not one of {', '.join(GROUPS)}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, object]] = {}
    for name in names or GROUPS:
        results.update(score(name, run=not report_only))
    print(table(results))
    (ROOT / "runs" / "mutation" / "scores.json").write_text(json.dumps(results, indent=1))
    if not names:  # the whole score: the report covers every module
        (ROOT / "docs" / "mutation-survivors.md").write_text(survivor_report(results))
    return 0 if all(r["score"] >= 0.85 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
