"""``exit_process``: the exit code, atexit handlers and buffered output survive skipping the
interpreter's teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": SRC}, timeout=60)


def test_code_handlers_and_buffered_output_survive():
    p = _run("import atexit, sys\n"
             "from shocklab.cli import exit_process\n"
             "atexit.register(lambda: print('handler ran'))\n"
             "sys.stdout.write('buffered, no newline')\n"
             "exit_process(3)\n")
    assert p.returncode == 3
    assert p.stdout == "buffered, no newline" + "handler ran\n"


def test_a_live_thread_is_waited_for():
    p = _run("import threading, time\n"
             "from shocklab.cli import exit_process\n"
             "t = threading.Thread(target=lambda: (time.sleep(0.3), print('thread done')))\n"
             "t.start()\n"
             "exit_process(0)\n")
    assert p.returncode == 0 and p.stdout == "thread done\n"
