"""Short-history scoring for rolling_zscore on ``--kpis`` input (options the external profile sets;
store data never uses them).

Two gaps of the seasonal z-score on real sub-daily series:

- **Warm-up.** The hour-of-day factor needs two earlier days, so a 5-minute file gets no score
  for its first two days (a 4-day file is half unscored), and a slot whose median is zero in a
  series with a level elsewhere has no factor at all (a series whose every hour has median zero
  gets factor 1: ``slots``). ``early_scores`` scores the *unadjusted* values
  wherever the seasonal score is missing, from ``min_periods`` reference periods of the file's own
  step on, and makes the calibration honest for a short reference: the raw z (median / MAD of
  ``n`` past periods) is read as Student-t with ``EFF_DF × (n − 1)`` degrees of freedom and mapped
  to the normal scale (a 6-period reference needs a much larger departure than a 28-period one).
  ``EFF_DF`` was fitted on Gaussian noise (tests/analytics/test_short_history.py): the MAD of a
  few points is a noisy spread, so the effective degrees of freedom are well below ``n − 1``.
- **Near-constant references.** A reference whose MAD is zero (a flat run, a series that is
  mostly zeros) gave no score (0 / 0). ``floor_spread`` floors such a degenerate spread at
  ``frac`` × the range of the previous day (at least the reference window) of periods, so a spike
  on a mostly-zero series is judged against the spikes of the last day (no larger: about
  1 / frac), and never below ``REL_FLOOR`` × the reference's |median| (a noiseless square wave
  does not turn rounding into news). A reference still at zero spread (flat at exactly zero over
  that span) is "flat": a departure from it scores ``FLAT_SCORE`` (finite, and large enough to
  flag at the shipped sensitivities). References with a non-zero MAD are untouched.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri, stdtr

from .calibrate import rolling, shift

EFF_DF = 0.4     # effective degrees of freedom per reference period of a median / MAD z-score
MIN_DF = 1.0
FLAT_SCORE = 8.0  # raw score of a departure from a perfectly flat reference (sign of the move)
REL_FLOOR = 1e-3  # spread never below this fraction of |centre| (a 0.1 % move is never news)


def widen(z: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Raw z of a reference of ``n`` periods -> the normal quantile of its Student-t tail."""
    df = np.maximum(EFF_DF * (n - 1), MIN_DF)
    with np.errstate(invalid="ignore"):
        p = stdtr(df, -np.abs(z))
        out = np.sign(z) * -ndtri(np.clip(p, 1e-300, 0.5))
    return np.where(np.isfinite(z), out, np.nan)


def floor_spread(
    spread: np.ndarray, lagged: np.ndarray, centre: np.ndarray, window: int, ppd: int,
    frac: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(spread, kind: 0 ordinary, 1 degenerate, 2 exactly flat reference). The spread is
    never below ``REL_FLOOR`` x |centre|; where it is degenerate (the MAD is zero: half the
    reference or more at one value, e.g. a mostly-zero series) it is floored at ``frac`` x the
    range of the previous max(window, one day) periods, so a spike no larger than the last day's
    spikes scores about 1 / frac. A reference whose spread is still zero (flat at exactly zero
    over that span) is "flat": ``flat_score`` gives a departure from it a fixed score."""
    span = max(int(window), int(ppd))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rng = rolling(lagged, span, 2, "max") - rolling(lagged, span, 2, "min")
    rel = REL_FLOOR * np.abs(centre)
    degenerate = np.isfinite(spread) & (spread <= rel)
    out = np.where(degenerate, np.fmax(np.fmax(spread, rel), frac * rng), spread)
    flat = np.isfinite(out) & (out <= 0)
    return out, np.where(flat, 2, degenerate.astype(int))


def flat_score(score: np.ndarray, cur: np.ndarray, centre: np.ndarray,
               kind: np.ndarray) -> np.ndarray:
    """``score`` on degenerate references: no departure (the value is the reference's median) is
    no opinion (NaN: a mostly-zero series' run of zeros must not teach the calibrator that its
    scale is zero); a departure from an exactly flat reference scores ±FLAT_SCORE."""
    dep = cur - centre
    ok = np.isfinite(dep)
    out = np.where(ok & (kind >= 1) & (dep == 0), np.nan, score)
    return np.where(ok & (kind == 2) & (dep != 0), np.sign(dep) * FLAT_SCORE, out)


def window_median_mad(lagged: np.ndarray, window: int, min_periods: int, chunk: int = 20_000
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, 1.4826 x MAD, count) of the finite values among the trailing ``window`` rows
    (including the current row) of each column; NaN below ``min_periods`` values. Exact per
    window (a short reference has no room for the rolling approximation of the main path), in
    row chunks: memory O(chunk x window x series), time linear in rows."""
    t, s = lagged.shape
    w = max(int(window), 1)
    pad = np.vstack([np.full((w - 1, s), np.nan), lagged])
    centre, spread, n = (np.full((t, s), np.nan) for _ in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN windows
        for a in range(0, t, chunk):
            b = min(t, a + chunk)
            win = np.lib.stride_tricks.sliding_window_view(pad[a : b + w - 1], w, axis=0)
            cnt = np.isfinite(win).sum(axis=-1)
            med = np.nanmedian(win, axis=-1)
            mad = np.nanmedian(np.abs(win - med[..., None]), axis=-1)
            ok = cnt >= max(int(min_periods), 1)
            centre[a:b] = np.where(ok, med, np.nan)
            spread[a:b] = np.where(ok, 1.4826 * mad, np.nan)
            n[a:b] = cnt
    return centre, spread, n


def early_scores(value: np.ndarray, clean: np.ndarray, window: int, min_periods: int, ppd: int,
                 floor_frac: float | None) -> np.ndarray:
    """Raw scores of the unadjusted values (median / MAD of the previous ``window`` periods, from
    ``min_periods`` on), t-widened for the reference size; NaN where there is no reference."""
    lagged = shift(clean, 1)
    centre, spread, n = window_median_mad(lagged, window, min_periods)
    flat = np.zeros(spread.shape, int)
    if floor_frac is not None:
        spread, flat = floor_spread(spread, lagged, centre, window, ppd, floor_frac)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (value - centre) / np.where(spread > 0, spread, np.nan)
    z = widen(z, n)
    if floor_frac is not None:
        z = flat_score(z, value, centre, flat)
    return z
