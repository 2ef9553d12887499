"""Expected value of count_likelihood: its level and weekday factor, and three options (a weekday
profile pooled across a KPI's series, a trend-following level, a slice's share of its parent).

The residual of a day against its expected value carries the noise of the day *and* the error of
the expected value. With a 28-day median level and a per-series 12-week median weekday factor
(the fifth session's, still the default) that error is 0.27 of the noise variance on shock-free
TRAIN worlds n1–n5 (0.56–0.65 on the whole store's sessions and orders, where a 28-day level
lags the yearly swing), and every score is that much blunter.
Each part here is estimated from the store's own past (causal; nothing read from truth), and
its error variance is handed to the null:

- **weekday profile** (option ``weekday: pooled``; default ``own_median``: each series' median
  of each weekday over count_likelihood's ``weekday_weeks``): each complete week's days / the
  week's mean (a trend or a level shift between weeks cancels), a trimmed mean over
  ``weekday_weeks`` weeks.
  A slice's profile is its parent's (the same KPI on the whole store) plus its own mean deviation
  from it, shrunk by the empirical-Bayes weight ``B = τ² / (τ² + v)``: ``v`` the sampling
  variance of the deviation, ``τ²`` the median over the slices of its dimension of their squared
  deviations beyond ``v``; a slice whose own deviation exceeds ``SIG`` × ``v`` keeps it
  (``B ≥ 1 − SIG·v / d²``). A store whose channels share one weekly shape pools fully (B ≈ 0);
  a channel with its own shape keeps it (B → 1; tests/analytics/test_expected_value.py);
- **level** (``level: median``): the trailing median over ``window`` days (robust to a shock
  over up to half of them). Option ``trend``: a ``level_trim``-trimmed mean plus the trend
  between it and the same mean ``window`` days (``minmod``: and ``2 window`` days) earlier,
  times a weight ``β`` in [0, 1] fitted on the series' own past one-step errors. Option
  ``pooled_trend``: the slope is the KPI's, pooled across its series (``pooled_trend_level``: a
  precision-weighted median of every series' own relative slope): the store's seasonal swing
  moves every slice of a KPI together, a lasting shock on one slice moves that slice's slope
  only, so it is not read as that slice's trend;
- **catch-up** (option ``catch_up``: S days, ``catch_up_z``, ``catch_up_hold``;
  ``catch_up_level``): a trailing trimmed mean follows a lasting step only after ~0.8 of its
  window, and its residuals meanwhile (the echo) are false alarms and inflate the noise fit. Where
  ≥ 70 % of the last S days sit beyond the level before them (their 30 % / 70 % quantile by more
  than ``catch_up_z`` sds), the level is their median; with ``catch_up_hold`` the slope is 0 for
  that many days after the last catch-up, since differences of trailing means read the step as a
  trend for two windows after it (the ninth session's trend echo). Transient shocks shorter than
  0.7 S days never trigger it;
- **share** (option ``share_window``, slices only): the slice's trimmed-mean share of its parent
  × the parent's level, mixed with the slice's own level by a weight ``w`` in [0, 1] fitted on
  past one-step errors.

Measured on TRAIN worlds (docs/history/detection.md, sixth session), as error variance of the
expected value per unit of the true noise variance on shock-free n1–n5: 0.27 for the fifth
session's expected value, 0.16 with the pooled profile, 0.12 / 0.10 adding the per-series trend
(median / trimmed level), 0.07 adding the share, 0.20 with ``level: pooled_trend`` alone and 0.09
with the pooled profile and ``pooled_trend`` together. On worlds with shocks the per-series trend
and the share raised the false alarms (a lasting shock reads as a trend; a shocked big slice moves
its siblings' share levels). **Shipped** (config/analysis.yaml): ``weekday: pooled, level:
pooled_trend``, which raised F1 and the recall ratio on every TRAIN and validation pool. The
model's defaults here are the fifth session's expected value (``weekday: own_median``, ``level:
median``, no share), byte for byte.

Error variance handed to the null, per unit of the day's noise variance: the level
``c_L = t_L / n · ((1 + β g)² + (β g)²)`` (``t`` the estimator's variance factor: π/2 for the
median, ``trim_factor`` for a trimmed mean; ``g`` the horizon over the window), the profile
``c_W = t_W / weeks · (B + (1 − B)² ρ)``, ``ρ`` the parent's weekly-ratio variance over the
slice's; with ``pooled_trend`` the level's ``c_L = t_L / n + (β h)² var(S) / v`` (``S`` the
pooled relative slope, ``v`` the series' relative noise variance). Vectorized over series
([period × series] matrices); Python loops only over KPIs, dimensions and column chunks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtri

from .calibrate import rolling, shift
from .slots import by_week

SIG = 2.5  # a slice keeps its own weekday deviation beyond SIG x its sampling variance
CHUNK = 2e7  # elements of one sorted sliding-window block (memory bound of trimmed_rolling)


class ExpectedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekday: Literal["own_median", "pooled"] = Field(
        "own_median",
        description="own_median = each series' median of each weekday over weekday_weeks "
        "(rolling_zscore's factor); pooled = trimmed mean of within-week ratios, slices shrunk "
        "towards the whole store's profile of the KPI (empirical Bayes)",
    )
    weekday_weeks: int = Field(52, ge=2, le=520, description="pooled: weeks behind the profile")
    weekday_trim: float = Field(
        0.1, ge=0, lt=0.5, description="pooled: share of weeks trimmed at each end"
    )
    level: Literal["median", "trend", "pooled_trend"] = Field(
        "median",
        description="median = trailing median over `window` days; trend = trimmed mean plus "
        "the trend between it and the one `window` days earlier, weighted by beta fitted on the "
        "series' own past one-step errors; pooled_trend = the same with the KPI's relative "
        "slope: a precision-weighted median over all its series' own relative slopes (a "
        "lasting shock on a few slices does not move it)",
    )
    trend: Literal["difference", "minmod", "minmod3"] = Field(
        "minmod",
        description="trend: the slope between the level and the one `window` days earlier "
        "(difference), or the smaller of that and the slope before it when both agree in "
        "sign, else none (minmod: a step such as a lasting shock is not read as a trend); "
        "minmod3: the same over three consecutive differences (a step moves a trailing mean "
        "over `window` days, so it can reach two consecutive differences, never three)",
    )
    level_trim: float = Field(
        0.2, ge=0, le=0.5,
        description="trend and share: share of days trimmed at each end of the mean (0.5 = the "
        "median: robust to a shock over up to half the window, at π/2 the variance)",
    )
    fit_days: int = Field(
        182, ge=28, le=10_000, description="past days the weights beta and w are fitted on"
    )
    catch_up: int | None = Field(
        None, ge=5, le=56,
        description="days S of the catch-up: where the 30 % (up) / 70 % (down) quantile of the "
        "last S weekday-adjusted values departs from the level before them by more than "
        "catch_up_z x its sd (at least 0.7 S days shifted), the level becomes their median, so a "
        "lasting step is followed after ~0.7 S days, not ~0.8 window (null = off)",
    )
    catch_up_z: float = Field(
        4.0, gt=0, le=100, description="catch_up: the departure, in sds of the quantile"
    )
    catch_up_hold: int = Field(
        0, ge=0, le=1000,
        description="catch_up: days after a series' last catch-up during which its slope is 0 "
        "(a trend read from differences of trailing means carries a step for two windows after "
        "it; 0 = the slope is kept)",
    )
    share_window: int | None = Field(
        None, ge=7, le=10_000,
        description="slices: days of the share of their parent (same KPI, whole store); the "
        "share x the parent's level is mixed with the slice's own level by a weight fitted on "
        "past one-step errors (null = own level only)",
    )


def trim_factor(trim: float) -> float:
    """Asymptotic variance of the ``trim``-trimmed mean of normal data × n (1 at 0, ~π/2 → 0.5)."""
    if trim <= 0:
        return 1.0
    if trim >= 0.5:
        return float(np.pi / 2)
    q = float(-ndtri(trim))
    pdf = float(np.exp(-q * q / 2) / np.sqrt(2 * np.pi))
    inner = (1 - 2 * trim) - 2 * q * pdf
    return (inner + 2 * trim * q * q) / (1 - 2 * trim) ** 2


def trimmed_rolling(arr: np.ndarray, window: int, trim: float, min_periods: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(trailing trimmed mean including the current row, count of finite values) per column:
    floor(trim × n) of the n finite values of each window cut at each end. Sorted sliding
    windows in column chunks (memory ≤ ``CHUNK`` elements per block)."""
    t, s = arr.shape
    w = max(int(window), 1)
    if trim >= 0.5:  # the median: pandas' compiled rolling median
        n = rolling(np.isfinite(arr).astype(float), w, 1, "sum")
        return rolling(arr, w, max(min_periods, 1), "median"), np.nan_to_num(n)
    mean = np.full((t, s), np.nan)
    cnt = np.zeros((t, s))
    if t == 0 or s == 0:
        return mean, cnt
    pad = np.vstack([np.full((w - 1, s), np.nan), arr])
    step = max(1, int(CHUNK // max(t * w, 1)))
    idx = np.arange(w)
    for c0 in range(0, s, step):
        v = np.sort(sliding_window_view(pad[:, c0:c0 + step], w, axis=0), axis=-1)  # NaN last
        n = np.isfinite(v).sum(-1)
        g = np.floor(trim * n).astype(int)
        keep = (idx >= g[..., None]) & (idx < (n - g)[..., None])
        k = keep.sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            m = np.where(keep, v, 0.0).sum(-1) / np.maximum(k, 1)
        mean[:, c0:c0 + step] = np.where((n >= max(min_periods, 1)) & (k > 0), m, np.nan)
        cnt[:, c0:c0 + step] = n
    return mean, cnt


def parents(keys: list[tuple[str, str, str]]) -> np.ndarray:
    """Column of each series' parent (the same KPI's ``overall`` series), -1 for none / itself."""
    where = {k: i for i, (k, d, _) in enumerate(keys) if d == "overall"}
    return np.array([-1 if d == "overall" else where.get(k, -1) for k, d, _ in keys])


def _fit_weight(r: np.ndarray, x: np.ndarray, days: int) -> np.ndarray:
    """Least-squares weight in [0, 1] of ``x`` in explaining the one-step residual ``r`` over
    the previous ``days`` rows (row t uses rows before t only); ``r`` clipped at 4 robust sds."""
    mad = 1.4826 * rolling(shift(np.abs(r), 1), days, 14, "median")
    rc = np.clip(r, -4 * mad, 4 * mad)
    ok = np.isfinite(rc) & np.isfinite(x)
    num = rolling(shift(np.where(ok, rc * x, 0.0), 1), days, 1, "sum")
    den = rolling(shift(np.where(ok, x * x, 0.0), 1), days, 1, "sum")
    with np.errstate(invalid="ignore", divide="ignore"):
        b = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.clip(np.nan_to_num(b), 0.0, 1.0)


def pooled_profile(clean: np.ndarray, par: np.ndarray, dims: np.ndarray, cfg: ExpectedConfig
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """See ``_pooled_profile`` (all-NaN weeks and slices are expected: no warnings)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _pooled_profile(clean, par, dims, cfg)


def _pooled_profile(clean: np.ndarray, par: np.ndarray, dims: np.ndarray, cfg: ExpectedConfig
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weekday factor, its error variance per unit of the day's noise variance, ρ = the
    parent's weekly-ratio variance over the series' (0 without a parent)) per [period, series],
    from the complete weeks before each day's week (causal); NaN until two exist."""
    cube, t = by_week(clean, 7)  # weeks start at row 0 (weekday slots: any row)
    nc, _, s = cube.shape
    full = np.isfinite(cube).all(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        wm = np.mean(cube, axis=1, keepdims=True)
        r = np.where(full & (wm > 0), cube / np.where(wm > 0, wm, 1.0), np.nan)  # [C, 7, S]
    flat = shift(r.reshape(nc, 7 * s), 1)  # earlier weeks only
    weeks, tw, tr = cfg.weekday_weeks, trim_factor(cfg.weekday_trim), cfg.weekday_trim
    own, n = trimmed_rolling(flat, weeks, tr, 2)
    own, n = own.reshape(nc, 7, s), n.reshape(nc, 7, s)[:, :1]
    v_own = np.nanmean(rolling(flat, weeks, 3, "var").reshape(nc, 7, s), axis=1, keepdims=True)
    prof = own.copy()
    c_raw = tw / np.maximum(n, 1)
    c_w = c_raw.copy()
    rho = np.zeros_like(c_w)
    kids = np.flatnonzero(par >= 0)
    if kids.size:
        p = par[kids]
        diff = shift((r[:, :, kids] - r[:, :, p]).reshape(nc, -1), 1)
        dbar = trimmed_rolling(diff, weeks, tr, 2)[0].reshape(nc, 7, kids.size)
        nd = rolling(np.isfinite(diff).astype(float), weeks, 1, "sum").reshape(nc, 7, -1)
        v = np.nanmean(rolling(diff, weeks, 3, "var").reshape(nc, 7, -1) / np.maximum(nd, 1),
                       axis=1, keepdims=True)  # sampling variance of a mean deviation
        d2 = np.nanmean(dbar**2, axis=1, keepdims=True)
        b = np.zeros_like(v)
        with np.errstate(invalid="ignore", divide="ignore"):
            for d in np.unique(dims[kids]):
                c = dims[kids] == d
                tau2 = np.maximum(np.nanmedian(d2[:, :, c] - v[:, :, c], axis=2, keepdims=True), 0)
                b[:, :, c] = tau2 / (tau2 + v[:, :, c])
            # a series whose own deviation is significant keeps it (d2 / v beyond SIG: ~2 %
            # of pure-noise deviations over six free weekdays)
            b = np.fmax(b, np.clip(1 - SIG * v / d2, 0.0, 1.0))
        b = np.where(np.isfinite(b), b, 1.0)  # nothing to pool with: its own profile
        pooled = own[:, :, p] + b * np.nan_to_num(dbar)
        prof[:, :, kids] = np.where(np.isfinite(own[:, :, p]) & np.isfinite(dbar), pooled,
                                    own[:, :, kids])
        with np.errstate(invalid="ignore", divide="ignore"):
            rho[:, :, kids] = np.nan_to_num(np.clip(v_own[:, :, p] / v_own[:, :, kids], 0.0, 1.0))
        c_w[:, :, kids] = c_raw[:, :, kids] * (b + (1 - b) ** 2 * rho[:, :, kids])
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = prof / np.nanmean(prof, axis=1, keepdims=True)
    factor = prof.reshape(nc * 7, s)[:t]
    c_w, rho = (np.repeat(a, 7, axis=1).reshape(nc * 7, s)[:t] for a in (c_w, rho))
    ok = np.isfinite(factor) & (factor > 0)
    return np.where(ok, factor, np.nan), np.where(ok, c_w, np.nan), rho


@dataclass
class Level:
    """Level of the days after row t (from data up to t): day ``t + 1 + j`` expects
    ``base[t] + slope[t] · (h0 + j)``; ``c1[t]``: its error variance per unit of the day's noise
    variance at ``j = 0`` (``c_at`` for a window); ``beta``: the trend weight."""

    base: np.ndarray
    slope: np.ndarray
    h0: float
    c_flat: np.ndarray  # t_L / n (the base's error variance factor)
    beta: np.ndarray
    n: int
    c_slope: np.ndarray | None = None  # pooled_trend: the slope's variance / the day's noise

    def c_at(self, k: int) -> np.ndarray:
        """Error variance factor of the level over a window of ``k`` days (mean horizon)."""
        h = self.h0 + (k - 1) / 2
        if self.c_slope is not None:  # the pooled slope: (β h)² var(S) on top of the base's
            return self.c_flat + (self.beta * h) ** 2 * self.c_slope
        g = h / self.n * self.beta
        return self.c_flat * ((1 + g) ** 2 + g**2)


def _slope(d1: np.ndarray, d2: np.ndarray, window: int, how: str,
           d3: np.ndarray | None = None) -> np.ndarray:
    """Per-day slope from the last window differences ``d1`` (latest), ``d2`` (and ``d3``):
    ``difference`` = d1 / window; ``minmod`` = the smaller of d1 and d2 when they agree in sign,
    else 0; ``minmod3`` = the smallest of d1, d2, d3 when all three agree in sign, else 0 (minmod
    while d3 does not exist yet).
    A step moves a trailing ``window``-day mean over ``window`` days, so from ``window`` to
    ``2 window`` days after it d1 and d2 both carry part of it and minmod reads a trend (the
    level is extrapolated by about a quarter of the step); it never reaches three differences."""
    if how == "difference":
        return d1 / window
    two = np.where(d1 * d2 > 0, np.sign(d1) * np.fmin(np.abs(d1), np.abs(d2)), 0.0)
    two = np.where(np.isfinite(d1) & np.isfinite(d2), two, np.nan)
    if how == "minmod":
        return two / window
    # minmod3 where the third difference exists; minmod over the first 3 windows of history
    three = np.where(d1 * d3 > 0, np.sign(two) * np.fmin(np.abs(two), np.abs(d3)), 0.0)
    return np.where(np.isfinite(d3), three, two) / window


def trend_level(adj: np.ndarray, window: int, min_periods: int, cfg: ExpectedConfig) -> Level:
    """Trimmed-mean level with the trend weighted by beta (module doc), per column."""
    m1, n = trimmed_rolling(adj, window, cfg.level_trim, min_periods)
    d1, d2 = m1 - shift(m1, window), shift(m1, window) - shift(m1, 2 * window)
    d3 = shift(m1, 2 * window) - shift(m1, 3 * window) if cfg.trend == "minmod3" else None
    slope = _slope(d1, d2, window, cfg.trend, d3)
    h0 = (window + 1) / 2
    r = adj - shift(m1, 1)
    beta = _fit_weight(r, shift(slope, 1) * h0, cfg.fit_days)
    c_flat = trim_factor(cfg.level_trim) / np.maximum(n, 1)
    return Level(m1, beta * np.nan_to_num(slope), h0, c_flat, beta, window)


def rel_noise_var(adj: np.ndarray, ahead: np.ndarray) -> np.ndarray:
    """Robust relative one-step noise variance per [period, series]: (1.4826 × the trailing
    91-day median of |adj / ahead − 1|)², from the rows before each row (``ahead``: each row's
    expectation from the rows before it)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        r = adj / ahead - 1
    return (1.4826 * rolling(shift(np.abs(r), 1), 91, 14, "median")) ** 2


def _weighted_median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Row-wise weighted median of ``x`` (NaN or zero weight: left out; none left: NaN)."""
    w = np.where(np.isfinite(x) & np.isfinite(w), w, 0.0)
    order = np.argsort(np.where(w > 0, x, np.inf), axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    cw = np.cumsum(np.take_along_axis(w, order, axis=1), axis=1)
    tot = cw[:, -1:]
    i = np.minimum((cw < tot / 2).sum(axis=1, keepdims=True), x.shape[1] - 1)
    return np.where(tot[:, 0] > 0, np.take_along_axis(xs, i, axis=1)[:, 0], np.nan)


def pooled_trend_level(adj: np.ndarray, window: int, min_periods: int, cfg: ExpectedConfig,
                       kpis: np.ndarray, dims: np.ndarray) -> Level:
    """Trimmed-mean level plus the KPI's pooled relative slope × the series' level × beta.

    Each series' own relative slope ``s = (m(t) − m(t − W)) / (W m(t))`` (``trend``: minmod
    or difference, as ``trend_level``) has sampling variance ``2 t_L / W³ · v`` (``v`` the
    series' relative one-step noise variance, a robust trailing estimate); the KPI's slope ``S``
    is the median of its series' slopes weighted by ``1 / v``. A store's seasonal swing moves
    every slice of a KPI together; a lasting shock on a few slices moves their own slopes only.
    ``S``'s variance (``π/2 / Σ w`` with the weights' sum divided by the number of dimensions:
    each dimension partitions the same store, so they are not independent) is handed to the
    null, per unit of each series' own noise."""
    m1, n = trimmed_rolling(adj, window, cfg.level_trim, min_periods)
    with np.errstate(invalid="ignore", divide="ignore"):
        lm = np.where(m1 > 0, m1, np.nan)
        d1 = (m1 - shift(m1, window)) / lm
        d2 = (shift(m1, window) - shift(m1, 2 * window)) / lm
        d3 = ((shift(m1, 2 * window) - shift(m1, 3 * window)) / lm
              if cfg.trend == "minmod3" else None)
        s = _slope(d1, d2, window, cfg.trend, d3)
        v = rel_noise_var(adj, shift(lm, 1))
        tl = trim_factor(cfg.level_trim)
        vs = 2 * tl / window**3 * v  # the own slope's sampling variance
        wgt = np.where(np.isfinite(s) & (vs > 0), 1.0 / vs, 0.0)
    slope_rel = np.full(adj.shape, np.nan)
    var_s = np.full(adj.shape, np.nan)
    for k in np.unique(kpis):
        c = kpis == k
        big_s = _weighted_median(s[:, c], wgt[:, c])
        nd = max(len(np.unique(dims[c])), 1)
        tot = wgt[:, c].sum(axis=1) / nd
        with np.errstate(invalid="ignore", divide="ignore"):
            vk = np.where(tot > 0, (np.pi / 2) / tot, np.nan)
        slope_rel[:, c] = big_s[:, None]
        var_s[:, c] = vk[:, None]
    h0 = (window + 1) / 2
    res = adj - shift(m1, 1)
    beta = _fit_weight(res, shift(slope_rel * m1, 1) * h0, cfg.fit_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        c_slope = np.nan_to_num(var_s / v)
    c_flat = tl / np.maximum(n, 1)
    return Level(m1, beta * np.nan_to_num(slope_rel * m1), h0, c_flat, beta, window, c_slope)


def median_level(adj: np.ndarray, window: int, min_periods: int) -> Level:
    """rolling_zscore's level: the trailing median, no trend (c = π/2 / count)."""
    m = rolling(adj, window, min_periods, "median")
    n = rolling(np.isfinite(adj).astype(float), window, 1, "sum")
    z = np.zeros_like(m)
    return Level(m, z, (window + 1) / 2, (np.pi / 2) / np.maximum(n, 1), z, window)


Q_CATCH = 0.3  # catch_up: the quantile of the last S days that must depart (>= 70 % shifted)
Q_SD = float(np.sqrt(Q_CATCH * (1 - Q_CATCH)) / (np.exp(-ndtri(Q_CATCH) ** 2 / 2)
                                                  / np.sqrt(2 * np.pi)))  # 1.317 sigma / sqrt(S)


def catch_up_level(adj: np.ndarray, level: Level, days: int, z: float, hold: int = 0) -> Level:
    """``level`` with its base replaced by the median of the last ``days`` values wherever those
    days sit on one side of the level before them: the 30 % quantile above it (or the 70 %
    below) by more than ``z`` sds of that quantile (``Q_SD`` σ / √days with the old level's own
    error, σ the series' robust relative one-step sd). At least 70 % of the days must have moved,
    so a transient shock shorter than that never triggers it; a lasting step is followed after
    ~0.7 ``days`` instead of the ~0.8 ``window`` a trimmed mean takes (the echo of a step: its
    residuals while the level catches up). The base's error variance becomes the median's,
    π/2 / days. The slope is kept, or with ``hold`` > 0 set to 0 (with its weight β) for ``hold``
    days after the last catch-up of the series: differences of trailing means read a step as a
    trend for two windows after it (the trend echo)."""
    s = days
    fr = pd.DataFrame(adj)
    roll = fr.rolling(s, min_periods=s - 2)
    lo = roll.quantile(Q_CATCH).to_numpy()
    hi = roll.quantile(1 - Q_CATCH).to_numpy()
    med = roll.median().to_numpy()
    mid = (s - 1) / 2
    before = shift(level.base + level.slope * (level.h0 + mid), s)  # the level before the days
    with np.errstate(invalid="ignore", divide="ignore"):
        v = rel_noise_var(adj, shift(level.base + level.slope * level.h0, 1))
        sd = np.sqrt(v * (Q_SD**2 / s + shift(level.c_flat, s)))
        dep_up = lo / before - 1
        dep_dn = hi / before - 1
    go = np.isfinite(med) & (before > 0) & ((dep_up > z * sd) | (dep_dn < -z * sd))
    if not go.any():
        return level
    slope, beta = level.slope, level.beta
    if hold > 0:
        recent = rolling(go.astype(float), hold, 1, "max") > 0
        slope, beta = np.where(recent, 0.0, slope), np.where(recent, 0.0, beta)
    base = np.where(go, med - slope * (level.h0 - (s + 1) / 2), level.base)
    c_flat = np.where(go, (np.pi / 2) / s, level.c_flat)
    return Level(base, slope, level.h0, c_flat, beta, level.n, level.c_slope)


def share_level(adj: np.ndarray, own: Level, par: np.ndarray, rho: np.ndarray,
                cfg: ExpectedConfig) -> Level:
    """Slices: own level mixed with share × the parent's level by the fitted weight w (``rho``:
    the parent's noise variance over the slice's, ``pooled_profile``)."""
    kids = np.flatnonzero(par >= 0)
    if not kids.size or cfg.share_window is None:
        return own
    p = par[kids]
    with np.errstate(invalid="ignore", divide="ignore"):
        q = adj[:, kids] / np.where(adj[:, p] > 0, adj[:, p], np.nan)
    share, ns = trimmed_rolling(q, cfg.share_window, cfg.level_trim, 14)
    sb = share * own.base[:, p]
    ss = share * own.slope[:, p]
    own_pred = shift(own.base[:, kids] + own.slope[:, kids] * own.h0, 1)
    sh_pred = shift(sb + ss * own.h0, 1)
    w = _fit_weight(adj[:, kids] - own_pred, sh_pred - own_pred, cfg.fit_days)
    w = np.where(np.isfinite(sb), w, 0.0)
    base, slope, c_flat = own.base.copy(), own.slope.copy(), own.c_flat.copy()
    base[:, kids] = np.where(w > 0, (1 - w) * own.base[:, kids] + w * np.nan_to_num(sb),
                             own.base[:, kids])
    slope[:, kids] = (1 - w) * own.slope[:, kids] + w * np.nan_to_num(ss)
    c_share = trim_factor(cfg.level_trim) / np.maximum(ns, 1) + own.c_at(1)[:, p] * rho[:, kids]
    c_flat[:, kids] = (1 - w) ** 2 * own.c_flat[:, kids] + w**2 * np.nan_to_num(c_share)
    beta = own.beta.copy()
    beta[:, kids] = (1 - w) * own.beta[:, kids]  # the share's part carries the parent's trend
    return Level(base, slope, own.h0, c_flat, beta, own.n, own.c_slope)
