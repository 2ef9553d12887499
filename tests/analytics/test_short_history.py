"""rolling_zscore's short-history options for --kpis input (detectors/short_history.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from analytics.config import load_analysis_config
from analytics.detectors import short_history as sh
from analytics.detectors.base import DetectorInput
from analytics.detectors.rolling_zscore import RollingZScore, RollingZScoreConfig
from analytics.external import external_profile


def _series(values: np.ndarray, freq: str = "5min") -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame({
        "date": pd.date_range("2021-01-04", periods=n, freq=freq),
        "kpi": "value", "dimension": "overall", "segment": "all", "value": values,
    })


def _scores(values: np.ndarray, **opts) -> pd.DataFrame:
    det = RollingZScore(RollingZScoreConfig(**opts))
    s = _series(values)
    out = det.detect(DetectorInput(series=s, periods_per_day=288, sensitivity=10.0))
    return out.reset_index(drop=True)


def test_widen_is_honest_for_short_references():
    """Gaussian noise: a 12-period reference's early score exceeds 3 no more than ~1.5x as
    often as the normal says (the plain z would be ~6x too often)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(13, 20_000))
    z = sh.early_scores(x, x, 28, 12, 288, None)[12]
    rate = np.mean(np.abs(z) >= 3.0) / (2 * ndtr(-3.0))
    assert 0.3 < rate < 1.5
    raw_centre, raw_spread, n = sh.window_median_mad(x[:12], 28, 12)
    assert n[-1, 0] == 12
    plain = (x[12] - raw_centre[-1]) / raw_spread[-1]
    assert np.mean(np.abs(plain) >= 3.0) / (2 * ndtr(-3.0)) > 3 * rate


def test_window_median_mad_exact_and_causal():
    x = np.arange(40, dtype=float)[:, None] ** 1.5
    c, s, n = sh.window_median_mad(x, 5, 3, chunk=7)
    assert np.isnan(c[1, 0]) and n[1, 0] == 2
    w = x[10:15, 0]
    assert c[14, 0] == pytest.approx(np.median(w))
    assert s[14, 0] == pytest.approx(1.4826 * np.median(np.abs(w - np.median(w))))


def test_early_scoring_before_the_daily_factor():
    """5-min data: off, no opinion for the first two days; on, a spike at hour 10 is scored."""
    rng = np.random.default_rng(1)
    v = 100 + rng.normal(0, 1, 288 * 3)
    v[120] += 15
    off = _scores(v)
    on = _scores(v, early_min=6)
    assert not off["flag"].iloc[:576].any()
    assert on["flag"].iloc[120]
    assert on["flag"].iloc[:576].sum() <= 3
    # after the factor exists the raw scores agree (the early path only fills missing scores);
    # the calibrated ones differ only by the scale the calibrator learnt from the early scores
    tail_off, tail_on = off["score"].iloc[700:].to_numpy(), on["score"].iloc[700:].to_numpy()
    ratio = tail_on / tail_off
    ratio = ratio[np.isfinite(ratio)]
    assert ratio.size > 100 and np.ptp(ratio) < 0.05 and 0.8 < ratio[0] < 1.25


def test_flat_series_finite_and_departure_scored():
    """Flat at zero for days, then a small step: no infinite score, the step is flagged; off, the
    flat reference gives no opinion and the step is never flagged."""
    v = np.zeros(288 * 5)
    v[288 * 4 :] = 1.0
    on = _scores(v, early_min=6, flat_floor=1.0)
    off = _scores(v)
    assert np.isfinite(on["score"].dropna()).all()
    assert on["flag"].iloc[288 * 4]
    assert not on["flag"].iloc[: 288 * 4].any()
    assert not off["flag"].any()


def test_mostly_zero_routine_spikes_not_flagged():
    """1 % spikes of one height on zeros: judged against the last day's range, not as 0 / 0."""
    rng = np.random.default_rng(2)
    v = np.where(rng.random(288 * 10) < 0.01, 20.0, 0.0)
    v[288 * 8] = 200.0   # a spike ten times the usual height
    out = _scores(v, early_min=6, flat_floor=1.0)
    flagged = np.flatnonzero(out["flag"].to_numpy())
    routine = [i for i in flagged if i != 288 * 8 and i >= 288 * 2]
    assert len(routine) <= 2
    assert out["flag"].iloc[288 * 8]


def test_ordinary_series_unchanged_by_flat_floor():
    rng = np.random.default_rng(3)
    v = 50 + rng.normal(0, 2, 288 * 4)
    a = _scores(v)["score"].to_numpy()
    b = _scores(v, flat_floor=1.0)["score"].to_numpy()
    np.testing.assert_array_equal(a, b)


def test_external_profile_sets_options_on_kpis_only():
    cfg = load_analysis_config(None, ["external.early_min=12", "external.flat_floor=1.0"])
    assert cfg.detectors["rolling_zscore"].early_min is None   # store runs: untouched
    prof = external_profile(cfg, 300.0)
    rz = [d for d in prof.detectors.values() if d.type == "rolling_zscore"]
    assert rz and all(d.early_min == 12 and d.flat_floor == 1.0 for d in rz)
    off = external_profile(load_analysis_config(
        None, ["external.early_min=null", "external.flat_floor=null"]), 300.0)
    assert all(getattr(d, "early_min", None) is None for d in off.detectors.values())
    shipped = load_analysis_config(None, [])
    assert (shipped.external.early_min, shipped.external.flat_floor) == (24, 1.0)


def test_widen_reads_a_short_reference_as_student_t_with_reduced_degrees_of_freedom():
    from scipy.special import ndtri, stdtr

    from analytics.detectors.short_history import EFF_DF, widen

    got = widen(np.array([3.0, -3.0, 3.0]), np.array([11.0, 11.0, 1.0]))
    want = -ndtri(stdtr(EFF_DF * 10, -3.0))
    assert got[0] == pytest.approx(want) and got[1] == pytest.approx(-want)
    assert got[2] == pytest.approx(-ndtri(stdtr(1.0, -3.0)))      # never below 1 df
