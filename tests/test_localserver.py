"""The test helper that starts local servers retries a server whose port was taken."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests import localserver


def _exits(code: int):
    return lambda port: subprocess.Popen([sys.executable, "-c", f"import sys; sys.exit({code})"])


def test_a_server_that_exits_early_is_started_again_on_another_port():
    starts, ports = [], []

    def launch(port: int) -> subprocess.Popen:
        starts.append(port)
        code = "import sys; sys.exit(1)" if len(starts) == 1 else "import time; time.sleep(30)"
        return subprocess.Popen([sys.executable, "-c", code])

    def healthy(url: str) -> bool:   # only the second server answers
        ports.append(url)
        return len(starts) == 2

    proc, url = localserver.start(launch, healthy, wait_s=20)
    try:
        assert len(starts) == 2 and url == f"http://127.0.0.1:{starts[1]}"
    finally:
        proc.kill()
        proc.wait()


def test_every_try_exiting_is_an_error_naming_the_codes():
    codes = r"exited before answering on 3 ports \(exit codes \[4, 4, 4\]\)"
    with pytest.raises(RuntimeError, match=codes):
        localserver.start(_exits(4), lambda url: False, wait_s=20)


def test_a_server_that_never_answers_is_stopped_and_a_timeout():
    procs = []

    def launch(port: int) -> subprocess.Popen:
        procs.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        return procs[-1]

    with pytest.raises(TimeoutError, match="no answer from"):
        localserver.start(launch, lambda url: False, wait_s=1)
    assert procs[0].poll() is not None   # stopped, not left running
