"""Multi-day evidence (issue 9): window scores calibrated one by one and combined by Bonferroni,
so a slow shift adds up while the sensitivity knob keeps its meaning."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.test_calibration import _noise_counts

from analytics.detectors import REGISTRY, DetectorInput
from analytics.detectors.base import combine_windows


def test_combined_windows_never_exceed_the_nominal_rate():
    """Independent N(0, 1) windows (the worst case for Bonferroni's slack is none): the rate of
    |combined| >= t stays at or below 2 (1 - Phi(t)), and is not far below it either."""
    rng = np.random.default_rng(3)
    s = combine_windows(rng.standard_normal((3, 400_000)))
    for t, nominal in ((2.0, 0.0455), (3.0, 0.0027)):
        rate = np.mean(np.abs(s) >= t)
        assert rate <= nominal * 1.05, (t, rate)
        assert rate >= nominal * 0.8, (t, rate)


def test_combined_windows_keep_sign_and_missing_values():
    s = combine_windows(np.array([[5.0, np.nan, 0.1], [1.0, np.nan, -6.0]]))
    assert s[0] > 4.5 and np.isnan(s[1]) and s[2] < -5.5  # penalty: 2 windows
    one = combine_windows(np.array([[np.nan], [4.0]]))
    assert one[0] == pytest.approx(4.0)  # only one window had a score: no penalty


def _zscore(**kw):
    cls = REGISTRY["rolling_zscore"]
    return cls(cls.config_class(**kw), name="rolling_zscore")


def test_windows_keep_the_knob_on_pure_poisson_noise():
    series = _noise_counts(50)
    sens = 1.0
    out = _zscore(windows=[3, 7]).detect(DetectorInput(series=series, sensitivity=sens))
    scored = out[out["date"] >= out["date"].min() + pd.Timedelta(days=60)]
    # flagged points of a 7-day window come in runs: the per-point rate is the knob's ceiling
    realized = scored["flag"].mean() * 90
    assert realized <= sens * 1.3, realized
    assert realized >= sens * 0.3, realized


def test_a_slow_small_shift_is_seen_with_windows_only():
    """-12 % for three weeks on ~400 orders a day (1-day z about -2.4): invisible day by day,
    plain over a week."""
    rng = np.random.default_rng(11)
    dates = pd.date_range("2024-01-01", periods=200, freq="D")
    lam = np.full(200, 400.0)
    lam[150:171] *= 0.88
    series = pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "overall",
                           "segment": "all", "value": rng.poisson(lam).astype(float)})
    inp = DetectorInput(series=series, sensitivity=0.1)
    plain = _zscore(weekday_adjust=False).detect(inp)
    multi = _zscore(weekday_adjust=False, windows=[3, 7]).detect(inp)
    window = slice(150, 175)
    assert not plain["flag"].iloc[window].any()
    assert multi["flag"].iloc[window].any()
    assert (multi.loc[multi["flag"], "direction"] == "down").all()


def test_windows_are_deterministic_and_raw_only():
    series = _noise_counts(30, days=200, n_series=3)
    det = _zscore(windows=[3, 7])
    core = det._detect_core(series, DetectorInput(series=series))
    assert "flag" not in core and {"score", "score@3", "score@7", "expected"} <= set(core)
    a = det.detect(DetectorInput(series=series))
    b = det.detect(DetectorInput(series=series))
    pd.testing.assert_frame_equal(a, b)


def test_a_window_with_planned_days_weighs_only_the_days_it_has():
    """The k-day score is the mean of the window's periods over the spread of one period, times
    the square root of the periods averaged. Planned days stay out of the mean (``calendar:
    exclude``), so a 7-day window holding 3 planned days is the mean of 4 periods: it weighs
    sqrt(4), not sqrt(7). Scored as 7, four days at +d read as strong as seven."""
    rng = np.random.default_rng(5)
    n, t = 120, 100
    dates = pd.date_range("2025-01-01", periods=n, freq="D")
    x = 100.0 + rng.normal(0.0, 5.0, n)
    x[t - 6:t + 1] += 12.0                      # a week at +12 (2.4 sd a day)
    series = pd.DataFrame({"date": dates, "kpi": "cpu", "dimension": "overall",
                           "segment": "all", "value": x})
    det = _zscore(windows=[7], weekday_adjust=False)
    plain = det._detect_core(series, DetectorInput(series=series))
    cal = pd.DataFrame({"date": dates[t - 6:t - 3], "name": "sale", "kind": "campaign"})
    det = _zscore(windows=[7], weekday_adjust=False)
    planned = det._detect_core(series, DetectorInput(series=series, calendar=cal))
    # the baseline before the window is the same in both runs; only the mean's size differs
    a, b = plain.loc[t, "score@7"], planned.loc[t, "score@7"]
    mean_all, mean_kept = x[t - 6:t + 1].mean(), x[t - 3:t + 1].mean()
    assert b / a == pytest.approx((mean_kept - 100) / (mean_all - 100) * np.sqrt(4 / 7), rel=0.05)


def test_a_share_window_with_planned_days_weighs_only_the_days_it_has():
    """The same for the share scores (``score@s<k>``): the mean residual of the window's
    unplanned periods, times the square root of how many there are. A slice at a steady 30 %
    of its parent moves to 36 % for a week; three of its days are planned: the window's four
    other days, all the same residual, weigh sqrt(4), not sqrt(7)."""
    from analytics.detectors.share import share_scores

    n, t, k = 150, 120, 7
    par = np.full(n, 2000.0)
    kid = np.full(n, 600.0)
    kid[t - 6:t + 1] = 720.0
    value = np.column_stack([par, kid])
    keys = [("orders", "overall", "all"), ("orders", "channel", "a")]
    none = np.zeros(value.shape, bool)
    planned = none.copy()
    planned[t - 6:t - 3, :] = True
    args = (keys, [1, k], 28, 14, 182, np.zeros(value.shape), None, True, 1.5)
    free, _ = share_scores(value, none, *args)
    held, _ = share_scores(value, planned, *args)
    assert free[k][t, 1] > 5
    assert held[k][t, 1] / free[k][t, 1] == pytest.approx(np.sqrt(4 / 7), rel=1e-9)


def test_the_main_score_of_a_smoothed_detector_reads_its_calibration():
    """``smooth: 7`` (the shipped, disabled rolling_zscore_week sets ``calibration: {tail_df:
    7.5, tail_gain: 1.4}``): the detector's ``calibration`` is its main score's. It was read from
    ``window_calibration[7]`` instead, so the YAML key (and a ``--set
    detectors.rolling_zscore_week.calibration.tail_gain=...``) changed nothing."""
    from analytics.detectors.calibrate import CalibrationConfig

    a = _zscore(smooth=7, calibration=CalibrationConfig(tail_df=7.5, tail_gain=1.4))
    b = _zscore(smooth=7, calibration=CalibrationConfig(tail_df=7.5, tail_gain=2.0))
    assert a.calibration_for("score").tail_gain == 1.4
    assert b.calibration_for("score").tail_gain == 2.0
    assert b.calibration_for("score@3").tail_gain == 1.25   # the extra windows keep theirs
    series = _noise_counts(50, days=200, n_series=2)
    sa = a.detect(DetectorInput(series=series))["score"].to_numpy()
    sb = b.detect(DetectorInput(series=series))["score"].to_numpy()
    assert not np.array_equal(sa, sb)
