"""rolling_zscore's spread_model floor_ratio: the count floor of the day x the series' long-run
ratio of past one-step errors to their floor (daily data only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.detectors import DetectorInput, get_detector_class


def _orders(n: int = 420, level: float = 1000.0, day_cv: float = 0.05, seed: int = 3):
    rng = np.random.default_rng(seed)
    shape = np.tile([1.0, 1.1, 1.05, 1.0, 0.95, 0.8, 0.7], n // 7 + 1)[:n]
    day = rng.gamma(1 / day_cv**2, day_cv**2, n) if day_cv else np.ones(n)  # mean 1, CV day_cv
    x = rng.poisson(level * shape * day).astype(float)
    dates = pd.date_range("2024-01-01", periods=n, freq="D")
    return pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "overall",
                         "segment": "all", "value": x})


def _run(series: pd.DataFrame, **params):
    cls = get_detector_class("rolling_zscore")
    det = cls(cls.config_class(**params), name="rolling_zscore")
    det.parts = {}
    out = det.detect(DetectorInput(series=series, seed=1, sensitivity=0.1))
    return det.parts, out


def test_floor_ratio_spread_is_the_true_noise_with_little_estimation_noise():
    series = _orders()
    # Anscombe scale: sd of 2 sqrt(X) with Var X = m + (cv m)^2 is sqrt(1 + cv^2 m) (m = level)
    truth = np.sqrt(1 + 0.05**2 * 1000)
    mad, _ = _run(series)
    ratio, _ = _run(series, spread_model="floor_ratio")
    s_mad, s_ratio = mad[1][2][250:, 0], ratio[1][2][250:, 0]  # after the 182-day window filled
    # one-step errors carry the 28-day median's own error too (a few per cent above the noise)
    assert abs(np.median(s_ratio) / truth - 1.03) < 0.1
    # a long-run ratio times a smooth floor: far less wobble than a 28-day MAD
    cv = lambda s: np.std(s) / np.mean(s)  # noqa: E731
    assert cv(s_ratio) < 0.5 * cv(s_mad)


def test_floor_ratio_goes_below_an_overstated_floor_and_default_is_unchanged():
    n, orders = 420, 400
    rng = np.random.default_rng(5)
    # AOV: the mean of 400 order values with CV 0.9 -> sd of log AOV ~ 0.9 / 20 = 0.045
    aov = rng.lognormal(np.log(50.0), 0.8, (n, orders)).mean(axis=1)
    dates = pd.date_range("2024-01-01", periods=n, freq="D")
    series = pd.DataFrame({"date": dates, "kpi": "aov", "dimension": "overall",
                           "segment": "all", "value": aov})
    counts = pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                           "orders": float(orders), "sessions": 20_000.0})
    cls = get_detector_class("rolling_zscore")

    def spread(**params):
        det = cls(cls.config_class(value_cv=3.0, **params), name="rolling_zscore")
        det.parts = {}
        out = det.detect(DetectorInput(series=series, seed=1, sensitivity=0.1, counts=counts))
        return np.median(det.parts[1][2][250:, 0]), out

    floor = 3.0 / np.sqrt(orders)  # value_cv 3 overstates the order-value noise ~3x
    mad, base = spread()
    ratio, _ = spread(spread_model="floor_ratio")
    assert mad == floor
    assert 0.035 < ratio < 0.06
    pd.testing.assert_frame_equal(base, spread(spread_model="mad", kappa_min=0.5)[1])


def test_floor_ratio_is_causal_and_ignored_on_sub_daily_input():
    series = _orders()
    cut = 300
    _, full = _run(series, spread_model="floor_ratio")
    _, head = _run(series.iloc[:cut].reset_index(drop=True), spread_model="floor_ratio")
    np.testing.assert_allclose(full["score"].to_numpy()[:cut], head["score"].to_numpy(),
                               equal_nan=True)
    hourly = series.assign(date=pd.date_range("2024-01-01", periods=len(series), freq="h"))
    cls = get_detector_class("rolling_zscore")
    inp = DetectorInput(series=hourly, seed=1, sensitivity=0.1, periods_per_day=24)
    shipped = dict(spread_model="floor_ratio", kappa_min=1.0, window_power=0.8, windows=[3, 7])
    a = cls(cls.config_class(windows=[3, 7]), name="rolling_zscore").detect(inp)
    b = cls(cls.config_class(**shipped), name="rolling_zscore").detect(inp)
    pd.testing.assert_frame_equal(a, b)  # sub-daily input: Bonferroni, MAD spread, old tails


def test_window_power_counts_correlated_windows_as_fewer_looks():
    from scipy.special import ndtr, ndtri

    from analytics.detectors.base import combine_windows

    scores = np.array([[3.5, 1.0], [0.5, np.nan], [-0.2, 0.1]])
    bonf = combine_windows(scores)
    half = combine_windows(scores, 0.5)
    p = 2 * ndtr(-3.5) * 3**0.5  # three windows with a score count as sqrt(3) looks
    assert half[0] == pytest.approx(-ndtri(p / 2))
    assert bonf[0] < half[0] < 3.5
    np.testing.assert_array_equal(combine_windows(scores, 1.0), bonf)
    cls = get_detector_class("rolling_zscore")
    det = cls(cls.config_class(window_power=0.8), name="rz")
    det.detect(DetectorInput(series=_orders(n=60), seed=1, sensitivity=0.1))
    assert det.window_power == 0.8  # daily data (sub-daily keeps 1: test above)
