"""A console that cannot show every character (a Latin-1 or ASCII locale, a Windows code page,
``PYTHONIOENCODING=ascii``): its lines are printed with the character escaped, as Python's stderr
does, never dropped. stdout was strict there: every console line holding a dash, an ellipsis or an
arrow — the scorecard, the alerts, "generating …" — was lost, each with a "--- Logging error ---"
traceback on stderr, and the run still said exit 0."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from shocklab.cli import run_cli, setup_logging

ROOT = Path(__file__).resolve().parents[2]


def test_run_cli_escapes_what_the_console_cannot_encode(monkeypatch):
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", "")
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="ascii", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)

    def main(argv):
        setup_logging("analysis").info("recall 1.00 — precision 0.96")
        print("generating …")
        return 0

    rc = run_cli(main, [])
    got, errors = out.buffer.getvalue(), err.buffer.getvalue()
    monkeypatch.undo()
    assert rc == 0, errors
    assert got.splitlines() == [b"recall 1.00 \\u2014 precision 0.96", b"generating \\u2026"]
    assert b"Logging error" not in errors


def test_generate_data_on_an_ascii_console(tmp_path):
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "SHOCKLAB_LOG_DIR": ""}
    p = subprocess.run([sys.executable, str(ROOT / "generate_data.py"), "--config",
                        str(ROOT / "config/scenarios/small.yaml"), "--out", str(tmp_path / "d")],
                       capture_output=True, env=env, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert b"Logging error" not in p.stderr, p.stderr.decode(errors="replace")[:2000]
    assert b"\\u2026" in p.stdout   # the "generating …" line, escaped, not dropped
