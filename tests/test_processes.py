"""The tests' process hygiene: kill_tree stops a process and what it started, by pid, and
nothing else, even a process with the same command line."""

from __future__ import annotations

import subprocess
import time

from tests.processes import alive, kill_tree, tree


def test_kill_tree_stops_the_tree_and_leaves_a_look_alike_alone():
    started = subprocess.Popen(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    bystander = subprocess.Popen(["sleep", "300"])  # same command line, not ours to stop
    try:
        deadline = time.time() + 10
        while len(tree(started.pid)) < 3 and time.time() < deadline:
            time.sleep(0.05)
        family = tree(started.pid)
        assert family[0] == started.pid and len(family) == 3
        assert sorted(kill_tree(started.pid)) == sorted(family)
        started.wait(timeout=10)
        assert not any(alive(pid) for pid in family)
        assert alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()
