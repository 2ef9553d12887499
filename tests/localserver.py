"""Start a real local server (``shocklab serve``, ``streamlit run``) on a free port for a test.

A free port is picked by binding port 0 and closing it; the server binds it a moment later, so
another process may take it in between. A server that exits before it answers (its port was
taken) is started again on another port, at most ``TRIES`` times; one that neither answers nor
exits within the wait is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

TRIES = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(launch: Callable[[int], subprocess.Popen], healthy: Callable[[str], bool],
          wait_s: float, tries: int = TRIES) -> tuple[subprocess.Popen, str]:
    """(the running process, its base URL ``http://127.0.0.1:<port>``) once ``healthy(url)``.
    Raises RuntimeError naming the last exit code when every try exited early, TimeoutError when
    a server neither answered nor exited within ``wait_s`` (it is stopped first)."""
    codes = []
    for _ in range(tries):
        port = free_port()
        proc = launch(port)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + wait_s
        while True:
            if healthy(url):
                return proc, url
            if proc.poll() is not None:
                codes.append(proc.returncode)
                break
            if time.monotonic() > deadline:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise TimeoutError(f"no answer from {url} within {wait_s:.0f} s")
            time.sleep(0.2)
    raise RuntimeError(f"the server exited before answering on {tries} ports (exit codes {codes})")


@contextmanager
def shocklab_serve(reports: Path, runs: Path, base: Path, wait_s: float = 60,
                   args: tuple[str, ...] = ()) -> Iterator[str]:
    """A ``shocklab serve`` process over ``reports`` and ``runs`` (cwd and logs under ``base``;
    ``args``: more flags, e.g. ``--allow-analysis``), answering ``/health``: its base URL;
    stopped on exit. Fails the test when it never answers."""
    with shocklab_server(reports, runs, base, wait_s, args) as (_, url):
        yield url


@contextmanager
def shocklab_server(reports: Path, runs: Path, base: Path, wait_s: float = 60,
                    args: tuple[str, ...] = (), env: dict[str, str] | None = None,
                    ) -> Iterator[tuple[subprocess.Popen, str]]:
    """``shocklab_serve``'s server as (its process, its base URL), for a test that signals it;
    ``env``: more environment variables (a ``PYTHONPATH`` goes before the checkout's)."""
    import pytest

    root = Path(__file__).resolve().parents[1]
    extra = dict(env or {})
    path = [p for p in (extra.pop("PYTHONPATH", ""), str(root / "src"), str(root)) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path),
               SHOCKLAB_LOG_DIR=str(base / "logs"), **extra)

    def launch(port: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "shocklab.main", "serve", "--reports", str(reports), "--runs",
             str(runs), "--port", str(port), *args],
            cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/health", timeout=30) as r:  # noqa: S310 - loopback
                return r.status == 200
        except OSError:
            return False

    try:   # bounded: at most ~wait_s for the interpreter and FastAPI to start
        proc, url = start(launch, healthy, wait_s=wait_s)
    except (RuntimeError, TimeoutError) as e:
        pytest.fail(f"shocklab serve: {e}")
    try:
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
