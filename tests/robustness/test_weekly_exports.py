"""A weekly KPI export (one row a week, the week's totals) through `run_analysis.py --kpis`:
session 42's pass read its insights against the data it was built from. Before: every channel's
baseline null (no flag for a halved channel), the forecast 7 times the revenue (rows fitted as
days), the KPI plots blank (one point a week between NaN days) and no channels.png, the months'
seasonality means a week's revenue; on a daily file of slices only the forecast said "less than
56 days of history" for 200 days; a -0.04 % week read "revenue down +0.0%"."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

WEEKS = pd.date_range("2024-01-01", periods=90, freq="W-MON")
CHANNELS = {"organic": 0.5, "paid": 0.3, "email": 0.2}


@pytest.fixture
def weekly(tmp_path):
    """Long layout: overall and three channels, ~7,000 revenue a week (1,000 a day), a yearly
    swing of +-10 %; email halved in the last week."""
    return _weekly_file(tmp_path, {len(WEEKS) - 1: 0.5})


def _weekly_file(tmp_path, cut: dict[int, float]):
    """The weekly file with email's orders x factor on the rows ``cut`` names."""
    rng = np.random.default_rng(7)
    season = 1 + 0.1 * np.sin(2 * np.pi * WEEKS.day_of_year / 365.25)
    rows, total = [], {k: np.zeros(len(WEEKS)) for k in ("revenue", "orders", "sessions")}
    for ch, share in CHANNELS.items():
        orders = rng.poisson(1400 * share * season).astype(float)
        if ch == "email":
            for row, factor in cut.items():
                orders[row] = round(orders[row] * factor)
        vals = {"orders": orders, "revenue": orders * 5.0,
                "sessions": rng.poisson(42000 * share * season).astype(float)}
        for k, v in vals.items():
            total[k] += v
            rows.append(pd.DataFrame({"date": WEEKS.strftime("%Y-%m-%d"), "kpi": k, "value": v,
                                      "dimension": "channel", "segment": ch}))
    for k, v in total.items():
        rows.append(pd.DataFrame({"date": WEEKS.strftime("%Y-%m-%d"), "kpi": k, "value": v,
                                  "dimension": "", "segment": ""}))
    p = tmp_path / "weekly.csv"
    pd.concat(rows, ignore_index=True).to_csv(p, index=False)
    return p


def test_a_weekly_exports_insights_read_days_not_weeks(cli, tmp_path, weekly):
    r = cli("analysis", "--kpis", weekly, "--layout", "long", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-800:]
    doc = json.loads((tmp_path / "run" / "insights.json").read_text())
    day = next(t for t in doc["summary"]["totals"] if t["kpi"] == "revenue")["daily_mean"]
    assert day == pytest.approx(1_000.0, rel=0.1)
    # the forecast: a day is a day's revenue and a month about a month's (it was 7x)
    f = doc["forecast"]
    assert f["status"] == "ok"
    assert np.mean([d["yhat"] for d in f["daily"]]) == pytest.approx(day, rel=0.25)
    full = next(m for m in f["monthly"] if not m["partial"])
    assert full["yhat"] == pytest.approx(day * full["days"], rel=0.25)
    # the months' seasonality: days' means (a week's before), and no weekday profile
    se = doc["seasonality"]
    assert se["weekday"] is None
    assert all(0.7 * day < p["mean"] < 1.3 * day for p in se["monthly"]["points"])
    # the channels: a baseline for each, the halved one flagged beyond its noise
    ch = {c["channel"]: c for c in doc["channels"]["channels"]}
    assert all(c["baseline_revenue"] for c in ch.values())
    assert "email" in doc["channels"]["underperformers"]
    assert ch["email"]["revenue_vs_baseline_pct"] < -35
    assert -ch["email"]["revenue_vs_baseline_pct"] > 2 * ch["email"]["revenue_noise_pct"]
    plots = {p.name for p in (tmp_path / "run" / "plots").iterdir()}
    assert {"channels.png", "kpi_revenue.png", "forecast.png"} <= plots
    # week over week: the last row is the 7 days from its date, the back-check's last week (the
    # headline named the 7 days ending on it), and the month four whole rows
    wow = next(c for c in doc["summary"]["week_over_week"] if c["kpi"] == "revenue")
    last = f["recent"]["weeks"][-1]
    assert (wow["current_start"], wow["current_end"]) == (last["start"], last["end"])
    assert wow["current"] == pytest.approx(last["actual"])
    assert f"({last['start']} to {last['end']} vs" in doc["summary"]["headline"]
    mom = next(c for c in doc["summary"]["month_over_month"] if c["kpi"] == "revenue")
    assert (mom["current_start"], mom["current_end"]) == (
        str(WEEKS[-4].date()), last["end"])


def test_the_kpi_plot_of_a_weekly_file_draws_a_line(tmp_path):
    """plot_kpi's series: each week's row spread over its days (a sum) or repeated (a ratio), so
    neighbouring days join; before, one value a week between NaN days drew nothing."""
    from analytics.forecasting import overall_series, per_day

    k = pd.DataFrame({"date": WEEKS[:10], "dimension": "overall", "segment": "all",
                      "revenue": 7_000.0, "conversion_rate": 0.03})
    y = overall_series(k, "revenue")
    assert y.notna().sum() == 10 and y.isna().sum() == 54   # points between NaN days
    days = per_day(y)
    assert days.notna().all() and len(days) == 70 and (days == 1_000.0).all()
    rate = per_day(overall_series(k, "conversion_rate"), mean=True)
    assert rate.notna().all() and np.allclose(rate, 0.03)


def test_a_weekly_gauge_is_plotted_at_its_level():
    """A weekly file's gauge (a latency, read as a mean) keeps its value on each day the plot
    draws; a count is spread over them (the first weekly fix spread every column but the
    ratios as a count: a gauge of 200 ms drew at 28.6)."""
    from types import SimpleNamespace

    from analytics.report import day_series

    k = pd.DataFrame({"date": WEEKS[:10], "dimension": "overall", "segment": "all",
                      "latency_ms": 200.0, "requests": 7_000.0})
    ctx = SimpleNamespace(kpis_daily=k, data=SimpleNamespace(ingest={
        "step_seconds": 7 * 86400.0, "day_figures": {"latency_ms": "mean", "requests": "sum"}}))
    gauge, count = day_series(ctx, "latency_ms"), day_series(ctx, "requests")
    assert len(gauge) == 70 and gauge.notna().all() and np.allclose(gauge, 200.0)
    assert len(count) == 70 and np.allclose(count, 1_000.0)
    assert day_series(ctx, "sessions").empty


def test_a_daily_file_of_slices_says_why_there_is_no_forecast(cli, tmp_path):
    days = pd.date_range("2025-01-01", periods=200, freq="D")
    rng = np.random.default_rng(3)
    rows = [pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "kpi": "revenue",
                          "value": rng.normal(1000, 30, len(days)).round(2),
                          "dimension": "channel", "segment": ch}) for ch in ("a", "b")]
    p = tmp_path / "slices.csv"
    pd.concat(rows).to_csv(p, index=False)
    r = cli("analysis", "--kpis", p, "--layout", "long", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-800:]
    f = json.loads((tmp_path / "run" / "insights.json").read_text())["forecast"]
    assert f["status"] == "skipped" and "overall" in f["reason"], f


def test_a_change_printed_as_zero_is_flat():
    from analytics.insights.narrative import _updown

    assert _updown(-0.0358) == "flat" and _updown(0.04) == "flat"
    assert _updown(-0.05) == "down" and _updown(0.06) == "up" and _updown(None) == "n/a"


def test_a_change_over_several_weekly_rows_is_measured_over_them(cli, tmp_path):
    """The measured span walked day by day and stopped at the NaN days between rows: a three-week
    email drop was measured on one row (its peak week)."""
    p = _weekly_file(tmp_path, {60: 0.3, 61: 0.3, 62: 0.3})
    r = cli("analysis", "--kpis", p, "--layout", "long", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-800:]
    inc = [i for i in json.loads((tmp_path / "run" / "insights.json").read_text())["incidents"]
           if i["incident_id"].startswith("I-revenue-channel-email-") and i["direction"] == "down"
           and i.get("measured_start")]
    assert inc, "no measured email revenue incident"
    i = inc[0]
    # the three rows, each standing for its 7 days
    assert i["measured_start"] == str(WEEKS[60].date())
    assert i["measured_end"] == str((WEEKS[62] + pd.Timedelta(days=6)).date())
    assert -80 < i["measured_change_pct"] < -60


def test_a_slices_only_file_with_visits_is_not_said_to_have_none(cli, tmp_path):
    """A daily file of channel slices with their sessions (no overall rows): a channel's outage
    was explained as "the input has no visitor data" (the reason read the store-wide sessions
    only) beside a title quoting the channel's sessions."""
    days = pd.date_range("2025-01-01", periods=200, freq="D")
    rng = np.random.default_rng(5)
    rows = []
    for ch, n in (("search", 3000.0), ("social", 2000.0)):
        sessions = rng.poisson(n, len(days)).astype(float)
        if ch == "search":
            sessions[150:154] = np.round(sessions[150:154] * 0.3)
        orders = rng.binomial(sessions.astype(int), 0.03).astype(float)
        for k, v in (("sessions", sessions), ("orders", orders), ("revenue", orders * 40.0)):
            rows.append(pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "kpi": k, "value": v,
                                      "dimension": "channel", "segment": ch}))
    p = tmp_path / "slices.csv"
    pd.concat(rows).to_csv(p, index=False)
    r = cli("analysis", "--kpis", p, "--layout", "long", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-800:]
    eps = [e for e in json.loads((tmp_path / "run" / "insights.json").read_text())["episodes"]
           if "sessions in channel search down" in e["title"]]
    assert eps, "the outage has no episode"
    assert "no visitor data" not in eps[0]["narrative"], eps[0]["narrative"]


def test_a_monthly_file_says_why_there_is_no_week_over_week(cli, tmp_path):
    """A file of monthly rows (accepted with --step 30D): a week is no whole number of its rows,
    so no week- or month-over-month windows (they held one row or none), and the headline says
    why instead of "not enough history" (30 months)."""
    months = pd.date_range("2023-01-01", periods=30, freq="MS").strftime("%Y-%m-%d")
    rng = np.random.default_rng(3)
    pd.DataFrame({"date": months, "revenue": rng.poisson(30_000, 30).astype(float),
                  "orders": rng.poisson(6_000, 30).astype(float)}).to_csv(
        tmp_path / "monthly.csv", index=False)
    r = cli("analysis", "--kpis", tmp_path / "monthly.csv", "--step", "30D",
            "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr[-800:]
    doc = json.loads((tmp_path / "run" / "insights.json").read_text())
    s = doc["summary"]
    assert s["week_over_week"] == [] and s["month_over_month"] == []
    assert s["headline"].startswith("No week-over-week comparison: a week is not a whole number")
    from analytics.insights.grounding import check
    assert check(doc) == []
