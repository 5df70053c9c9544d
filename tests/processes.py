"""Tests own their processes: what a test starts (a driver, `ray start --block`, a server) is
stopped by process id, with every process it started in turn, read from /proc. Nothing is
ever killed by name or pattern: a user's own Ray jobs may run on the same machine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process now (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        found[int(text.split(" ", 1)[0])] = int(text.rsplit(")", 1)[1].split()[1])
    return found


def tree(pid: int) -> list[int]:
    """pid and all its descendants, parents before children."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    ordered, queue = [], [pid] if pid in parents else []
    while queue:
        current = queue.pop(0)
        ordered.append(current)
        queue.extend(sorted(children.get(current, [])))
    return ordered


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_tree(pid: int, timeout: float = 30.0) -> list[int]:
    """SIGKILL pid and every process it started (taken before the first kill, so orphans are
    still known); wait until they are gone; returns the pids killed."""
    pids = tree(pid)
    for target in pids:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.time() + timeout
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return pids
