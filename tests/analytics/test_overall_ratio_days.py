"""A sub-daily ratio KPI's day (``forecasting.overall_series``, the report's KPI plots): the day's
pooled ratio, as the KPI layer computes a day (orders / sessions, revenue / orders), not the plain
mean of its periods' ratios. An hourly file whose day held 22 hours at 1 % conversion, one busy
hour at 40 % and one quiet hour of one session and one order plotted that day at 6.75 % (its
orders over its sessions: 2.7 %). Where no denominator column exists, the mean stays and the plot
says so."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.analytics.insights_synth import make_ctx

from analytics import report
from analytics.forecasting import overall_series, ratio_note


def _hourly(days: int = 2) -> pd.DataFrame:
    stamps = pd.date_range("2025-03-03", periods=24 * days, freq="h")
    sessions = np.full(len(stamps), 100.0)
    orders = np.full(len(stamps), 1.0)
    revenue = np.full(len(stamps), 50.0)
    sessions[3::24], orders[3::24], revenue[3::24] = 1.0, 1.0, 2000.0  # one quiet hour a day
    orders[5::24], revenue[5::24] = 40.0, 400.0                        # and one busy hour
    return pd.DataFrame({"date": stamps, "dimension": "overall", "segment": "all",
                         "sessions": sessions, "orders": orders, "revenue": revenue,
                         "conversion_rate": orders / sessions, "aov": revenue / orders})


def test_an_hourly_ratio_day_is_the_days_pooled_ratio():
    k = _hourly()
    day = k.iloc[:24]
    conv = overall_series(k, "conversion_rate")
    aov = overall_series(k, "aov")
    pooled_conv = day["orders"].sum() / day["sessions"].sum()
    pooled_aov = day["revenue"].sum() / day["orders"].sum()
    # the crafted day: the mean of the hours' ratios is far from the pooled ratio
    assert day["conversion_rate"].mean() > 2 * pooled_conv
    assert day["aov"].mean() > 2 * pooled_aov
    assert np.allclose(conv.to_numpy(), pooled_conv, rtol=1e-12)
    assert np.allclose(aov.to_numpy(), pooled_aov, rtol=1e-12)
    assert ratio_note(k, "conversion_rate") is None and ratio_note(k, "aov") is None


def test_a_pooled_ratio_keeps_the_files_own_units():
    """A file's conversion column in percent stays in percent: the periods' ratios are weighted by
    the denominator, never replaced by our orders / sessions."""
    k = _hourly()
    pct = k.assign(conversion_rate=k["conversion_rate"] * 100)
    assert np.allclose(overall_series(pct, "conversion_rate").to_numpy(),
                       100 * overall_series(k, "conversion_rate").to_numpy(), rtol=1e-12)


def test_without_its_denominator_a_ratio_day_is_the_mean_and_says_so():
    k = _hourly().drop(columns=["sessions"])
    conv = overall_series(k, "conversion_rate")
    assert np.allclose(conv.to_numpy(), k["conversion_rate"].iloc[:24].mean(), rtol=1e-12)
    note = ratio_note(k, "conversion_rate")
    assert note is not None and "plain mean" in note and "sessions" in note
    # a period without its sessions: that day alone is a mean, and the note counts it
    k = _hourly(days=3)
    k.loc[30, "sessions"] = np.nan
    conv = overall_series(k, "conversion_rate")
    assert np.isclose(conv.iloc[1], k["conversion_rate"].iloc[24:48].mean(), rtol=1e-12)
    assert conv.iloc[0] == conv.iloc[2] != conv.iloc[1]
    assert ratio_note(k, "conversion_rate").startswith("1 of 3 days")


def test_daily_rows_keep_their_own_ratio(tmp_path):
    """A store's daily table: the day is its row (no pooling arithmetic, no note)."""
    ctx = make_ctx(tmp_path, [], [])
    k = ctx.kpis_daily
    o = k.loc[k["dimension"] == "overall"]
    for kpi in ("conversion_rate", "aov"):
        y = overall_series(k, kpi)
        assert y.to_numpy().tolist() == o[kpi].astype(float).tolist()
        assert ratio_note(k, kpi) is None


def test_the_kpi_plot_names_a_mean_of_ratios(tmp_path, plotted):
    figs = plotted
    ctx = make_ctx(tmp_path, [], [])
    ctx.detections, ctx.incidents = None, []
    ctx.kpis_daily = _hourly(days=14).drop(columns=["sessions"])
    assert report.plot_kpi(ctx, "conversion_rate") is not None
    assert "plain mean" in figs[-1].axes[0].get_title()
    ctx.kpis_daily = _hourly(days=14)
    assert report.plot_kpi(ctx, "conversion_rate") is not None
    assert "mean" not in figs[-1].axes[0].get_title()
