"""Worker processes that do not outlive the run that started them.

A parent killed with SIGKILL (``kill -9``, the kernel's out-of-memory killer, a CI job's time
limit) runs no cleanup: its forked workers were left running. An experiment's pool workers then
blocked for good on a queue nobody read, and, forked while the run held its output's write lock
(``shocklab.atomic``), they held it too: every later run into that ``--out`` was refused
("another ShockLab process is writing it now") until someone found and killed them; an analysis'
customers worker ran to its end and left its result in the temporary directory.
``die_with_parent`` (called first thing in each worker) makes Linux kill the worker when its
parent ends; ``not_inherited`` closes the write lock's file in every forked child at once (an
``flock`` belongs to the open file, which a fork shares; closing a child's copy leaves the parent's
lock held).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import IO, Any

_HELD: dict[int, IO[Any]] = {}   # files a forked child closes at once (``not_inherited``)


def not_inherited(f: IO[Any], held: bool = True) -> None:
    """Close ``f`` in every child this process forks from now on (``held=False``: no longer)."""
    if held:
        _HELD[id(f)] = f
    else:
        _HELD.pop(id(f), None)


def _close_held_in_child() -> None:
    for f in list(_HELD.values()):
        try:
            f.close()
        except (OSError, ValueError):
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


STOP_WITH_SERVER = "SHOCKLAB_STOP_WITH_PARENT"   # set by the API server for the runs it starts


def stop_with_server() -> None:
    """In a run the API server started (its pid in ``SHOCKLAB_STOP_WITH_PARENT``): get SIGTERM
    when the server ends, however it ends. A server killed outright (SIGKILL, the out-of-memory
    killer) runs no shutdown, and its analysis went on and wrote its run; SIGTERM lets the run
    remove its temporary directory, and its own workers follow it (``die_with_parent``)."""
    raw = os.environ.pop(STOP_WITH_SERVER, "")
    if raw.isdigit():
        die_with_parent(int(raw), signal.SIGTERM)


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """In a worker process: be sent ``sig`` (SIGKILL) when the process ``parent_pid`` that
    started it ends (Linux ``prctl(PR_SET_PDEATHSIG)``), and get it now if it has ended already
    (it died before the call). Elsewhere, or without ctypes, nothing. Linux sends the signal when
    the *thread* that forked the worker ends, not the process: start pools from the main thread
    or another thread that outlives them (every caller does), never from a short-lived one (the
    API server's job thread waits for its run to end)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return
    pr_set_pdeathsig = 1
    if prctl(pr_set_pdeathsig, int(sig), 0, 0, 0) != 0:
        return
    if os.getppid() != parent_pid:  # the parent died between the fork and the prctl
        os.kill(os.getpid(), sig)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a container's or a CI
    runner's share), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
