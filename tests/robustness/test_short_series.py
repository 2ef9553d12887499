"""Series too short for a first calibration block (a few rows) score nothing instead of failing
every detector (``calibrate.blocks`` gave ``zip(..., strict=True)`` an empty plan)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.detectors.calibrate import blocks

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("t", [0, 1, 3, 7])
def test_blocks_of_a_too_short_series_are_empty(t):
    assert blocks(t, 7, 14) == []


def test_blocks_cover_the_rest_of_a_longer_series():
    assert blocks(20, 7, 14) == [(7, 14), (14, 20)]


@pytest.mark.parametrize("rows", [3, 5])
def test_a_few_rows_analyse_without_a_detector_failure(tmp_path, rows):
    csv = tmp_path / "short.csv"
    csv.write_text("timestamp,value\n" + "".join(
        f"2024-01-0{i + 1},{v}\n" for i, v in enumerate([1, 2, 3, 2, 5][:rows])))
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, str(ROOT / "run_analysis.py"), "--kpis", str(csv),
                        "--out", str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    status = json.loads((out / "run.json").read_text())["detector_status"]
    voters = {k: v for k, v in status.items() if not v.get("skipped")}
    assert voters, status
    assert all(v["ok"] for v in voters.values()), status
    assert "failed" not in p.stderr
