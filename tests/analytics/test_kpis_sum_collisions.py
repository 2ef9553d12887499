"""Rows snapped onto one period (or sharing a timestamp) of a count — a column declared with
`--sum-columns`, or the store's own counts and revenue — are summed under the default
`--duplicates mean` (a line repeated verbatim once): averaged, requests every 5-20 minutes on a
10-minute grid lost 18 % of each day (docs audit 47). Gauges keep the mean; an explicit
`--duplicates sum` / `first` applies to every column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.external import load_kpis_file


def _irregular(tmp_path, layout="wide"):
    rng = np.random.default_rng(3)
    gaps = rng.choice([5, 10, 15, 20], size=600, p=[0.4, 0.3, 0.2, 0.1])
    ts = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.cumsum(gaps), "min")
    req = rng.integers(5, 15, len(ts))
    cpu = np.round(40 + rng.normal(0, 1, len(ts)), 2)
    df = pd.DataFrame({"timestamp": ts, "requests": req, "cpu": cpu})
    if layout == "long":
        df = df.melt("timestamp", var_name="kpi", value_name="value")
    p = tmp_path / f"{layout}.csv"
    df.to_csv(p, index=False)
    return p, req, cpu


def _kpi(ds, name):
    k = ds.tables["kpis_daily"]
    if "kpi" in k.columns:
        k = k[k["kpi"] == name].rename(columns={"value": name})
    return k[name].to_numpy(dtype=float)


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_declared_counts_are_summed_where_rows_collide(tmp_path, layout):
    p, req, cpu = _irregular(tmp_path, layout)
    ds = load_kpis_file(p, sum_columns=["requests"], layout=layout, step="15min")
    assert ds.ingest["combined_rows"] > 50 and ds.ingest["duplicates_summed"] == ["requests"]
    assert np.nansum(_kpi(ds, "requests")) == req.sum()           # every request kept
    got = _kpi(ds, "cpu")                                         # the gauge: still a mean
    assert np.nanmax(got) <= cpu.max() and np.nanmin(got) >= cpu.min()
    plain = load_kpis_file(p, layout=layout, step="15min")       # undeclared: a gauge, averaged
    assert np.nansum(_kpi(plain, "requests")) < 0.9 * req.sum()
    assert plain.ingest["duplicates_summed"] == []


def test_an_explicit_rule_applies_to_every_column(tmp_path):
    p, req, cpu = _irregular(tmp_path)
    first = load_kpis_file(p, sum_columns=["requests"], duplicates="first", step="15min")
    assert np.nansum(_kpi(first, "requests")) < 0.9 * req.sum()
    summed = load_kpis_file(p, sum_columns=["requests"], duplicates="sum", step="15min")
    assert np.nansum(_kpi(summed, "cpu")) == pytest.approx(cpu.sum())


def test_the_audit_file_keeps_its_day_totals(tmp_path):
    """Auto step: 5-20 minute rows on the 10-minute grid the step rule picks."""
    p = tmp_path / "irreg.csv"
    rng = np.random.default_rng(1)
    ts = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.cumsum(rng.choice(
        [5, 15, 20, 25], size=600, p=[0.4, 0.2, 0.2, 0.2])), "min")
    pd.DataFrame({"timestamp": ts, "requests": 10}).to_csv(p, index=False)
    ds = load_kpis_file(p, sum_columns=["requests"])
    assert ds.ingest["step"] != ds.ingest["modal_step"] and ds.ingest["combined_rows"] > 20
    assert np.nansum(_kpi(ds, "requests")) == 6000


def test_the_stores_own_counts_are_summed_as_declared_ones(tmp_path):
    """`orders` and `revenue` in a --kpis file are counts by their names (their day is a sum):
    rows snapped together add up as a declared count's do (they were averaged); a ratio and a
    gauge keep the mean."""
    rng = np.random.default_rng(5)
    ts = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.cumsum(
        rng.choice([5, 10, 15, 20], size=600, p=[0.4, 0.3, 0.2, 0.1])), "min")
    orders = rng.integers(5, 15, len(ts))
    revenue = np.round(orders * 40.0 + rng.normal(0, 5, len(ts)), 2)
    cpu = np.round(40 + rng.normal(0, 1, len(ts)), 2)
    p = tmp_path / "store.csv"
    pd.DataFrame({"timestamp": ts, "orders": orders, "revenue": revenue, "cpu": cpu}).to_csv(
        p, index=False)
    ds = load_kpis_file(p, step="15min")
    assert ds.ingest["combined_rows"] > 50
    assert ds.ingest["duplicates_summed"] == ["orders", "revenue"]
    assert np.nansum(_kpi(ds, "orders")) == orders.sum()
    assert np.nansum(_kpi(ds, "revenue")) == pytest.approx(revenue.sum())
    got = _kpi(ds, "cpu")
    assert np.nanmax(got) <= cpu.max() and np.nanmin(got) >= cpu.min()


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_a_repeated_line_is_counted_once_two_readings_at_one_time_twice(tmp_path, layout):
    """A line of the file repeated (same timestamp and values) is one reading, not two; two
    different readings at one timestamp (a local hour repeated at a clock change) are both kept."""
    ts = pd.date_range("2025-01-01", periods=48 * 14, freq="h")
    df = pd.DataFrame({"timestamp": ts, "requests": 10})
    copies = df.iloc[[5, 6, 7]]                                   # three lines pasted twice
    other = pd.DataFrame({"timestamp": ts[[20]], "requests": [4]})  # a second reading at 20:00
    df = pd.concat([df, copies, other]).sort_values("timestamp", kind="stable")
    if layout == "long":
        df = df.melt("timestamp", var_name="kpi", value_name="value")
    p = tmp_path / f"dup_{layout}.csv"
    df.to_csv(p, index=False)
    ds = load_kpis_file(p, sum_columns=["requests"], layout=layout)
    got = _kpi(ds, "requests")
    assert np.nansum(got) == 10 * len(ts) + 4
    assert got[20] == 14 and got[5] == 10
