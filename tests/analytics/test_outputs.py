"""analytics.outputs, the one writer of the run directory: the fast CSV path writes pandas' bytes,
and a stage leaves its artefacts on the context without touching the disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.context import DataSet, RunContext
from analytics.outputs import _csv_fast, customer_files, write_artefacts


def _frame(times: bool) -> pd.DataFrame:
    d = pd.to_datetime(["2025-01-01", "2025-01-02", None, "2025-03-04"])
    if times:
        d = d + pd.Timedelta(hours=5)
    return pd.DataFrame({
        "customer_id": ["C1", "C2", "C3", "C4"],
        "segment": pd.Categorical(["Champions", "At Risk", "At Risk", "Lost"]),
        "first_order": d,
        "value": [1.0, 0.12345, np.nan, 1e-5],
        "orders": [1, 2, 3, 4],
        "flag": [True, False, True, False],
    })


@pytest.mark.parametrize("times", [False, True])
@pytest.mark.parametrize("date_format", [None, "%Y-%m-%d"])
def test_fast_csv_writes_the_bytes_pandas_writes(tmp_path, times, date_format):
    df = _frame(times)
    _csv_fast(df, tmp_path / "fast.csv", date_format=date_format)
    df.to_csv(tmp_path / "pandas.csv", index=False, date_format=date_format)
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_stage_artefacts_are_written_only_by_the_writer(tmp_path, make_config):
    ctx = RunContext(
        config=make_config(), data=DataSet(path=None, tables={}), out_dir=tmp_path,
        customers={"churn": {"status": "ok"}},
        customer_tables={"actions": _frame(False)[["customer_id", "segment"]]},
        figures={"plots/x.png": b"\x89PNG"},
    )
    assert list(tmp_path.iterdir()) == []
    write_artefacts(ctx)
    assert (tmp_path / "plots" / "x.png").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "customers").iterdir()) == customer_files(
        ctx.customer_tables, True, None
    ) == ["actions.csv", "churn_metrics.json"]


def test_summary_tables_keep_totals_in_plain_digits(tmp_path, make_config):
    """tables/*.csv at the run's 6 significant digits wrote a channel's revenue 15,209,876.54 as
    1.521e+07 (4 digits shown); the tables keep at least 10. kpis_daily.csv keeps the setting."""
    from analytics.outputs import _write_kpi_tables

    kd = pd.DataFrame({"date": ["2025-01-01"], "dimension": ["overall"], "segment": ["all"],
                       "revenue": [81234.5678912]})
    ctx = RunContext(config=make_config(), data=DataSet(path=None, tables={}), out_dir=tmp_path,
                     kpis_daily=kd,
                     kpi_tables={"channel_performance": pd.DataFrame(
                         {"channel": ["paid_search"], "revenue": [15209876.5432],
                          "conversion_rate": [0.0280141058]})})
    _write_kpi_tables(ctx, tmp_path)
    text = (tmp_path / "tables" / "channel_performance.csv").read_text()
    assert "e+" not in text and "15209876.54" in text and "0.0280141058" in text
    assert "81234.6" in (tmp_path / "kpis_daily.csv").read_text()


def test_kpis_daily_keeps_a_big_stores_counts_exact(tmp_path, make_config):
    """A store with 1,234,567 sessions a day: kpis_daily.csv (and /kpis, which serves it) wrote
    them at 6 significant digits as 1.23457e+06 — read back 1,234,570 sessions, a count that is
    not the store's — and revenue of 12,345,678.91 as 1.23457e+07. Where a value has more integer
    digits than ``output.float_digits``, the file now gets as many digits as that value has
    (counts exact, no exponent); a smaller store's file is unchanged."""
    from analytics.outputs import _write_detections, _write_kpi_tables

    kd = pd.DataFrame({"date": ["2025-01-01", "2025-01-02"], "dimension": "overall",
                       "segment": "all", "sessions": [1234567.0, np.nan],
                       "revenue": [12345678.91, 81234.5678912],
                       "conversion_rate": [0.0280141058, np.nan]})
    det = kd[["date", "dimension", "segment"]].assign(kpi="sessions", actual=kd["sessions"])
    ctx = RunContext(config=make_config(), data=DataSet(path=None, tables={}), out_dir=tmp_path,
                     kpis_daily=kd, detections=det)
    _write_kpi_tables(ctx, tmp_path)
    _write_detections(ctx, tmp_path)
    for name in ("kpis_daily.csv", "detections.csv"):
        text = (tmp_path / name).read_text()
        assert "e+" not in text and "1234567" in text, text
        back = pd.read_csv(tmp_path / name)
        assert back["sessions" if name == "kpis_daily.csv" else "actual"].iloc[0] == 1234567
    back = pd.read_csv(tmp_path / "kpis_daily.csv")
    assert back["revenue"].iloc[0] == 12345679  # as many digits as its integer part
    # a store below a million keeps the setting's 6 digits
    small = kd.assign(sessions=[28646.0, np.nan], revenue=[86154.53, 81234.5678912])
    ctx = RunContext(config=make_config(), data=DataSet(path=None, tables={}), out_dir=tmp_path,
                     kpis_daily=small)
    _write_kpi_tables(ctx, tmp_path)
    assert "86154.5," in (tmp_path / "kpis_daily.csv").read_text()
