"""Raw score -> calibrated score -> threshold: the one post-processing every detector shares.

A detector returns a *raw* score per point (signed, roughly z-like, on its own scale). The shared
causal calibrator maps each series' raw scores to a common scale, the signed z-equivalent of the
point's tail probability under that series' own null:

    s = sign(raw) * Phi^-1(1 - p / 2),   p = P(|raw| >= |raw_t| | no anomaly)

so ``P(|s| >= t) = 2 (1 - Phi(t))`` on normal data whatever the series (a slice with 20 orders a
day or the whole store). Two steps, both from the series' own past only (a point never sees
itself or anything later):

1. **scale**: the raw score is divided by the robust spread of the series' previous raw scores
   (``window_days`` of them; median |raw| / 0.6745, i.e. 1 for a standard normal), shrunk towards
   the detector's own scale while few past scores exist (``prior`` pseudo-scores of scale 1);
2. **tail**: the rescaled score is read as a Student-t variable with ``tail_df`` degrees of
   freedom (estimated baselines make z-scores heavier-tailed than normal) and mapped to the
   normal quantile of the same tail probability (``tail_df: null`` = already normal). Real series
   (``--kpis``) may instead fit their own tail: ``tail: pot`` (peaks over threshold, a generalized
   Pareto tail on the series' past exceedances; ``pot_tail``), chosen by the config section
   ``external`` through ``tail: auto``.

(Merlion's ``post_process/calibrate.py`` learns a monotone map from training-score quantiles to
normal quantiles in the same spirit; PyOD separates ``decision_scores_`` from ``threshold_``.)

One knob, **sensitivity = expected false alerts per series per 90 days**, sets the threshold:
the per-period false-flag probability is ``sensitivity / (90 * periods_per_day)`` and
``threshold = Phi^-1(1 - p / 2)`` (one-sided ``p`` for detectors watching one direction).

Count-aware noise floors (``noise_floor``) give the spread a detector may not go below on count
KPIs (Poisson) and on ratios of counts (binomial conversion; AOV and revenue from the number of
orders), so a quiet stretch of a small slice cannot make a tiny move look enormous.

``Wide`` turns the long detector input into one [period x series] matrix so rolling statistics
run column-wise in compiled code (no per-series Python loop).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtri, stdtr

# np.nanmedian bit for bit without numpy's masked-array path for short columns (which cost the
# calibrator ~4 s per default run)
from ..drivers import nanmedian0

SERIES_KEYS = ["kpi", "dimension", "segment"]
COUNT_KPIS = ("orders", "sessions", "units", "new_customers", "returning_customers")
MAX_SCORE = 50.0


# a window's length in periods: the key of a per-window calibration and an item of `windows`
# (a window of -5 or 0 was taken as given: -3 keyed a calibration no window reads)
Window = Annotated[int, Field(ge=1, le=10_000)]


class CalibrationConfig(BaseModel):
    """How a detector's raw scores are put on the common scale (see module docstring)."""

    model_config = ConfigDict(extra="forbid")

    window_days: float = Field(
        182,
        ge=1,   # under a day (0.01): two periods, never min_history scores, no own scale, run ok
        le=10_000,
        description="days of past raw scores the series' own scale is measured on, at least 1 "
        "(the scale needs `min_history` scores within it)",
    )
    min_history: int = Field(
        14,
        ge=1,
        le=100_000,
        description="past raw scores before the series' own scale is used at all (periods)",
    )
    prior: float = Field(
        28.0,
        ge=0,
        le=100_000,
        description="pseudo-scores of the detector's own scale (1): "
        "shrinks the series' scale while its history is short",
    )
    scale_cap: float | None = Field(
        None,
        gt=1,
        le=100,
        description="past raw scores beyond this x the plain median scale are left out of the "
        "series' scale (the median is taken again without them): a past shock's days no longer "
        "widen it; null = every past score counts",
    )
    tail_df: float | None = Field(
        None,
        gt=1,
        le=1000,
        description="Student-t degrees of freedom of the rescaled score (null = normal)",
    )
    tail: Literal["auto", "fixed", "pooled", "pot"] = Field(
        "auto",
        description="fixed: the rescaled score is read as "
        "Student-t `tail_df` (fitted per detector on shock-free train worlds); "
        "pooled: the shape is learned from the past rescaled scores of all "
        "the detector's series (adapts, but past shocks inflate it); "
        "pot: peaks over threshold, a generalized Pareto tail fitted on each series' own past "
        "exceedances beyond its `pot_quantile` (real machine metrics: any tail shape); "
        "auto: fixed on store data, `external.tail` on --kpis input",
    )
    pot_quantile: float = Field(
        0.98,
        ge=0.5,
        lt=1,
        description="pot: the series' past |score| beyond this quantile are the exceedances the "
        "generalized Pareto tail is fitted on",
    )
    pot_min_exceedances: int = Field(
        30,
        ge=5,
        le=100_000,
        description="pot: past exceedances needed before the fitted tail is used (until then "
        "the fixed tail)",
    )
    tail_every_days: float = Field(
        7,
        gt=0,
        le=10_000,
        description="the scale and the pooled tail map are "
        "refreshed this often (each from the scores before)",
    )
    tail_gain: float = Field(
        1.0,
        gt=0,
        le=10,
        description="the rescaled score is multiplied by this before "
        "the tail step (below 1: heavier tails than the median says)",
    )


@dataclass
class Wide:
    """Long rows (sorted by series, then date) <-> one [period, series] matrix."""

    grid: pd.DatetimeIndex
    keys: list[tuple]
    t_idx: np.ndarray
    s_idx: np.ndarray

    @classmethod
    def of(cls, series: pd.DataFrame) -> Wide:
        grid = pd.DatetimeIndex(np.unique(series["date"].to_numpy()))
        codes = series.groupby(SERIES_KEYS, sort=True).ngroup().to_numpy()
        keys = [
            tuple(r)
            for r in series[SERIES_KEYS]
            .drop_duplicates()
            .sort_values(SERIES_KEYS)
            .itertuples(index=False)
        ]
        return cls(grid=grid, keys=keys, t_idx=grid.get_indexer(series["date"]), s_idx=codes)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.grid), len(self.keys)

    def to(self, values) -> np.ndarray:
        out = np.full(self.shape, np.nan)
        out[self.t_idx, self.s_idx] = np.asarray(values, dtype=float)
        return out

    def back(self, arr: np.ndarray) -> np.ndarray:
        return arr[self.t_idx, self.s_idx]


def rolling(arr: np.ndarray, window: int, min_periods: int, how: str) -> np.ndarray:
    """Column-wise trailing statistic (including the current row) of a [period, series] matrix."""
    r = pd.DataFrame(arr).rolling(
        max(int(window), 1), min_periods=max(1, min(int(min_periods), int(window)))
    )
    return getattr(r, how)().to_numpy()


def shift(arr: np.ndarray, k: int) -> np.ndarray:
    """Rows moved ``k`` down (NaN-filled): row t holds row t - k."""
    out = np.full_like(arr, np.nan, dtype=float)
    if k < len(arr):
        out[k:] = arr[: len(arr) - k]
    return out


def periods_per_day(dates) -> int:
    d = pd.DatetimeIndex(pd.Series(dates).unique()).sort_values()
    if len(d) < 2:
        return 1
    step = pd.Series(d).diff().dropna().median()
    return max(1, int(round(pd.Timedelta(days=1) / step)))


def calibrate_wide(raw: np.ndarray, cfg: CalibrationConfig, ppd: int = 1) -> np.ndarray:
    """Calibrated scores of a [period, series] matrix of raw scores (NaN = no opinion).

    Both maps are refreshed every ``tail_every_days`` (a block): each block uses only the raw
    scores before it, so a score never depends on itself or on later data, and the cost is
    linear in the number of periods (one median / quantile per block, not per period)."""
    a = np.abs(raw)
    t = len(a)
    w = max(int(round(cfg.window_days * ppd)), 2)
    every = max(1, int(round(cfg.tail_every_days * ppd)))
    var = np.ones_like(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for b, e in blocks(t, every, cfg.min_history):
            past = a[max(0, b - w) : b]
            n = np.isfinite(past).sum(axis=0)
            med = nanmedian0(past)
            if cfg.scale_cap is not None:  # leave out what lies far beyond the plain scale
                cut = cfg.scale_cap * med / 0.6745
                past = np.where(past <= cut[None, :], past, np.nan)
                n = np.isfinite(past).sum(axis=0)
                med = nanmedian0(past)
            own = (med / 0.6745) ** 2
            ok = np.isfinite(own) & (n >= cfg.min_history)
            var[b:e] = np.where(ok, (n * own + cfg.prior) / (n + cfg.prior), 1.0)[None, :]
    z = raw / np.sqrt(np.maximum(var, 1e-12)) * cfg.tail_gain
    tail = "fixed" if cfg.tail == "auto" else cfg.tail  # --kpis runs resolve auto beforehand
    if tail == "pooled":
        return pooled_tail(z, w, every)
    if tail == "pot":
        return pot_tail(z, w, every, cfg)
    return to_normal(z, cfg.tail_df)


def blocks(t: int, every: int, first: int) -> list[tuple[int, int]]:
    """Refresh plan of the calibrator over ``t`` periods: [start, end) blocks, each computed from
    the periods before its start. The first block starts at ``min(every, first)``, then the
    history doubles until blocks are ``every`` long (``refit_points``): on daily data (``every``
    = 7 <= ``first``) exactly every 7 days; on 5-minute data the scale is known after 14 periods
    instead of after a week."""
    b = max(1, min(every, first))
    pts = []
    while b < t:
        pts.append(b)
        b += min(b, every)
    if not pts:  # too few periods for a first block: nothing is calibrated (no score)
        return []
    return list(zip(pts, [*pts[1:], t], strict=True))


ANCHORS = (0.5, 0.9, 0.975)  # quantiles of |z| matched to the normal's
NORMAL_AT = tuple(float(-ndtri((1 - q) / 2)) for q in ANCHORS)  # 0.674, 1.645, 2.241


def pooled_tail(z: np.ndarray, window: int, every: int, min_pool: int = 200) -> np.ndarray:
    """Monotone map of |z| fitted on the past rescaled scores of *all* series (Merlion-style
    quantile anchors): the pooled quantiles 50 / 90 / 97.5 % of |z| before each block of
    ``every`` periods go to the normal's (0.674, 1.645, 2.241), linearly in between and beyond the
    last anchor with the last segment's slope. The scale is each series' own; only the shape is
    pooled. Until ``min_pool`` past scores exist the scores pass unchanged."""
    a = np.abs(z)
    out = z.copy()
    t = len(a)
    for b in range(0, t, every):
        past = a[max(0, b - window) : b]
        past = past[np.isfinite(past)]
        if past.size < min_pool:
            continue
        q = np.quantile(past, ANCHORS)
        if not np.all(np.diff(q) > 0) or q[0] <= 0:
            continue
        xs, ys = np.array([0.0, *q]), np.array([0.0, *NORMAL_AT])
        blk = a[b : b + every]
        m = np.interp(blk, xs, ys)
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        m = np.where(blk > xs[-1], ys[-1] + (blk - xs[-1]) * slope, m)
        out[b : b + every] = np.sign(z[b : b + every]) * m
    return np.clip(out, -MAX_SCORE, MAX_SCORE)


def gpd_pwm(exc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generalized Pareto fit per column by probability-weighted moments (Hosking & Wallis 1987)
    of a [rows, series] matrix of exceedances (NaN = none): (count, shape xi, scale sigma).
    Closed form, no iteration; xi = 0 is the exponential tail, xi > 0 heavier, xi < 0 bounded.
    The shape is clipped to [-0.5, 0.9] (few exceedances give noisy shapes)."""
    y = np.sort(exc, axis=0)  # NaN last
    k = np.isfinite(y).sum(axis=0)
    j = np.arange(1, len(y) + 1, dtype=float)[:, None]
    kk = np.maximum(k, 1)[None, :]
    w = np.where(j <= kk, 1.0 - (j - 0.35) / kk, 0.0)
    yz = np.nan_to_num(y, nan=0.0)
    a0 = yz.sum(axis=0) / np.maximum(k, 1)
    a1 = (w * yz).sum(axis=0) / np.maximum(k, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = a0 - 2 * a1
        xi = np.clip(2.0 - a0 / d, -0.5, 0.9)  # Hosking's k = a0 / d - 2; xi = -k
        sigma = 2 * a0 * a1 / d
    ok = (d > 0) & (sigma > 0) & np.isfinite(xi)
    return k, np.where(ok, xi, np.nan), np.where(ok, sigma, np.nan)


def gpd_sf(y: np.ndarray, xi: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Survival function of the generalized Pareto distribution at excess ``y >= 0``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x = np.where(np.abs(xi) < 1e-6, 0.0, xi)
        base = np.maximum(1.0 + x * y / sigma, 0.0)
        sf = np.where(x == 0.0, np.exp(-y / sigma), base ** (-1.0 / np.where(x == 0, 1, x)))
    return np.clip(sf, 0.0, 1.0)


def pot_tail(z: np.ndarray, window: int, every: int, cfg: CalibrationConfig) -> np.ndarray:
    """Peaks over threshold on each series' own past (causal, refreshed every ``every`` periods):
    before each block, ``u`` = the ``pot_quantile`` of the series' past |z| (at most ``window``
    of them) and a generalized Pareto tail fitted on the past exceedances ``|z| - u``
    (``gpd_pwm``). A score beyond ``u`` gets the tail probability
    ``p = (k / n) * GPD_sf(|z| - u)`` (k exceedances among n past scores), one below it is scaled
    linearly so that ``u`` lands on the normal quantile of ``k / n`` (monotone and continuous; it
    never reaches a flag threshold). Series with fewer than ``pot_min_exceedances`` past
    exceedances keep the fixed tail (``tail_df``)."""
    out = to_normal(z, cfg.tail_df)
    a = np.abs(z)
    t = len(a)
    m = cfg.pot_min_exceedances
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        for b, e in blocks(t, every, 5 * m):
            past = a[max(0, b - window) : b]
            n = np.isfinite(past).sum(axis=0)
            if not (n >= 5 * m).any():
                continue
            # the quantile, lowered while the history is short so that m exceedances exist
            # (never below 0.8: the tail is fitted on the top 20 % at most)
            q = np.clip(1.0 - m / np.maximum(n, 1), 0.8, cfg.pot_quantile)
            u = np.array(
                [np.nanquantile(past[:, j], q[j]) if n[j] >= 5 * m else np.nan
                 for j in range(past.shape[1])]
            ) if len(np.unique(q)) > 1 else np.nanquantile(past, q[0], axis=0)
            exc = np.where(past > u[None, :], past - u[None, :], np.nan)
            k, xi, sigma = gpd_pwm(exc)
            use = (k >= m) & np.isfinite(xi) & (u > 0)
            if not use.any():
                continue
            blk = a[b:e][:, use]
            rate = (k / np.maximum(n, 1))[use][None, :]
            p_tail = rate * gpd_sf(np.maximum(blk - u[use], 0.0), xi[use], sigma[use])
            s_u = -ndtri(rate / 2)  # the normal score of u
            s = np.where(
                blk > u[use], -ndtri(np.maximum(p_tail, 1e-300) / 2), blk * s_u / u[use]
            )
            out[b:e, use] = np.sign(z[b:e][:, use]) * s
    return np.clip(out, -MAX_SCORE, MAX_SCORE)


def to_normal(z: np.ndarray, tail_df: float | None) -> np.ndarray:
    """Student-t(df) score -> the normal score of the same two-sided tail probability."""
    if tail_df is None:
        return np.clip(z, -MAX_SCORE, MAX_SCORE)
    with np.errstate(invalid="ignore"):
        lower = stdtr(tail_df, -np.abs(z))  # one-sided tail
        s = -ndtri(np.maximum(lower, 1e-300))
    return np.clip(np.sign(z) * s, -MAX_SCORE, MAX_SCORE)


def threshold_for(sensitivity: float, ppd: int = 1, direction: str = "both") -> float:
    """Calibrated-score threshold giving ``sensitivity`` expected false flags per series per 90
    days."""
    p = min(sensitivity / (90.0 * max(ppd, 1)), 0.5)
    tail = p / 2 if direction == "both" else p
    return float(-ndtri(tail))


def false_flag_rate(threshold: float, ppd: int = 1, direction: str = "both") -> float:
    """Inverse of ``threshold_for``: expected false flags per series per 90 days at
    ``threshold``."""
    from scipy.special import ndtr

    tail = float(ndtr(-threshold))
    return (2 * tail if direction == "both" else tail) * 90.0 * max(ppd, 1)


def noise_floor(
    kpi: str,
    centre: np.ndarray,
    orders: np.ndarray | None,
    sessions: np.ndarray | None,
    value_cv: float = 1.0,
) -> np.ndarray:
    """Smallest plausible standard deviation of one period of ``kpi`` around ``centre``.

    counts: Poisson (sd = sqrt(mean)); conversion = orders / sessions: binomial
    (sd = sqrt(p (1 - p) / sessions)); AOV = revenue / orders: sd = AOV * cv / sqrt(orders);
    revenue: sd = revenue * sqrt((1 + cv^2) / orders), ``cv`` being the coefficient of variation
    of one order's value. ``orders`` / ``sessions`` are the expected counts of the same slice.
    Unknown KPIs (external files) get no floor (0).
    """
    c = np.abs(np.asarray(centre, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        if kpi in COUNT_KPIS:
            out = np.sqrt(c)
        elif kpi == "conversion_rate" and sessions is not None:
            p = np.clip(c, 0, 1)
            out = np.sqrt(p * (1 - p) / np.maximum(sessions, 1))
        elif kpi == "aov" and orders is not None:
            out = c * value_cv / np.sqrt(np.maximum(orders, 1))
        elif kpi == "revenue" and orders is not None:
            out = c * np.sqrt((1 + value_cv**2) / np.maximum(orders, 1))
        else:
            out = np.zeros_like(c)
    return np.where(np.isfinite(out), out, 0.0)


def log_noise_floor(
    kpi: str, orders: np.ndarray | None, value_cv: float = 1.5
) -> np.ndarray | float:
    """``noise_floor`` of a KPI judged in log space (relative sd): AOV cv / sqrt(orders), revenue
    sqrt((1 + cv^2) / orders); 0 for other KPIs or without order counts."""
    if orders is None or kpi not in ("aov", "revenue"):
        return 0.0
    k = value_cv**2 if kpi == "aov" else 1 + value_cv**2
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.sqrt(k / np.maximum(orders, 1)), nan=0.0)


def own_log_offset(past: np.ndarray, window: int, value_cv: float = 1.5) -> np.ndarray:
    """Offset ``a`` of ``log(x + a)`` for a log KPI without an order count (``--kpis`` revenue
    alone): one typical order inferred from the series' own noise, so a zero is a (very low)
    observation, not a gap. Revenue of n orders has relative variance (1 + cv^2) / n, so a
    typical order is the level L x rel^2 / (1 + cv^2), ``rel`` the robust relative size of the
    past one-step errors (1.4826 x median |x - L| / L); the fraction is kept in [0.001, 1]. L is
    the median of the previous ``window`` periods: causal, a row never sees itself; 0 (no
    offset) where there is no positive past level yet."""
    level = rolling(shift(past, 1), window, 1, "median")
    pos = np.isfinite(level) & (level > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(pos, np.abs(past - level) / np.where(pos, level, 1.0), np.nan)
    rel = 1.4826 * rolling(shift(err, 1), window, 1, "median")
    frac = np.clip(np.nan_to_num(rel, nan=0.0) ** 2 / (1 + value_cv**2), 1e-3, 1.0)
    return np.where(pos, level * frac, 0.0)
