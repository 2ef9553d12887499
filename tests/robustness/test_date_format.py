"""`--date-format` that matches none of a file's dates said "no valid sales rows left after
cleaning (removed: bad_value 6000)": the user's format, not their data, was wrong. One line now
names the flag and the first date it did not match. A real process on a real file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _file(path: Path) -> Path:
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    rows = [{"InvoiceNo": str(536000 + i), "StockCode": "85123A", "Description": "MUG",
             "Quantity": 2, "InvoiceDate": d.strftime("%d/%m/%Y 10:%M"), "UnitPrice": 2.5,
             "CustomerID": 17850 + i % 7, "Country": "United Kingdom"}
            for i, d in enumerate(days)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _analyse(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               SHOCKLAB_LOG_DIR="", SHOCKLAB_STATE_DIR=str(cwd / "state"))
    return subprocess.run([sys.executable, str(ROOT / "run_analysis.py"), *args, "--quiet"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_a_date_format_matching_no_date_names_the_flag_and_a_date(tmp_path):
    f = _file(tmp_path / "tx.csv")
    out = tmp_path / "run"
    r = _analyse("--transactions", str(f), "--date-format", "%Y-%m-%d", "--out", str(out),
                 cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1
    assert "--date-format '%Y-%m-%d'" in line and "01/01/2024 10:00" in line, line
    assert not out.exists()


def test_the_right_date_format_still_analyses(tmp_path):
    f = _file(tmp_path / "tx.csv")
    r = _analyse("--transactions", str(f), "--date-format", "%d/%m/%Y %H:%M", "--out",
                 str(tmp_path / "run"), "--set", "customers.enabled=false", "--set",
                 "insights.plots=false", cwd=tmp_path)   # plots: most of the run, read by none
    assert r.returncode == 0, r.stderr


def test_a_date_format_of_the_other_day_order_is_refused_not_half_read(tmp_path):
    """A day-first file read with a month-first --date-format was analysed, exit 0: the dates
    with a day up to 12 read with day and month swapped, the others left out as bad values (CLI
    help audit 2026-12-05: 1,814 of 3,000 rows, a KPI table 2,776 days long instead of 848)."""
    from analytics.transactions import parse_dates
    from shocklab.errors import InputError

    ts = pd.Series(pd.date_range("2024-01-01", periods=40, freq="D").strftime("%d/%m/%Y 10:00"))
    import pytest

    with pytest.raises(InputError, match=r"--date-format '%m/%d/%Y %H:%M': 19 of the 40 "
                                         r"InvoiceDate values are dates it does not match"):
        parse_dates(ts, "%m/%d/%Y %H:%M")
    ok, _ = parse_dates(ts, "%d/%m/%Y %H:%M")
    assert pd.Series(ok).notna().all()
    junk = pd.concat([ts, pd.Series(["n/a"])], ignore_index=True)   # a value that is no date
    parsed, report = parse_dates(junk, "%d/%m/%Y %H:%M")            # stays a counted bad value
    assert report["unparsed_rows"] == 1
