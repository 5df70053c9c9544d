"""Every shell command in the README's code blocks runs as written, on a scratch output
folder: each command is matched by exactly one rule below, which says how it runs here (as
is, with small overrides where it would run long, with --dry-run where it needs a cluster, or
as a server started and stopped by its pid). A command no rule matches, a command that
fails, or a documented flag that does not exist fails the test.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from tests.processes import kill_tree
from tests.s3_server import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: a search small enough for the test: 2 trials of 2 epochs, nothing after them
SMALL = ["--num-samples", "2", "--set", "fixed.epochs=2", "--set", "scheduler.grace_period=1",
         "--set", "reseed=0", "--set", "analyze=0", "--set", "fixed.train_samples=600"]


#: the paper's grid made small: 8 trials of 1 epoch (both costs x seeds 1-2, one input mode)
PAPER_SMALL = ["--set", "fixed.epochs=1", "--set", "fixed.train_samples=400",
               "--set", "checkpoint_every=1", "--set", "space.seed.grid=[1,2]",
               "--set", "space.input.grid=[concatenate]", "--set", "space.sampler.grid=[random]"]


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ```bash blocks: continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


class Scratch:
    """Where the README's commands write, and what earlier ones left for later ones."""

    def __init__(self, root: Path) -> None:
        self.root, self.output = root, root / "runs"
        self.searched: Path | None = None  # a search folder, for <folder>
        self.grid: Path | None = None      # the paper's grid search, for claims <folder>
        self.trained: Path | None = None   # a train folder, for runs/train-<time>

    def run(self, words: list[str], env: dict[str, str] | None = None) -> str:
        done = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env={**os.environ, **(env or {})})
        assert done.returncode == 0, f"{shlex.join(words)}\n{done.stdout[-3000:]}" \
                                     f"{done.stderr[-3000:]}"
        return done.stdout

    def search(self, words: list[str]) -> None:
        space = Path(words[2]).stem
        extra = ["--dry-run"] if "--address" in words else SMALL
        if "--resume" in words and not (self.output / space).is_dir():  # what it resumes
            self.run([sys.executable, "run_search.py", words[2], "--output", str(self.output),
                      *SMALL])
        self.run([sys.executable, *words[1:], "--output", str(self.output), *extra])
        if "--dry-run" not in words + extra:
            self.searched = self.output / space

    def make(self, words: list[str]) -> None:
        printed = self.run(["make", "-n", *words[1:]])  # the target exists; what it runs
        if words[1] == "search":
            search = next(line for line in printed.splitlines() if "run_search.py" in line)
            self.search([".venv/bin/python", *shlex.split(search)[1:3]])
        if words[1] == "paper":  # its search, small, then its claims
            assert "search_spaces/paper.yaml" in printed and "spatialsearch claims" in printed
            from spatialsearch.data.sources import missing_files

            data = [] if not missing_files("FashionMNIST", "data") else [
                "--set", "fixed.datasets=[digits]"]  # without Debian's package: digits
            self.run([sys.executable, "run_search.py", "search_spaces/paper.yaml", "--output",
                      str(self.output), "--quiet", *PAPER_SMALL, *data])
            self.grid = self.output / "paper"
            self.claims([str(BIN / "spatialsearch"), "claims", "<folder>"])

    def claims(self, words: list[str]) -> None:
        assert self.grid is not None, "make paper runs before claims in the README"
        printed = self.run([str(BIN / "spatialsearch"), "claims", str(self.grid)])
        assert "| concatenate, α 1, β 10 |" in printed
        assert "| claim | costs vs none | test | p | Holm p | verdict |" in printed

    def train(self, words: list[str]) -> None:
        self.trained = self.root / "train"
        self.run([str(BIN / "spatialsearch"), *words[1:], "--epochs", "2", "--save",
                  str(self.trained)])

    def analyze(self, words: list[str]) -> None:
        assert self.trained is not None, "train runs before analyze in the README"
        words = [str(self.trained / "best.pt") if w.startswith("runs/train-<time>") else w
                 for w in words]
        self.run([str(BIN / "spatialsearch"), *words[1:-1], str(self.root / "analysis")])

    def serve(self, words: list[str], probe: str) -> None:
        """A server the README starts: on a free port, until it answers; then stopped."""
        assert self.searched is not None, "a search runs before the viewers in the README"
        port = str(free_port())
        words = [w.replace("<folder>", str(self.searched)) for w in words]
        words = words[:-1] + [port] if "--port" in words else [*words, "--port", port]
        process = subprocess.Popen([str(BIN / Path(words[0]).name), *words[1:]], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(probe.format(port=port), timeout=2).close()  # noqa: S310
                    return
                except OSError:
                    assert process.poll() is None, f"{shlex.join(words)} exited"
                    time.sleep(0.5)
            raise AssertionError(f"{shlex.join(words)} did not answer")
        finally:
            kill_tree(process.pid)

    def cluster(self, words: list[str]) -> None:
        """`ray start`: the flags the README uses exist (the multi-node test runs a real
        three-node cluster, tests/search/test_multi_node.py)."""
        words = [w for w in words if "=" not in w or w.startswith("-")]  # env assignments
        usage = self.run([str(BIN / "ray"), "start", "--help"])
        for flag in (w for w in words if w.startswith("--")):
            assert flag in usage, f"ray start has no {flag}"


RULES: list[tuple[str, Callable[[Scratch, list[str]], None]]] = [
    (r"^make (search|test|paper)$", Scratch.make),
    (r"^\.venv/bin/python run_search\.py ", Scratch.search),
    (r"^python run_search\.py ", Scratch.search),
    (r"^\.venv/bin/spatialsearch train ", Scratch.train),
    (r"^\.venv/bin/spatialsearch analyze ", Scratch.analyze),
    (r"^\.venv/bin/spatialsearch claims ", Scratch.claims),
    (r"^\.venv/bin/mlflow ui ", lambda s, w: s.serve(w, "http://127.0.0.1:{port}/health")),
    (r"^\.venv/bin/spatialsearch dashboard ",
     lambda s, w: s.serve(w, "http://127.0.0.1:{port}/api/studies")),
    (r"^(RAY_AUTH_MODE=token )?ray start ", Scratch.cluster),
]


def test_every_readme_command_has_exactly_one_rule():
    commands = readme_commands((ROOT / "README.md").read_text())
    assert len(commands) >= 12
    for command in commands:
        matched = [pattern for pattern, _ in RULES if re.search(pattern, command)]
        assert len(matched) == 1, (command, matched)


def test_every_readme_command_runs_as_written(tmp_path):
    scratch = Scratch(tmp_path)
    for command in readme_commands((ROOT / "README.md").read_text()):
        words = shlex.split(command)
        if "--address" in words and "<head-ip>:6379" in command:  # the cluster's search
            words = [w.replace("<head-ip>", "127.0.0.1") for w in words]
        run = next(action for pattern, action in RULES if re.search(pattern, command))
        run(scratch, words)
    assert scratch.searched is not None and scratch.trained is not None
