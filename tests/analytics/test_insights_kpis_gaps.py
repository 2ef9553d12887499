"""A `--kpis` file's missing periods are gaps — "never flagged, never zero", the run warns — yet the
insights summed them as zeros: a daily file missing two days of its last week was headlined
"revenue down -26.1% week over week" (its observed days were up 3 %), and on NAB's speed_7578
(555 of 1312 ten-minute periods missing) an incident flagged down 20 % carried
`baseline_magnitude_pct` +117 % (a day with 99 readings summed against one with 44)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analytics import drivers as dr
from shocklab.cli import run_cli


def _kpis(stamps, values: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({"date": stamps, "dimension": "overall", "segment": "all", **values})


def test_a_day_with_missing_periods_is_its_observed_mean_over_the_day():
    stamps = pd.date_range("2025-03-03", periods=48, freq="h")
    speed = np.full(48, 60.0)
    speed[30:42] = np.nan  # half of the second day unread
    panel = dr.SlicePanel(_kpis(stamps, {"value": speed}), gaps=True)
    day = panel.window_sums("value", stamps[0], stamps[0], "actual").iloc[0]
    assert panel.window_sums("value", stamps[24], stamps[24], "actual").iloc[0] == day == 60 * 24
    # a first day the file covers in part counts as a whole day too
    late = dr.SlicePanel(_kpis(stamps[6:], {"value": speed[6:]}), gaps=True)
    assert late.window_sums("value", stamps[6], stamps[6], "actual").iloc[0] == 60 * 24
    # store data keeps plain sums (a slice with no order that day has no row there)
    plain = dr.SlicePanel(_kpis(stamps, {"value": speed}))
    assert plain.window_sums("value", stamps[24], stamps[24], "actual").iloc[0] == 60 * 12


def test_a_window_with_missing_days_is_its_observed_days_mean():
    stamps = pd.date_range("2025-03-03", periods=14, freq="D")
    rev = np.full(14, 100.0)
    rev[[9, 10]] = np.nan
    kpis = _kpis(stamps, {"revenue": rev})
    end = stamps[-1]
    week = dr.SlicePanel(kpis, gaps=True).window_sums("revenue", stamps[7], end, "actual")
    prev = dr.SlicePanel(kpis, gaps=True).window_sums("revenue", stamps[7], end, "shift",
                                                      shift_days=7)
    assert week.iloc[0] == prev.iloc[0] == 700
    assert dr.SlicePanel(kpis).window_sums("revenue", stamps[7], end, "actual").iloc[0] == 500


def test_missing_days_in_the_last_week_are_not_headlined_as_a_fall(tmp_path):
    from run_analysis import main

    rng = np.random.default_rng(3)
    days = 130
    stamps = pd.date_range("2025-01-06", periods=days, freq="D")
    orders = rng.poisson(200, days).astype(float)
    df = pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"),
                       "revenue": (orders * 50 * rng.normal(1, 0.01, days)).round(2),
                       "orders": orders,
                       "sessions": rng.poisson(8000, days).astype(float)})
    df = df.drop(index=[days - 4, days - 3])  # two days of the last week never exported
    csv = tmp_path / "daily.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    ins = json.loads((out / "insights.json").read_text())
    wow = {c["kpi"]: c for c in ins["summary"]["week_over_week"]}
    for kpi in ("revenue", "orders", "sessions"):
        assert abs(wow[kpi]["change_pct"]) < 8, (kpi, wow[kpi])  # was about -28 %
    assert "down -2" not in ins["brief"]["headline"], ins["brief"]["headline"]
    md = (out / "insights.md").read_text()
    assert "| revenue |" in md and "-2" not in md.split("| revenue |")[1].split("\n")[0]
    # the forecast's recent weeks compare the days observed (the last week read -28 %, OUTSIDE)
    recent = ins["forecast"]["recent"]
    last = recent["weeks"][-1]
    assert abs(last["deviation_pct"]) < 10 and not last["outside_interval"], last
    assert abs(recent["deviation_pct"]) < 10, recent


def test_the_forecasts_daily_series_counts_a_days_gaps_at_its_observed_mean():
    from analytics.forecasting import overall_series

    stamps = pd.date_range("2025-03-03", periods=72, freq="h")
    rev = np.full(72, 10.0)
    rev[30:42] = np.nan  # half of the second day unread
    y = overall_series(_kpis(stamps, {"revenue": rev}))
    assert y.tolist() == [240.0, 240.0, 240.0]  # the second day read 120 (a 50 % "outage")


def test_a_weekly_file_counts_its_grid_weeks_not_every_day():
    """The days between a weekly file's rows are not gaps: a window sums the weeks it holds (an
    earlier form of the fix read them as gaps and made a 60-week total 7 times too large); a
    missing week (a row without a value) counts at the observed weeks' mean."""
    stamps = pd.date_range("2024-01-01", periods=10, freq="W-MON")
    rev = np.full(10, 700.0)
    panel = dr.SlicePanel(_kpis(stamps, {"revenue": rev}), gaps=True)
    assert panel.window_sums("revenue", stamps[0], stamps[-1], "actual").iloc[0] == 7000
    rev[4] = np.nan
    panel = dr.SlicePanel(_kpis(stamps, {"revenue": rev}), gaps=True)
    assert panel.window_sums("revenue", stamps[0], stamps[-1], "actual").iloc[0] == 7000
    # a week of the weekly file: its own row, not 7 days of it
    assert panel.window_sums("revenue", stamps[6], stamps[6] + pd.Timedelta(days=6), "shift",
                             shift_days=7).iloc[0] == 700
    # the missing week alone is unknown (NaN), never zero
    assert np.isnan(panel.window_sums("revenue", stamps[5], stamps[5] + pd.Timedelta(days=6),
                                      "shift", shift_days=7).iloc[0])


def test_a_weekly_files_baselines_read_its_weeks():
    """A same-weekday baseline of a weekly file: the median of the weeks before (it needed every
    day of the window, and the six days between rows have none: every incident's
    baseline_magnitude_pct and every channel's baseline were null on weekly files)."""
    stamps = pd.date_range("2024-01-01", periods=10, freq="W-MON")
    rev = np.array([700.0, 710, 690, 720, 705, 800, 640, 760, 600, 350])
    panel = dr.SlicePanel(_kpis(stamps, {"revenue": rev}), gaps=True)
    week = (stamps[-1], stamps[-1] + pd.Timedelta(days=6))
    assert panel.window_sums("revenue", *week, "trailing").iloc[0] == np.median(rev[-5:-1])
    # over two weeks: each week against the four weeks before the window (trailing_lags)
    two = panel.window_sums("revenue", stamps[-2], stamps[-1] + pd.Timedelta(days=6), "trailing")
    assert two.iloc[0] == 2 * np.median(rev[-6:-2])
    # a missing week among the four: the median of the three others; the week itself missing:
    # its baseline is still known (the window's actual is the gap)
    rev[-3] = np.nan
    panel = dr.SlicePanel(_kpis(stamps, {"revenue": rev}), gaps=True)
    assert panel.window_sums("revenue", *week, "trailing").iloc[0] == np.median(rev[[-5, -4, -2]])
    # daily files are unchanged: a day without a baseline leaves the window's baseline unknown
    days = pd.date_range("2024-01-01", periods=35, freq="D")
    daily = np.full(35, 100.0)
    daily[30 - 7] = np.nan
    daily[30 - 14] = daily[30 - 21] = daily[30 - 28] = np.nan
    dp = dr.SlicePanel(_kpis(days, {"revenue": daily}), gaps=True)
    assert np.isnan(dp.window_sums("revenue", days[28], days[34], "trailing").iloc[0])


def test_persistence_reads_missing_days_as_gaps_not_as_a_fall():
    """Whether a change stayed compares the 4 weeks before an episode with 4 weeks after it; a
    --kpis file missing a week after the episode read as a 25 % lower level after it: half of a
    3-day outage's drop "still there" at -3.2 robust sigmas, about the bar (|z| >= 3, share
    >= 0.5) where the diagnosis calls a change lasting."""
    from analytics.insights.diagnosis import persistence

    rng = np.random.default_rng(5)
    stamps = pd.date_range("2025-01-01", periods=200, freq="D")
    orders = 1000 * rng.normal(1, 0.01, 200)
    orders[100:103] *= 0.5  # a three-day outage, gone after
    orders[120:127] = np.nan  # a week never exported, inside the 4 weeks after
    panel = dr.SlicePanel(_kpis(stamps, {"orders": orders}), gaps=True)
    share, z = persistence(panel, "orders", stamps[100], stamps[102], -50.0)
    assert abs(z) < 3 and abs(share) < 0.2, (share, z)  # read as zeros: share 0.49, z -3.2
