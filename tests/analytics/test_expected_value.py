"""count_likelihood's expected value (baseline.py): pooled weekday profile, causality, trimming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.detectors import DetectorInput
from analytics.detectors.baseline import (
    ExpectedConfig,
    Level,
    _slope,
    catch_up_level,
    median_level,
    parents,
    pooled_profile,
    pooled_trend_level,
    trend_level,
    trim_factor,
    trimmed_rolling,
)
from analytics.detectors.calibrate import shift
from analytics.detectors.count_likelihood import CountLikelihood, CountLikelihoodConfig
from analytics.detectors.slots import slot_factor

SHARED = np.array([0.9, 0.85, 0.9, 0.95, 1.1, 1.25, 1.05])
OWN = np.array([1.5, 0.7, 0.7, 0.8, 1.3, 1.0, 1.0])  # one channel's genuinely different week


def _panel(weeks: int = 60, size: float = 25.0, seed: int = 3, different: bool = True):
    """Six small channels (Poisson, ``size`` a day) on one shared weekly shape except channel 5
    (its own, if ``different``), a store-wide day factor (CV 4 %), and the store = their sum."""
    rng = np.random.default_rng(seed)
    t = weeks * 7
    day = rng.gamma(1 / 0.04**2, 0.04**2, t)
    shapes = [SHARED / SHARED.mean()] * 5 + [(OWN if different else SHARED) / OWN.mean()]
    shapes[5] = shapes[5] / shapes[5].mean()
    trend = np.linspace(1.0, 1.4, t)  # a trend between weeks does not distort the profile
    ch = np.column_stack([rng.poisson(size * trend * day * np.tile(s, weeks)) for s in shapes])
    x = np.column_stack([ch.sum(axis=1), ch]).astype(float)
    keys = [("orders", "overall", "all")] + [("orders", "channel", f"c{i}") for i in range(6)]
    return x, keys, shapes


def _error(factor: np.ndarray, shape: np.ndarray, start: int) -> float:
    """RMS relative error of a factor against the true weekday shape, from row ``start``."""
    truth = np.tile(shape, len(factor) // 7 + 1)[: len(factor)]
    return float(np.sqrt(np.nanmean((factor[start:] / truth[start:] - 1) ** 2)))


def _profiles(x, keys):
    par = parents(keys)
    dims = np.array([d for _, d, _ in keys])
    cfg = ExpectedConfig(weekday_weeks=52)
    pooled, c_w, _ = pooled_profile(x, par, dims, cfg)
    alone, _, _ = pooled_profile(x, np.full(len(keys), -1), dims, cfg)
    return pooled, c_w, alone


def test_pooled_weekday_profile_recovers_a_shared_shape():
    """Every channel on the store's weekly shape: pooling (B ≈ 0) beats each channel's own
    within-week profile, and by far the per-series 12-week median used before."""
    x, keys, shapes = _panel(different=False)
    pooled, c_w, alone = _profiles(x, keys)
    median12 = slot_factor(x, 1, 12, "median")
    start = 20 * 7
    for j in range(1, 7):
        e_pooled = _error(pooled[:, j], shapes[0], start)
        assert e_pooled < 0.6 * _error(alone[:, j], shapes[0], start)
        assert e_pooled < 0.4 * _error(median12[:, j], shapes[0], start)
    # the null is told: a pooled channel's factor carries less error than the store's own
    assert np.nanmedian(c_w[start:, 1:]) < 0.5 * np.nanmedian(c_w[start:, 0])


def test_pooled_weekday_profile_keeps_a_genuinely_different_shape():
    """One channel with its own week keeps it (empirical Bayes: its deviation is significant);
    the others lose nothing against their own profiles."""
    x, keys, shapes = _panel(different=True)
    pooled, _, alone = _profiles(x, keys)
    start = 20 * 7
    gap = float(np.sqrt(np.mean((shapes[5] / shapes[0] - 1) ** 2)))
    assert _error(pooled[:, 6], shapes[5], start) < 0.15 * gap
    for j in range(1, 6):
        assert _error(pooled[:, j], shapes[0], start) < 1.05 * _error(alone[:, j], shapes[0],
                                                                      start)


def test_trimmed_rolling_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 3))
    a[5, 1] = a[17, 2] = np.nan
    got, n = trimmed_rolling(a, 9, 0.2, 4)
    for t in (3, 8, 20, 39):
        for s in range(3):
            w = a[max(0, t - 8): t + 1, s]
            w = np.sort(w[np.isfinite(w)])
            g = int(np.floor(0.2 * len(w)))
            want = w[g: len(w) - g].mean() if len(w) >= 4 else np.nan
            np.testing.assert_allclose(got[t, s], want, equal_nan=True)
            assert n[t, s] == len(w)
    assert trim_factor(0) == 1.0 and trim_factor(0.5) == pytest.approx(np.pi / 2)
    assert 1.05 < trim_factor(0.1) < 1.07


def _store(days: int = 400, seed: int = 2):
    x, keys, _ = _panel(weeks=days // 7 + 1, size=60.0, seed=seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    frames, counts = [], []
    for j, (kpi, dim, seg) in enumerate(keys):
        frames.append(pd.DataFrame({"date": dates, "kpi": kpi, "dimension": dim, "segment": seg,
                                    "value": x[:days, j]}))
        counts.append(pd.DataFrame({"date": dates, "dimension": dim, "segment": seg,
                                    "orders": x[:days, j]}))
    return pd.concat(frames, ignore_index=True), pd.concat(counts, ignore_index=True)


@pytest.mark.parametrize("expected", [
    {},
    {"weekday": "pooled"},
    {"weekday": "pooled", "level": "trend", "share_window": 56},
    {"level": "trend", "trend": "difference", "level_trim": 0.1, "share_window": 28},
    {"level": "pooled_trend"},
    {"weekday": "pooled", "level": "pooled_trend", "trend": "difference"},
    {"weekday": "pooled", "level": "pooled_trend", "catch_up": 10},
])
def test_the_expected_value_is_causal(expected):
    """Scores and expected values up to a day do not change when later days change."""
    series, counts = _store()
    cut = pd.Timestamp("2024-11-15")
    det = CountLikelihood(CountLikelihoodConfig(expected=ExpectedConfig(**expected)))
    full = det.detect(DetectorInput(series=series, counts=counts, sensitivity=0.1))
    late = series["date"] > cut
    changed = series.copy()
    changed.loc[late, "value"] *= 3.0
    cnt = counts.copy()
    cnt.loc[counts["date"] > cut, "orders"] *= 3.0
    other = CountLikelihood(CountLikelihoodConfig(expected=ExpectedConfig(**expected))).detect(
        DetectorInput(series=changed, counts=cnt, sensitivity=0.1))
    keep = full["date"] <= cut
    assert full.loc[keep, "expected"].notna().sum() > 1000
    for col in ("score", "expected"):
        np.testing.assert_array_equal(full.loc[keep, col].to_numpy(),
                                      other.loc[keep, col].to_numpy())
    assert not np.allclose(full.loc[~keep, "expected"].fillna(0),
                           other.loc[~keep, "expected"].fillna(0))


def test_the_default_expected_value_is_the_fifth_sessions():
    """The options are off by default: count_likelihood's expected value is the per-series
    12-week median weekday factor × the 28-day median level, as before; pooled differs."""
    series, counts = _store(days=200)
    inp = DetectorInput(series=series, counts=counts, sensitivity=0.1)
    cfg = ExpectedConfig()
    assert (cfg.weekday, cfg.level, cfg.share_window) == ("own_median", "median", None)
    default = CountLikelihood(CountLikelihoodConfig()).detect(inp)
    pooled = CountLikelihood(CountLikelihoodConfig(
        expected=ExpectedConfig(weekday="pooled"))).detect(inp)
    assert default["expected"].notna().sum() > 500 and pooled["expected"].notna().sum() > 500
    assert not np.allclose(default["expected"].fillna(0), pooled["expected"].fillna(0))


def _swing_panel(step_at: int = 420, step: float = 1.6, seed: int = 5):
    """Six channels (Poisson, ~300 a day) on one shared yearly swing (amplitude 0.3), channel 5
    stepping to ``step`` × from day ``step_at`` on (a lasting shock on ONE slice), and the store
    = their sum. No weekly shape (the level alone is tested)."""
    rng = np.random.default_rng(seed)
    t = 640
    swing = 1 + 0.3 * np.sin(2 * np.pi * np.arange(t) / 365)
    lift = np.ones((t, 6))
    lift[step_at:, 5] = step
    mean = 300 * swing[:, None] * lift
    ch = rng.poisson(mean).astype(float)
    x = np.column_stack([ch.sum(axis=1), ch])
    kpis = np.array(["orders"] * 7)
    dims = np.array(["overall"] + ["channel"] * 6)
    return x, np.column_stack([mean.sum(axis=1), mean]), kpis, dims


def _ahead(level, k: int = 1) -> np.ndarray:
    """The level's forecast of each day from the day before (row t: day t)."""
    from analytics.detectors.calibrate import shift
    return shift(level.base + level.slope * level.h0, k)


def test_pooled_trend_follows_a_shared_swing_but_not_one_slices_lasting_step():
    """A shared yearly swing is followed by the pooled trend (much less lag than the 28-day
    median); a lasting step on one channel is not read as that channel's trend, where the
    per-series trend (minmod) extrapolates it."""
    x, truth, kpis, dims = _swing_panel()
    cfg = ExpectedConfig(level="pooled_trend")
    pooled = pooled_trend_level(x, 28, 14, cfg, kpis, dims)
    own = trend_level(x, 28, 14, ExpectedConfig(level="trend"))
    med = median_level(x, 28, 14)

    def err(level, rows, cols):
        return float(np.sqrt(np.nanmean((_ahead(level)[rows][:, cols] / truth[rows][:, cols]
                                         - 1) ** 2)))

    calm = np.arange(200, 400)  # before the step: the swing alone
    assert err(pooled, calm, slice(1, 6)) < 0.75 * err(med, calm, slice(1, 6))  # ~0.62
    assert err(pooled, calm, slice(0, 1)) < 0.75 * err(med, calm, slice(0, 1))
    # after the step has entered the level (14 days) and for the next 5 weeks: the stepped
    # channel's relative slope stays its untouched siblings' for the pooled trend (~0.05 of
    # the swing's slope apart), not for its own (minmod reads the step as a trend)
    late = np.arange(420 + 14, 420 + 49)

    def gap(lv):
        rel = lv.slope / lv.base
        return float(np.mean(np.abs(rel[late, 6] - rel[late, 1:6].mean(axis=1))))

    assert gap(pooled) < 0.2 * gap(own)


def test_minmod3_reads_no_trend_into_a_step_where_minmod_does():
    """A lasting -60 % step moves a 28-day trailing (trimmed) mean over 28 days, so 28 to 56 days
    after it two consecutive window differences both carry part of it and minmod reads a trend
    (the echo false alarms of a store-wide level shift, docs/history/detection.md, ninth
    session); it never reaches three differences, so minmod3 reads none. A steady trend is
    read by both (the option keeps following real slopes)."""
    t, w, at = 400, 28, 250

    def slope(x, how):
        m1, _ = trimmed_rolling(x[:, None], w, 0.2, 14)
        d = [shift(m1, k * w) - shift(m1, (k + 1) * w) for k in range(3)]
        return _slope(d[0], d[1], w, how, d[2])[:, 0]

    step = np.where(np.arange(t) < at, 1000.0, 400.0)
    echo = np.abs(slope(step, "minmod")[at + w : at + 2 * w])
    assert echo.max() > 5.0  # per day, on a level of 400: the level moves ~1 % a day
    assert np.nanmax(np.abs(slope(step, "minmod3"))) == 0.0
    ramp = 1000.0 * (1 + 0.002 * np.arange(t))
    for how in ("minmod", "minmod3"):
        assert slope(ramp, how)[300] == pytest.approx(2.0, rel=1e-6), how
    # before three windows of history exist, minmod3 is minmod
    np.testing.assert_array_equal(slope(ramp, "minmod3")[: 3 * w + 13],
                                  slope(ramp, "minmod")[: 3 * w + 13])


def test_catch_up_follows_a_lasting_step_and_ignores_a_short_shock():
    """A lasting +40 % step: a 28-day median level stays at the old level until half its days
    have moved (the echo: its residuals meanwhile), the caught-up level is within noise of the
    new one from ~0.7 S days on. A 5-day shock of the same size (fewer than 70 % of S = 10
    days) leaves the level as it was, and on steady noise the level is untouched."""
    rng = np.random.default_rng(5)
    t, at, s = 300, 200, 10
    noise = 1 + 0.03 * rng.standard_normal((t, 3))
    level = np.ones((t, 3)) * 100.0
    level[at:, 0] *= 1.4                 # column 0: a lasting step
    level[at:at + 5, 1] *= 1.4           # column 1: a 5-day shock
    x = level * noise                    # column 2: steady
    plain = median_level(x, 28, 14)
    caught = catch_up_level(x, plain, s, 4.0)
    ahead = caught.base + caught.slope * caught.h0      # expects day t + 1
    old = plain.base + plain.slope * plain.h0
    days = np.arange(at + 7, at + 13)                    # rows 7-12 days into the step
    assert np.all(old[days, 0] < 120)                    # the plain level lags (truth 140)
    assert np.all(np.abs(ahead[days, 0] / 140 - 1) < 0.05)
    assert np.all(ahead[at:at + 6, 0] == old[at:at + 6, 0])   # not before 70 % of S days
    np.testing.assert_array_equal(caught.base[:, 1:], plain.base[:, 1:])
    np.testing.assert_array_equal(caught.c_flat[:, 1:], plain.c_flat[:, 1:])
    assert np.all(caught.c_flat[days, 0] == pytest.approx(np.pi / 2 / s))


def test_catch_up_hold_drops_the_slope_after_a_caught_up_step_only():
    """With ``hold`` days, the slope (and its weight β) is 0 from a series' catch-up until
    ``hold`` days after its last one, so a step read as a trend later cannot be extrapolated;
    a series that never catches up keeps its slope, and hold 0 keeps every slope."""
    rng = np.random.default_rng(6)
    t, at, s, hold = 300, 150, 10, 56
    x = 100.0 * (1 + 0.03 * rng.standard_normal((t, 2)))
    x[at:, 0] *= 0.5                                   # a lasting step on column 0 only
    plain = median_level(x, 28, 14)
    sloped = Level(plain.base, np.full(x.shape, 0.2), plain.h0, plain.c_flat,
                   np.full(x.shape, 0.5), plain.n, None)
    kept = catch_up_level(x, sloped, s, 4.0)
    held = catch_up_level(x, sloped, s, 4.0, hold)
    assert np.all(kept.slope == 0.2)
    caught = 28 + np.flatnonzero(np.isclose(kept.c_flat[28:, 0], np.pi / 2 / s))  # (rows < 28:
    # the plain median's own π/2 / n)
    assert caught.size and caught[0] >= at + 6      # no catch-up before 70 % of S days
    last = caught[-1]
    assert np.all(held.slope[caught[0]:last + hold, 0] == 0)
    assert np.all(held.beta[caught[0]:last + hold, 0] == 0)
    assert np.all(held.slope[:caught[0], 0] == 0.2)
    assert np.all(held.slope[last + hold:, 0] == 0.2)
    np.testing.assert_array_equal(held.slope[:, 1], kept.slope[:, 1])
