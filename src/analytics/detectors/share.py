"""A slice judged by its share of the parent: rolling_zscore's ``reference: parent`` scores.

A slice (a channel, country, category or channel x country cell) moves with the whole store from
day to day: the store-wide day-to-day noise, the weekly and yearly shape, the trend, marketing
and store-wide shocks move every slice alike. Judging the slice by its log share of the overall
series of the same KPI on the same day,

    y_t = log(S_t + a) - log(P_t + a)

(``a``: half an order for counts, one typical order for revenue, 0 for ratios), cancels all of
that, so what is left is the slice's own noise: a baseline from the share's trailing median over
``window`` periods, a spread from its robust MAD, never below the count noise of a share (a
slice of expected count ``n_S`` of a parent of ``n_P``: ``var(log share) = 1/n_S - 1/n_P`` for
counts, x (1 + cv^2) for revenue, x cv^2 for AOV, for conversion with ``n`` = orders). Store-wide
shocks stay caught on the overall series; a shock in the slice moves its share by
``(1 - e) / (1 - s e)`` (share ``s``, effect ``e``): at small effects the same evidence as the
slice against the rest of the store.

Raw scores only; ``RollingZScore`` returns them as ``score@s<k>`` columns, calibrated like every
window (``share_calibration``) and combined with the others by Bonferroni.
"""

from __future__ import annotations

import warnings

import numpy as np

from .calibrate import COUNT_KPIS, rolling, shift


def parent_columns(keys: list[tuple]) -> np.ndarray:
    """Index of each column's parent (the overall series of the same KPI); -1 for overall columns
    and for slices whose KPI has no overall series."""
    overall = {k: i for i, (k, d, _) in enumerate(keys) if d == "overall"}
    return np.array([-1 if d == "overall" else overall.get(k, -1) for k, d, _ in keys])


def share_floor(
    kpi: str,
    n_slice: np.ndarray | None,
    n_parent: np.ndarray | None,
    level_slice: np.ndarray,
    level_parent: np.ndarray,
    value_cv: float,
) -> np.ndarray | float:
    """Smallest plausible spread of one period's log share (see the module docstring): counts from
    their own expected levels; revenue, AOV and conversion from the expected order counts."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if kpi in COUNT_KPIS:
            v = 1 / np.maximum(level_slice, 0.5) - 1 / np.maximum(level_parent, 0.5)
        elif n_slice is None or n_parent is None:
            return 0.0
        else:
            k = {"revenue": 1 + value_cv**2, "aov": value_cv**2, "conversion_rate": 1.0}.get(kpi)
            if k is None:
                return 0.0
            v = k * (1 / np.maximum(n_slice, 1) - 1 / np.maximum(n_parent, 1))
    return np.sqrt(np.nan_to_num(np.maximum(v, 0.0), nan=0.0))


def share_scores(
    value: np.ndarray,
    planned: np.ndarray,
    keys: list[tuple],
    windows: list[int],
    window: int,
    min_periods: int,
    spread_window: int,
    offset: np.ndarray,
    orders: np.ndarray | None,
    count_floor: bool,
    value_cv: float,
    ignore_calendar: bool = False,
    sessions_daily: np.ndarray | None = None,
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Raw share scores of every slice column of the [period, series] matrix ``value`` for each
    window k: the mean residual of the last k periods against the baseline share from before
    them, x sqrt(k) (the square root of the periods averaged: fewer than k where some are planned
    or missing), over the residual's robust spread (MAD over ``spread_window`` periods ending
    before the window, never below the count floor); and the expected value of each slice
    (baseline share x today's parent). The baseline share is the median over ``window`` periods
    of the 7-period share (sums over a week: a small slice's daily share is too discrete for a
    median).

    Residuals: count KPIs (and conversion as orders given the slice's sessions,
    ``sessions_daily``) on the Anscombe scale, ``2 (sqrt(x + 3/8) - sqrt(E + 3/8))`` with ``E`` =
    baseline share x parent (unit spread for Poisson counts at any size, so a slice with 3
    orders a day has no heavier tails than the store); revenue and AOV as log shares. Columns
    without a parent are NaN. ``planned`` days (the slice's or the parent's) stay out of the
    baselines; ``offset`` is ``a`` of the log share per column; ``orders`` the expected orders per
    column's slice (None: no floor for revenue and AOV)."""
    kpis = np.array([k for k, _, _ in keys])
    par = parent_columns(keys)
    has = par >= 0
    nan = np.full(value.shape, np.nan)
    if not has.any():
        return {k: nan.copy() for k in windows}, nan.copy()
    pi = np.where(has, par, 0)
    parent = value[:, pi]
    skip = planned | planned[:, pi]
    mp = min(min_periods, window)
    count = np.isin(kpis, COUNT_KPIS) & has
    conv = (kpis == "conversion_rate") & has & (sessions_daily is not None)
    # revenue as "order units": R / u with u = E[V^2] / E[V] = a typical order x (1 + cv^2) has
    # variance = mean under compound Poisson, so it takes the same square-root scale
    rev = (kpis == "revenue") & has
    unit = np.where(rev[None, :] & (offset > 0), offset * (1 + value_cv**2), np.nan)
    rev_ok = rev & np.isfinite(unit).any(axis=0)
    anscombe = count | conv | rev_ok
    # numerator and denominator whose ratio is the share: counts S / P; conversion orders of the
    # slice / (parent conversion x slice sessions); others the log share
    with np.errstate(divide="ignore", invalid="ignore"):
        num = np.where(conv[None, :], value * (sessions_daily if conv.any() else 1.0), value)
        den = np.where(conv[None, :], parent * (sessions_daily if conv.any() else 1.0), parent)
        num = np.where(rev_ok[None, :], value / unit, num)
        den = np.where(rev_ok[None, :], parent / unit, den)
        a = offset
        s_, p_ = value + a, parent + a
        logshare = np.where((s_ > 0) & (p_ > 0),
                            np.log(np.where(s_ > 0, s_, 1.0) / np.where(p_ > 0, p_, 1.0)), np.nan)
        week = max(1, min(7, window // 4))
        num_c, den_c = np.where(skip, np.nan, num), np.where(skip, np.nan, den)
        ratio7 = rolling(num_c, week, 1, "mean") / rolling(den_c, week, 1, "mean")
        ratio7 = np.where(np.isfinite(ratio7) & (ratio7 >= 0), ratio7, np.nan)
        y_clean = np.where(skip, np.nan, logshare)
    levels = rolling(shift(np.where(skip, np.nan, value), 1), window, 1, "median")
    n_par = None if orders is None else orders[:, pi]
    floors = np.zeros(value.shape)
    if count_floor:
        for kpi in set(kpis[has & ~anscombe]):
            cols = np.flatnonzero((kpis == kpi) & has & ~anscombe)
            floors[:, cols] = share_floor(
                kpi,
                None if orders is None else orders[:, cols],
                None if n_par is None else n_par[:, cols],
                levels[:, cols],
                levels[:, pi[cols]],
                value_cv,
            )
    out: dict[int, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)

        def residual(lag: int) -> np.ndarray:
            """Per-period residual against the baseline share known ``lag`` periods earlier."""
            share = rolling(shift(ratio7, lag), window, mp, "median")
            centre = rolling(shift(y_clean, lag), window, mp, "median")
            e = share * den
            r = 2 * (np.sqrt(np.maximum(num, 0) + 0.375) - np.sqrt(np.maximum(e, 0) + 0.375))
            return np.where(anscombe[None, :], r, logshare - centre)

        r1 = residual(1)
        r1_clean = np.where(skip, np.nan, r1)   # a planned day's own residual left out
        if count_floor:
            share_now = rolling(shift(ratio7, 1), window, mp, "median")
            part = (count | rev_ok)[None, :]
            binom = np.sqrt(np.clip(1 - np.where(part, share_now, 0.0), 0.0, 1.0))
            floors = np.where(anscombe[None, :], binom, floors)

        def spread_before(k: int) -> np.ndarray:
            """Spread of one period: robust, from the residuals before a k-period window (its
            own earlier periods left out, as rolling_zscore's own scores do), never below the
            floor (binomial for counts)."""
            sp = 1.4826 * rolling(np.abs(shift(r1_clean, k)), spread_window, mp, "median")
            return np.where(np.maximum(sp, floors) > 0, np.maximum(sp, floors), np.nan)

        for k in windows:
            spread = spread_before(k)
            r = r1 if k == 1 else residual(k)
            n_r = 1.0
            if k > 1:   # the mean of the window's unplanned periods, x sqrt(their number)
                r = r if ignore_calendar else np.where(skip, np.nan, r)
                n_r = rolling(np.isfinite(r).astype(float), k, 1, "sum")
                r = rolling(r, k, (k + 1) // 2, "mean")
            out[k] = r / spread * np.sqrt(n_r)
        share1 = rolling(shift(ratio7, 1), window, mp, "median")
        centre1 = rolling(shift(y_clean, 1), window, mp, "median")
        expected = np.where(
            (count | rev_ok)[None, :], share1 * parent,
            np.where(conv[None, :], share1 * parent, np.exp(centre1) * (parent + a) - a),
        )
    for k in out:
        out[k][:, ~has] = np.nan
    expected[:, ~has] = np.nan
    return out, expected
