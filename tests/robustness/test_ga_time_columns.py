"""Google Analytics' time columns with one malformed value (docs audit 47): a `Date` + `Hour`
file whose `Hour` is once outside 0-23 or empty was read DAILY (24 rows a day averaged, `Hour` a
KPI), and one malformed YYYYMMDD `Date` got "holds numbers ('20250101' in data row 1)". Both are
exit 2 naming the data row, the column and the value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.robustness.test_kpis_file_shapes import _bad  # exit 2, one line, nothing written

from analytics.external import load_kpis_file

HOURS = pd.date_range("2025-03-01", periods=24 * 10, freq="h")


def _ga4(path, hour_at_4=None):
    hours = [f"{t:%H}" for t in HOURS]
    if hour_at_4 is not None:
        hours[4] = hour_at_4
    rows = "".join(f"{t:%Y%m%d},{h},{44 + i % 3}\n" for i, (t, h) in enumerate(zip(
        HOURS, hours, strict=True)))
    path.write_text("Date,Hour,sessions\n" + rows)
    return path


@pytest.mark.parametrize(("hour", "said"), [("24", "holds '24'"), ("", "is empty"),
                                            ("-1", "holds '-1'"), ("x", "holds 'x'"),
                                            ("3.5", "holds '3.5'")])
def test_a_bad_hour_is_named_not_read_daily(cli, tmp_path, hour, said):
    p = _ga4(tmp_path / "gah.csv", hour)
    _bad(cli, tmp_path, p, "column 'Hour'", "'Date'", said, "data row 5")


def test_whole_hours_written_as_decimals_still_read_hourly(tmp_path):
    p = tmp_path / "gah.csv"
    p.write_text("Date,Hour,sessions\n" + "".join(
        f"{t:%Y%m%d},{t.hour}.0,{i}\n" for i, t in enumerate(HOURS)))
    ds = load_kpis_file(p)
    assert ds.ingest["step"] == str(pd.Timedelta("1h")) and ds.ingest["kpis"] == ["sessions"]
    np.testing.assert_array_equal(ds.tables["kpis_daily"]["sessions"], np.arange(len(HOURS)))


def test_a_kpi_named_hour_stays_a_kpi(tmp_path):
    """Mostly outside 0-23 (hours worked per day, duplicated dates): a KPI, as before."""
    days = pd.date_range("2025-01-01", periods=40, freq="D").repeat(2)
    p = tmp_path / "h.csv"
    p.write_text("date,hour,orders\n" + "".join(
        f"{d:%Y-%m-%d},{30 + i % 5},{100 + i}\n" for i, d in enumerate(days)))
    assert load_kpis_file(p).ingest["kpis"] == ["hour", "orders"]


@pytest.mark.parametrize(("bad", "row"), [("2025013", 5), ("20251301", 2), ("2025010100", 9)])
def test_one_malformed_yyyymmdd_date_is_named(cli, tmp_path, bad, row):
    days = [f"{d:%Y%m%d}" for d in pd.date_range("2025-01-01", periods=60, freq="D")]
    days[row - 1] = bad
    p = tmp_path / "ga.csv"
    p.write_text("Date,sessions\n" + "".join(f"{d},{1000 + i}\n" for i, d in enumerate(days)))
    _bad(cli, tmp_path, p, "column 'Date'", repr(bad), f"data row {row}", "YYYYMMDD")
