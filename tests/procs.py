"""Process helpers for the tests that kill real runs (SIGKILL, SIGTERM, Ctrl-C) and check that
their workers end with them (Linux /proc)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def started_workers(p: subprocess.Popen, pids: Path, n: int = 2, timeout: float = 120
                    ) -> list[int]:
    """The pids the run's workers wrote as file names into ``pids``, once ``n`` are there (fewer
    if the run ended or ``timeout`` passed: the caller asserts)."""
    workers: list[int] = []
    deadline = time.monotonic() + timeout
    while len(workers) < n and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
        workers = [int(f.name) for f in pids.iterdir()]
    return workers


def all_ended(pids: Iterable[int], timeout: float = 60) -> bool:
    """Every one of ``pids`` ended within ``timeout`` seconds."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while any(alive(w) for w in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(w) for w in pids)
