"""The bench scripts answer bad input as the CLIs do: one line on stderr naming the flag, value
or path and what is wrong, exit 2, nothing printed on stdout and nothing written. An unexpected
error is exit 3, never 1 (1 is a failed quality gate). Each case is one the audit of 2026-12-05
(or trying the flags after it) found ending in a traceback, in exit 1, or running anyway."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
           "SHOCKLAB_LOG_DIR": ""}
    return subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def _refused(out: subprocess.CompletedProcess, *says: str) -> str:
    """Exit 2, one line on stderr holding each of ``says``, nothing on stdout; the line."""
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and out.stdout == "", (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for s in says:
        assert s in lines[0], (s, lines[0])
    return lines[0]


@pytest.mark.parametrize("files", ["0", "-4"])
def test_bench_nab_refuses_a_files_count_below_one(tmp_path, files):
    """--files 0 was "no CSV file in …/data/<category>/ to run" (the flag unnamed); --files -4
    sliced from the end and ran every file but the last four of each category. (An empty --nab
    folder: the old code's answer comes at once, and names --nab, not --files.)"""
    out = tmp_path / "out"
    line = _refused(_run("bench_nab.py", "--files", files, "--nab", str(tmp_path),
                         "--out", str(out), cwd=tmp_path),
                    "--files", f"must be at least 1, got {files}")
    assert line.startswith("error: bench_nab.py: argument --files")
    assert not out.exists()
