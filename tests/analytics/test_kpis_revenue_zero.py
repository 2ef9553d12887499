"""A `--kpis` revenue (a log KPI) without an orders column: a zero is an observation and is scored
(log(x + a), ``a`` one typical order inferred from the series' own past: calibrate.own_log_offset),
daily and hourly; only a missing period stays a gap. It was NaN (log 0 with no offset): three
days at zero in a series near 1000 scored -1.2 unflagged while a 10 % day scored -8.6."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import run_analysis

from analytics.detectors import DetectorInput, get_detector_class
from analytics.detectors.calibrate import own_log_offset
from shocklab.cli import run_cli


def _daily(n=130, zero_at=(100, 101, 102), seed=4):
    rng = np.random.default_rng(seed)
    v = 1000 * (1 + rng.normal(0, 0.02, n))
    v[list(zero_at)] = 0.0
    return pd.DataFrame({"date": pd.date_range("2025-01-01", periods=n, freq="D"),
                         "kpi": "revenue", "dimension": "overall", "segment": "all", "value": v})


def _scores(series, ppd=1):
    cls = get_detector_class("rolling_zscore")
    det = cls(cls.config_class(), name="rolling_zscore")
    return det.detect(DetectorInput(series=series, seed=1, sensitivity=0.1, periods_per_day=ppd))


def test_zero_revenue_days_are_scored_and_flagged_below_any_low_day():
    series = _daily()
    series.loc[115, "value"] = 100.0                    # a 10 % day for comparison
    out = _scores(series)
    zero, low = out["score"].iloc[100:103], out["score"].iloc[115]
    assert zero.notna().all() and out["flag"].iloc[100:103].all()
    assert (zero < -5).all() and zero.iloc[0] <= low < -5
    assert (out["direction"].iloc[100:103] == "down").all()
    # a missing day stays a gap, never scored
    gap = series.drop(index=[110])
    assert _scores(gap)["date"].ne(series["date"].iloc[110]).all()


def test_the_offset_is_causal():
    """Changing the future never moves an earlier score (nor its offset)."""
    series = _daily()
    later = series.copy()
    later.loc[105:, "value"] *= 3.0
    a, b = _scores(series), _scores(later)
    pd.testing.assert_series_equal(a["score"].iloc[:105], b["score"].iloc[:105])
    x = series["value"].to_numpy()[:, None]
    y = later["value"].to_numpy()[:, None]
    np.testing.assert_array_equal(own_log_offset(x, 28)[:106], own_log_offset(y, 28)[:106])


def test_offset_is_one_typical_order_from_the_series_noise():
    """Level x rel^2 / (1 + cv^2), rel the robust relative one-step error, kept in [0.001, 1]."""
    rng = np.random.default_rng(2)
    small = rng.poisson(3, 200) * 50.0                  # ~3 orders of exactly 50 a day (cv 0)
    big = 1000 * (1 + rng.normal(0, 0.02, 200))         # rel ~ 0.02: the 0.001 floor
    off = own_log_offset(np.column_stack([small, big]), 28, value_cv=0.0)
    assert off[0].tolist() == [0.0, 0.0]                # no past level: no offset
    assert 20 < np.median(off[60:, 0]) < 100            # about one order of 50
    np.testing.assert_allclose(off[60:, 1], 0.001 * pd.Series(big).shift(1).rolling(
        28, min_periods=1).median().to_numpy()[60:])


def test_kpis_file_revenue_at_zero_is_an_incident_daily_and_hourly(tmp_path):
    s = _daily()
    daily = tmp_path / "rev.csv"
    pd.DataFrame({"timestamp": s["date"].dt.strftime("%Y-%m-%d"),
                  "revenue": s["value"].round(2)}).to_csv(daily, index=False)
    rng = np.random.default_rng(6)
    n = 24 * 28
    v = np.round(200 + 40 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.normal(0, 8, n))
    v[24 * 20 + 10: 24 * 20 + 18] = 0                   # eight hours without revenue
    hourly = tmp_path / "hrev.csv"
    pd.DataFrame({"timestamp": pd.date_range("2025-01-01", periods=n, freq="h"),
                  "revenue": v}).to_csv(hourly, index=False)
    for path, start in ((daily, "2025-04-11"), (hourly, "2025-01-21T1")):
        out = tmp_path / path.stem
        assert run_cli(run_analysis.main, ["--kpis", str(path), "--out", str(out),
                                           "--quiet"]) == 0
        inc = json.loads((out / "incidents.json").read_text())["incidents"]
        down = [i for i in inc if i["direction"] == "down" and i["start"].startswith(start)]
        assert down, [(i["start"], i["direction"]) for i in inc]
