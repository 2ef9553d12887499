"""`--as-of` after the data's last day is bad input: the customer models used to read the empty
days after the data as everyone lapsing (a 2030 as-of on a 2025 store: no churn model, CLV from an
activity of 0.02, actions for every customer) and exit 0. A real process, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _analyse(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               SHOCKLAB_LOG_DIR="", SHOCKLAB_STATE_DIR=str(cwd / "state"))
    return subprocess.run([sys.executable, str(ROOT / "run_analysis.py"), *args, "--quiet"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("as_of, starts", [
    ("2030-01-01", "error: --as-of 2030-01-01"),
    # before the data: it ran the whole analysis and failed in the customer stage with
    # 'orders: no completed orders on or before …', naming neither the flag nor the valid days
    ("2001-01-01", "error: --as-of 2001-01-01: before"),
])
def test_as_of_outside_the_order_days_is_exit_2_naming_the_span(tiny_world, tmp_path, as_of,
                                                                starts):
    last = json.loads((tiny_world / "manifest.json").read_text())["period"]["end"]
    out = tmp_path / "run"
    r = _analyse("--data", str(tiny_world), "--out", str(out), "--as-of", as_of, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith(starts)
    assert last in line
    assert not out.exists()


def test_as_of_on_the_last_order_day_still_runs(tiny_world, tmp_path):
    last = json.loads((tiny_world / "manifest.json").read_text())["period"]["end"]
    out = tmp_path / "run"
    # no plots: the customer models' as-of is what is checked (plots were most of the run's time)
    r = _analyse("--data", str(tiny_world), "--out", str(out), "--as-of", last, "--set",
                 "insights.plots=false", "--set", "customers.plots=false", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "insights.json").read_text())["customers"]["as_of"] == last


def test_as_of_with_kpis_is_exit_2(tmp_path):
    """--as-of dates the customer models; a --kpis run has none, and the flag was silently
    ignored (the run id even carried it)."""
    f = tmp_path / "k.csv"
    f.write_text("date,signups\n" + "".join(f"2025-01-{d:02d},{100 + d % 3}\n"
                                          for d in range(1, 29)))
    out = tmp_path / "run"
    r = _analyse("--kpis", str(f), "--as-of", "2025-01-10", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "--as-of" in line and "--kpis" in line, line
    assert not out.exists()
