"""rolling_zscore's expected-value options: a median weekday factor and a spread from past
one-step errors over a longer window (daily data only; sub-daily input ignores them: its factors
are always medians, tests/analytics/test_sub_daily_factors.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.conftest import spike_series

from analytics.detectors import DetectorInput, get_detector_class
from analytics.detectors.slots import slot_factor


def test_median_weekday_factor_ignores_one_shocked_week():
    weeks = 10
    shape = np.array([1.0, 1.2, 0.8, 1.0, 1.1, 0.9, 1.0])
    x = np.tile(shape, weeks)[:, None] * 100.0
    x[7 * 5 + 1, 0] = 10.0  # one shocked Tuesday five weeks ago
    mean = slot_factor(x, 1, 8, "mean")[-7:, 0]
    median = slot_factor(x, 1, 8, "median")[-7:, 0]
    np.testing.assert_allclose(median, shape / shape.mean(), rtol=1e-9)
    assert mean[1] < 0.95 * shape[1] / shape.mean()  # the mean carries the shocked day
    # sub-daily data take the median of each hour's readings whatever is asked
    np.testing.assert_array_equal(
        slot_factor(x, 24, 8, "median"), slot_factor(x, 24, 8, "mean")
    )


def _detect(**params) -> pd.DataFrame:
    series = spike_series(kpis=("revenue",))
    cls = get_detector_class("rolling_zscore")
    det = cls(cls.config_class(**params), name="rolling_zscore")
    inp = DetectorInput(series=series.drop(columns="baseline"), seed=11, sensitivity=1.0)
    return series, det.detect(inp)


def test_spread_from_one_step_errors_still_finds_the_spike_causally():
    series, out = _detect(spread_window=56, weekday_stat="median")
    assert out.loc[out["score"].idxmax(), "date"] == pd.Timestamp("2025-05-01")
    _, base = _detect()
    assert not np.allclose(out["score"].fillna(0), base["score"].fillna(0))


def test_sub_daily_input_ignores_the_daily_options():
    """--kpis files (hourly and finer) ignore weekday_stat, weekday_weeks_daily, spread_window."""
    series = spike_series(n=24 * 7 * 10, spike_at=24 * 7 * 9, kpis=("orders",), freq="h")
    cls = get_detector_class("rolling_zscore")
    inp = DetectorInput(
        series=series.drop(columns="baseline"), seed=11, sensitivity=1.0, periods_per_day=24
    )
    old = cls(cls.config_class(), name="rolling_zscore").detect(inp)
    new = cls(
        cls.config_class(weekday_stat="median", weekday_weeks_daily=12, spread_window=56),
        name="rolling_zscore",
    ).detect(inp)
    pd.testing.assert_frame_equal(old, new)


def test_the_baseline_is_the_periods_before_the_scored_span():
    """The centre at t is the median of the ``window`` periods before t (the point never in its
    own baseline); for a window of k periods, of those before the k-period span; the k-period
    raw score is (mean of the span − centre) / spread × sqrt(k)."""
    from analytics.detectors.rolling_zscore import RollingZScoreConfig

    rng = np.random.default_rng(8)
    v = rng.normal(100.0, 5.0, 80)
    series = pd.DataFrame({"date": pd.date_range("2025-01-01", periods=80, freq="D"),
                           "kpi": "cpu", "dimension": "overall", "segment": "all", "value": v})
    cfg = RollingZScoreConfig(window=28, min_periods=14, weekday_adjust=False, sqrt_counts=False,
                              count_floor=False, log_kpis=[], windows=[3], calendar="ignore")
    det = get_detector_class("rolling_zscore")(cfg)
    det.parts = {}
    core = det._detect_core(series, DetectorInput(series=series))
    for t in (40, 79):
        assert det.parts[1][1][t, 0] == np.median(v[t - 28:t])
        assert det.parts[3][1][t, 0] == np.median(v[t - 30:t - 2])
        cur, centre, spread = (a[t, 0] for a in det.parts[3])
        assert cur == pytest.approx(np.mean(v[t - 2:t + 1]), rel=1e-12)
        assert core["score@3"].iloc[t] == pytest.approx((cur - centre) / spread * np.sqrt(3),
                                                        rel=1e-12)


def test_a_planned_day_stays_out_of_the_baseline():
    from analytics.detectors.rolling_zscore import RollingZScoreConfig

    rng = np.random.default_rng(9)
    v = rng.normal(100.0, 5.0, 60)
    v[35] = 1000.0
    dates = pd.date_range("2025-01-01", periods=60, freq="D")
    series = pd.DataFrame({"date": dates, "kpi": "cpu", "dimension": "overall",
                           "segment": "all", "value": v})
    calendar = pd.DataFrame({"date": [dates[35]], "name": ["sale"], "kind": ["campaign"]})
    cfg = RollingZScoreConfig(window=28, min_periods=14, weekday_adjust=False, sqrt_counts=False,
                              count_floor=False, log_kpis=[])          # calendar: exclude
    det = get_detector_class("rolling_zscore")(cfg)
    det.parts = {}
    det._detect_core(series, DetectorInput(series=series, calendar=calendar))
    assert det.parts[1][1][40, 0] == np.median(np.delete(v[12:40], 35 - 12))


def test_counts_are_judged_on_the_anscombe_scale_and_expected_maps_back():
    from analytics.detectors.rolling_zscore import RollingZScoreConfig

    rng = np.random.default_rng(10)
    v = rng.poisson(40.0, 60).astype(float)
    series = pd.DataFrame({"date": pd.date_range("2025-01-01", periods=60, freq="D"),
                           "kpi": "orders", "dimension": "overall", "segment": "all", "value": v})
    cfg = RollingZScoreConfig(weekday_adjust=False, count_floor=False)
    det = get_detector_class("rolling_zscore")(cfg)
    det.parts = {}
    core = det._detect_core(series, DetectorInput(series=series))
    cur, centre, _ = (a[:, 0] for a in det.parts[1])
    assert cur[50] == pytest.approx(2 * np.sqrt(v[50] + 0.375))
    assert core["expected"].iloc[50] == pytest.approx(max((centre[50] / 2) ** 2 - 0.375, 0))
