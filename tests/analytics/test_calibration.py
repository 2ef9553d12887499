"""The detector contract's post-processing: calibrated scale, the sensitivity knob, count-aware
noise floors, sub-daily seasonality and determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.conftest import spike_series

from analytics.detectors import REGISTRY, DetectorInput
from analytics.detectors.base import Detector
from analytics.detectors.calibrate import (
    CalibrationConfig,
    calibrate_wide,
    false_flag_rate,
    noise_floor,
    threshold_for,
    to_normal,
)


def _noise_counts(rate: float, days: int = 730, n_series: int = 12, seed: int = 5) -> pd.DataFrame:
    """Pure-noise Poisson order counts with a weekly cycle, several slices, no shock."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    weekly = np.array([1.0, 0.95, 0.97, 1.0, 1.05, 1.12, 1.1])[dates.day_of_week]
    frames = [
        pd.DataFrame(
            {
                "date": dates,
                "kpi": "orders",
                "dimension": "channel",
                "segment": f"c{i}",
                "value": rng.poisson(rate * weekly).astype(float),
            }
        )
        for i in range(n_series)
    ]
    return pd.concat(frames, ignore_index=True)


def test_threshold_follows_the_knob():
    assert threshold_for(0.1) == pytest.approx(3.2614, abs=1e-3)  # p = 0.1/90 two-sided
    assert threshold_for(0.1, ppd=24) > threshold_for(0.1)  # same rate per 90 days, more periods
    assert threshold_for(0.1, direction="up") < threshold_for(0.1)
    for sens in (0.05, 0.3, 2.0):
        assert false_flag_rate(threshold_for(sens, 4), 4) == pytest.approx(sens, rel=1e-6)


def test_calibrator_maps_a_scaled_series_to_the_normal_scale():
    """Raw scores 3x too wide become N(0, 1): tail rates follow 2(1 - Phi(t))."""
    rng = np.random.default_rng(1)
    raw = 3.0 * rng.standard_normal((20_000, 4))
    s = calibrate_wide(raw, CalibrationConfig(window_days=365, min_history=30, prior=0))
    tail = np.mean(np.abs(s[500:]) >= 2.5)
    assert tail == pytest.approx(0.0124, rel=0.25)
    assert np.median(np.abs(s[500:])) == pytest.approx(0.6745, rel=0.05)


def test_scale_cap_leaves_a_past_shock_out_of_the_scale_and_nothing_else():
    """A 7-day window's raw scores during a long past shock (40 days at +6, ~20 % of the 182-day
    history) widen the median scale by ~1/(1 - 0.2) and shrink every later score; with
    ``scale_cap`` those days lie beyond 3.5 x the plain scale and are left out, so a later
    score keeps its size. On clean noise the capped and the plain scale agree."""
    rng = np.random.default_rng(7)
    clean = rng.standard_normal((400, 3))
    shocked = clean.copy()
    shocked[100:140] += 6.0
    plain, capped = CalibrationConfig(), CalibrationConfig(scale_cap=3.5)
    late = slice(150, 280)  # the shock is inside every later 182-day history
    ratio = np.abs(raw := shocked[late]) / np.abs(calibrate_wide(shocked, plain)[late])
    assert np.median(ratio) > 1.15  # the plain scale: inflated
    ratio = np.abs(raw) / np.abs(calibrate_wide(shocked, capped)[late])
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    np.testing.assert_allclose(calibrate_wide(clean, capped)[late],
                               calibrate_wide(clean, plain)[late], rtol=0.03)


def test_calibrator_is_causal():
    rng = np.random.default_rng(2)
    raw = rng.standard_normal((400, 3))
    a = calibrate_wide(raw, CalibrationConfig())
    raw2 = raw.copy()
    raw2[300:] *= 10
    b = calibrate_wide(raw2, CalibrationConfig())
    np.testing.assert_array_equal(a[:300], b[:300])
    assert not np.allclose(a[300:], b[300:])


def test_student_t_tail_maps_to_the_same_probability():
    from scipy.stats import norm, t

    z = np.array([-4.0, 2.0, 5.0])
    s = to_normal(z, 6.0)
    np.testing.assert_allclose(norm.sf(np.abs(s)), t.sf(np.abs(z), 6.0), rtol=1e-9)
    assert np.all(np.sign(s) == np.sign(z)) and np.all(np.abs(s) < np.abs(z))


@pytest.mark.parametrize("rate", [20, 20_000])
def test_flag_rate_matches_the_knob_on_pure_poisson_noise(rate):
    """The same sensitivity gives the same false-flag rate on 20 and on 20 000 orders a day."""
    series = _noise_counts(rate)
    sens = 1.0  # high, so a short test sees enough flags
    cls = REGISTRY["rolling_zscore"]
    det = cls(cls.config_class(), name="rolling_zscore")
    out = det.detect(DetectorInput(series=series, sensitivity=sens))
    scored = out[out["date"] >= out["date"].min() + pd.Timedelta(days=60)]
    realized = scored["flag"].mean() * 90
    assert realized == pytest.approx(sens, rel=0.3), realized


def test_noise_floor_counts_and_ratios():
    assert noise_floor("orders", np.array([100.0]), None, None)[0] == pytest.approx(10.0)
    conv = noise_floor("conversion_rate", np.array([0.02]), None, np.array([1000.0]))[0]
    assert conv == pytest.approx(np.sqrt(0.02 * 0.98 / 1000))
    assert noise_floor("aov", np.array([50.0]), np.array([25.0]), None, value_cv=1.0)[
        0
    ] == pytest.approx(10.0)
    assert noise_floor("my_metric", np.array([50.0]), None, None)[0] == 0.0


def test_small_slice_does_not_explode():
    """A flat stretch of a 5-orders-a-day slice (MAD 0) and one 12-order day: not an alarm."""
    dates = pd.date_range("2024-01-01", periods=120, freq="D")
    v = np.full(120, 5.0)
    v[100] = 12.0
    series = pd.DataFrame(
        {"date": dates, "kpi": "orders", "dimension": "country", "segment": "x", "value": v}
    )
    cls = REGISTRY["rolling_zscore"]
    out = cls(cls.config_class(weekday_adjust=False), name="z").detect(DetectorInput(series=series))
    assert 2.0 < abs(out["score"].iloc[100]) < 5.0, out["score"].iloc[
        100
    ]  # Poisson: (12-5)/sqrt(5) = 3.1


class _Flagging(Detector):
    type_name = "flagging_test"
    config_class = REGISTRY["rolling_zscore"].config_class

    def _detect_core(self, series, inp):
        return pd.DataFrame({"score": 0.0, "expected": 0.0, "flag": True}, index=series.index)


def test_a_core_that_flags_breaks_the_contract():
    det = _Flagging(REGISTRY["rolling_zscore"].config_class(), name="bad")
    with pytest.raises(TypeError, match="raw scores only"):
        det.detect(DetectorInput(series=spike_series(kpis=("revenue",)).drop(columns="baseline")))


@pytest.mark.parametrize("name", ["rolling_zscore", "isolation_forest"])
def test_cores_return_raw_scores_without_flags(name):
    cls = REGISTRY[name]
    det = cls(cls.config_class(), name=name)
    series = spike_series().drop(columns="baseline")
    series = series.sort_values(["kpi", "dimension", "segment", "date"]).reset_index(drop=True)
    core = det._detect_core(series, DetectorInput(series=series))
    assert "flag" not in core.columns and {"score", "expected"} <= set(core.columns)
    out = det.detect(DetectorInput(series=series))
    # the output's score is the calibrated raw score, flags are |score| >= the knob's threshold
    np.testing.assert_allclose(
        out["score"], np.round(np.nan_to_num(det.calibrate(series, core["score"].to_numpy())), 4)
    )
    assert (
        out["flag"] == (out["score"].abs() >= det.threshold(DetectorInput(series=series)))
    ).all()


def _hourly(weeks: int = 10, seed: int = 4, spike: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-06", periods=weeks * 168, freq="h")
    hour = dates.hour.to_numpy()
    day = (1 + 0.8 * np.sin(2 * np.pi * (hour - 6) / 24)).clip(0.15)  # strong daily cycle
    week = np.where(dates.day_of_week.to_numpy() >= 5, 0.6, 1.0)  # quiet weekends
    lam = 400 * day * week
    v = rng.poisson(lam).astype(float)
    if spike is not None:
        v[spike] = lam[spike] * 1.6
    return pd.DataFrame(
        {"date": dates, "kpi": "sessions", "dimension": "overall", "segment": "all", "value": v}
    )


def test_sub_daily_hour_of_week_profile():
    """Hourly data with a daily and a weekly cycle: with the hour-of-week profile the noise raises
    (almost) no flag and a +60 % hour is caught; without it the cycle hides the spike."""
    spike = 9 * 168 + 3 * 24 + 14  # a Thursday afternoon in week 10
    series = _hourly(spike=spike)
    cls = REGISTRY["rolling_zscore"]
    inp = DetectorInput(series=series, periods_per_day=24, sensitivity=0.5)
    on = cls(cls.config_class(window=24, min_periods=12), name="z").detect(inp)
    off = cls(cls.config_class(window=24, min_periods=12, weekday_adjust=False), name="z").detect(
        inp
    )
    assert on["flag"].iloc[spike]
    # the first two weeks are judged on the hour-of-day profile alone (the first weekend may flag)
    settled = on["date"] >= on["date"].min() + pd.Timedelta(days=21)
    assert on.loc[settled, "flag"].sum() <= 3, on[on["flag"] & settled]
    assert (
        not off["flag"].iloc[spike]
        and abs(off["score"].iloc[spike]) < abs(on["score"].iloc[spike]) / 2
    )


@pytest.mark.parametrize("name", ["rolling_zscore", "isolation_forest"])
def test_detectors_are_deterministic(name):
    cls = REGISTRY[name]
    series = spike_series().drop(columns="baseline")
    a = cls(cls.config_class(), name=name).detect(DetectorInput(series=series, seed=3))
    b = cls(cls.config_class(), name=name).detect(DetectorInput(series=series, seed=3))
    pd.testing.assert_frame_equal(a, b)


def test_walk_forward_plan_is_shared_and_bounded():
    cls = REGISTRY["isolation_forest"]
    det = cls(cls.config_class(min_train=28, refit_every=10, max_train_days=5), name="i")
    blocks = det.fit_blocks(1000, ppd=24)
    assert blocks[0] == (0, 28, 56)
    assert all(t1 - t0 <= 5 * 24 for t0, t1, _ in blocks)
    assert all(
        b[2] == c[1] for b, c in zip(blocks[:-1], blocks[1:], strict=True)
    )  # contiguous blocks
    assert max(t2 - t1 for _, t1, t2 in blocks) <= 240  # refit_every counts days
    old = REGISTRY["prophet_residual"].config_class(retrain_every=100)  # the old name still works
    assert old.refit_every == 100



def test_the_series_scale_is_used_from_min_history_past_scores_on():
    """Daily blocks of 7: before the block at period 14 there are 14 past scores, exactly
    min_history, so the series' own scale applies from there (prior 0: the scale alone)."""
    cfg = CalibrationConfig(min_history=14, prior=0.0, tail_df=None)
    cal = calibrate_wide(np.full((30, 1), 2.0), cfg)
    assert cal[13, 0] == 2.0                              # 7 past scores: the detector's scale
    assert cal[14, 0] == pytest.approx(0.6745, abs=1e-4)  # |2| over its median / 0.6745
