"""Peaks-over-threshold calibration (calibration.tail: pot) and the calibrator's refresh plan."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors.calibrate import (
    CalibrationConfig,
    blocks,
    calibrate_wide,
    gpd_pwm,
    gpd_sf,
    threshold_for,
)


def _gpd(rng, xi, sigma, n):
    u = rng.random(n)
    return sigma * np.log1p(-u) * -1 if xi == 0 else sigma / xi * ((1 - u) ** -xi - 1)


@pytest.mark.parametrize("xi,sigma", [(0.0, 1.0), (0.3, 2.0), (-0.2, 0.5)])
def test_gpd_pwm_recovers_shape_and_scale(xi, sigma):
    rng = np.random.default_rng(1)
    exc = np.column_stack([_gpd(rng, xi, sigma, 20_000), np.r_[_gpd(rng, xi, sigma, 500),
                                                               np.full(19_500, np.nan)]])
    k, x, s = gpd_pwm(exc)
    assert k.tolist() == [20_000, 500]
    assert x[0] == pytest.approx(xi, abs=0.03) and s[0] == pytest.approx(sigma, rel=0.05)
    assert x[1] == pytest.approx(xi, abs=0.2)  # 500 exceedances: rougher, still near
    y = np.array([0.0, 1.0, 3.0])
    assert gpd_sf(y, np.zeros(3), np.ones(3)) == pytest.approx(np.exp(-y))


def test_pot_flags_at_the_nominal_rate_whatever_the_tail():
    """Heavy-tailed noise (Student-t, 3 df) read as normal over-flags by orders of magnitude;
    the fixed Student-t(13) tail still several-fold; the series' own GPD tail is close to
    nominal."""
    rng = np.random.default_rng(7)
    t, ppd = 60 * 288, 288  # 60 days of 5-minute periods, 4 series
    raw = rng.standard_t(3, size=(t, 4))
    thr = threshold_for(30, ppd)  # 30 false flags per series per 90 days
    nominal = 30 / 90 * 60  # expected flags per series over the 60 days
    rate = {}
    for tail in ("fixed", "pot"):
        cfg = CalibrationConfig(tail=tail, tail_df=13)
        s = calibrate_wide(raw, cfg, ppd)[10 * ppd:]  # after 10 days of history
        rate[tail] = (np.abs(s) >= thr).sum(axis=0).mean() * 60 / 50
    assert rate["fixed"] > 5 * nominal
    assert nominal / 2.5 < rate["pot"] < 2.5 * nominal


def test_pot_is_causal_and_auto_is_fixed():
    rng = np.random.default_rng(3)
    raw = rng.standard_t(4, size=(3000, 2))
    cfg = CalibrationConfig(tail="pot", tail_df=13)
    a = calibrate_wide(raw, cfg, 96)
    later = raw.copy()
    later[2000:] *= 10  # a different future
    b = calibrate_wide(later, cfg, 96)
    assert np.array_equal(a[:2000], b[:2000])
    auto, fixed = (calibrate_wide(raw, CalibrationConfig(tail=x, tail_df=13), 96)
                   for x in ("auto", "fixed"))
    assert np.array_equal(auto, fixed)


def test_refresh_plan_is_weekly_on_daily_data_and_doubling_on_sub_daily():
    assert [b for b, _ in blocks(60, 7, 14)] == list(range(7, 60, 7))  # daily: unchanged
    plan = blocks(5000, 2016, 14)  # 5-minute data: scale known after 14 periods, not a week
    assert [b for b, _ in plan][:4] == [14, 28, 56, 112] and plan[-1][1] == 5000
    assert all(e - b <= 2016 for b, e in plan)


def test_pot_tail_is_used_from_five_times_the_needed_exceedances_on():
    """With 150+ past scores (5 x pot_min_exceedances) the quantile is lowered so that 30
    exceedances exist, and the fitted tail replaces the fixed one; before, the fixed tail."""
    from analytics.detectors.calibrate import pot_tail, to_normal

    rng = np.random.default_rng(3)
    z = rng.standard_t(3, (300, 1))
    cfg = CalibrationConfig(tail="pot", tail_df=13)
    out = pot_tail(z, 10_000, 7, cfg)
    fixed = to_normal(z, 13)
    assert np.array_equal(out[:147], fixed[:147])                  # fewer than 150 past scores
    assert not np.allclose(out[154:161], fixed[154:161])


def test_external_tail_reaches_every_calibration_left_on_auto():
    """``external.tail`` is 'the calibrator tail of detectors left on calibration.tail: auto'
    (--kpis input). A detector's per-window calibrations (rolling_zscore's window_calibration,
    share_calibration, ratio_calibration; count_likelihood's window_calibration) are left on auto
    too, but only ``calibration`` was resolved: with ``external.tail: pot`` the 1-period score
    got the series' own tail and its 3- and 7-period windows kept the fixed one."""
    from analytics.config import load_analysis_config
    from analytics.detectors.calibrate import CalibrationConfig as Cal
    from analytics.external import external_profile

    cfg = load_analysis_config(None, ["external.tail=pot"])
    det = external_profile(cfg, 300.0).detectors["rolling_zscore"]
    found = [det.calibration]
    for name in ("window_calibration", "share_calibration", "ratio_calibration"):
        found += list(getattr(det, name).values())
    assert found and all(isinstance(c, Cal) for c in found)
    assert {c.tail for c in found} == {"pot"}
    # an explicit tail is kept
    cfg = load_analysis_config(None, ["external.tail=pot",
                                      "detectors.rolling_zscore.window_calibration.3.tail=fixed"])
    det = external_profile(cfg, 300.0).detectors["rolling_zscore"]
    assert det.window_calibration[3].tail == "fixed" and det.window_calibration[7].tail == "pot"
