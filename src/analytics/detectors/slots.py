"""Seasonal slots shared by the detectors: the weekday of daily data, the hour of the week
(weekday x clock hour) of sub-daily data, and the trailing factor of each slot.

Slots follow the clock, not the file: a sub-daily grid that starts off the hour (NAB's files
start at 00:05, 09:10 …) is read as if NaN rows filled it back to the start of its first clock
hour, so every slot holds the periods of one clock hour whatever row the file starts on (a copy
of a file without its first row gets the same slots). The cycles themselves (weeks, days) run
from that hour: slot identity is clock time; which earlier whole cycles a factor averages is
still counted from the file's first hour.

A sub-daily slot's factor is the median of all its readings in the earlier cycles (each reading
counts once; a few spikes do not set an hour's factor); a series whose every slot has median 0
gets factor 1 (nothing to scale by). Sub-daily data have two factors: the
hour-of-day one for the first two weeks, the hour-of-week one after. They are on different scales
(a weekday's hours carry its level against the week's in the second), so ``slot_factors`` returns
each with the rows it scores, and rolling_zscore scores the rows of each on data divided by it:
the reference of a row just after the switch is divided by the hour-of-week factor too (the week
before the switch gets the first week's), not by the hour-of-day one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .calibrate import rolling, shift


def slot_layout(ppd: int) -> tuple[int, int]:
    """(periods per week, periods per slot): daily -> weekday slots; sub-daily -> hour-of-week slots
    when whole periods fit in an hour, else one slot per period of the week."""
    per_week = 7 * ppd
    k = ppd // 24 if ppd >= 24 and ppd % 24 == 0 else 1
    return per_week, k


def clock_phase(start, ppd: int) -> int:
    """Rows of the grid (step one day / ``ppd``) from the start of ``start``'s clock hour to
    ``start``: the NaN rows that put slot boundaries on clock hours (0 for daily data, for
    one-slot-a-period grids and for a grid on the hour)."""
    _, k = slot_layout(ppd)
    if k == 1 or start is None:
        return 0
    t0 = pd.Timestamp(start)
    step = pd.Timedelta(days=1) / ppd
    return int((t0 - t0.floor("h")) // step) % k


def by_week(arr: np.ndarray, per_week: int) -> tuple[np.ndarray, int]:
    """[T, S] -> [weeks, per_week, S] (NaN-padded at the end); returns (array, T)."""
    t, s = arr.shape
    wk = -(-t // per_week)
    pad = np.full((wk * per_week, s), np.nan)
    pad[:t] = arr
    return pad.reshape(wk, per_week, s), t


def _cycle_factor(
    clean: np.ndarray, period: int, k: int, cycles: int, how: str = "median",
    flat: float = np.nan,
) -> np.ndarray:
    """Factor of each slot of a cycle of ``period`` rows (slots of ``k`` rows): the ``how``
    (mean | median) of the slot's readings in the previous ``cycles`` whole cycles, pooled (each
    reading counts once, whichever cycle it is in), over the mean of all slots' figures; NaN
    until two earlier cycles exist and for a slot with fewer than two readings there. Where
    every slot's figure is 0 (no level to scale by), each known slot gets ``flat``."""
    cube, t = by_week(clean, period)  # [C, period, S]
    nc, _, s = cube.shape
    n = period // k
    # one row per (cycle, row of the slot), one column per (slot, series): a trailing window of
    # `cycles` x k rows holds the slot's readings of `cycles` whole cycles
    reads = cube.reshape(nc, n, k, s).transpose(0, 2, 1, 3).reshape(nc * k, n * s)
    pooled = rolling(shift(reads, k), cycles * k, 2, how)[k - 1 :: k]  # earlier cycles only
    prof = pooled.reshape(nc, n, s).copy()
    prof[:2] = np.nan  # two earlier cycles (daily data: already so, one reading a cycle)
    level = np.nanmean(prof, axis=1, keepdims=True)
    factor = prof / np.where(level != 0, level, np.nan)
    factor = np.where((level == 0) & np.isfinite(prof), flat, factor)
    return np.repeat(factor, k, axis=1).reshape(nc * period, s)[:t]


def slot_factors(
    clean: np.ndarray, ppd: int, weeks: int, how: str = "mean", start=None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seasonal factors per [period, series] from the previous ``weeks`` whole weeks (causal), as
    (factor, rows) pairs: ``rows`` are scored on data divided by ``factor`` (their reference
    included). NaN until two earlier weeks exist (no score before the cycle is known: mixing
    unadjusted and adjusted days in one baseline would read the weekly cycle as anomalies).

    Daily data: one pair, the weekday factor (``how``, mean | median, of each weekday over the
    weeks), every row. Sub-daily data: the median of each slot's readings (clock hour of the
    week, ``slot_layout``); until the hour-of-week factor exists, the hour-of-day one of the
    previous days (from two days on), so a short file of a few weeks is still scored. The two
    are on different scales (a weekday hour over the week's mean level, an hour over the mean
    day's), so the rows with an hour-of-week factor are a second pair whose factor also covers
    the week before it (each row with the factor its slot gets in the first week that has one):
    their reference before the switch is divided by the factor they are divided by, not by the
    hour-of-day one. ``start``: the grid's first timestamp, which puts sub-daily slots on clock
    hours (``clock_phase``; None = the file's first row starts a slot)."""
    per_week, k = slot_layout(ppd)
    lead = clock_phase(start, ppd)
    x = np.vstack([np.full((lead, clean.shape[1]), np.nan), clean]) if lead else clean

    def valid(f: np.ndarray) -> np.ndarray:
        f = f[lead:]
        return np.where(np.isfinite(f) & (f > 0), f, np.nan)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slots
        # sub-daily: a series whose every hour has median 0 (mostly zeros) is not adjusted
        # (factor 1) rather than left without a factor
        week = _cycle_factor(x, per_week, k, weeks, how if ppd == 1 else "median",
                             np.nan if ppd == 1 else 1.0)
        if ppd == 1:
            return [(valid(week), np.ones(clean.shape, bool))]
        day = valid(_cycle_factor(x, ppd, k, 7 * weeks, "median", 1.0))
    cube, t = by_week(week, per_week)  # [weeks, per_week, S]
    known = np.isfinite(cube).any(axis=1)  # [weeks, S]: the weeks a series has the factor in
    first = np.where(known.any(axis=0), known.argmax(axis=0), -1)
    for col in np.flatnonzero(first > 0):  # the week before the first: that week's factor
        cube[first[col] - 1, :, col] = cube[first[col], :, col]
    ahead = cube.reshape(-1, clean.shape[1])[:t]
    weekly = np.isfinite(week[lead:])  # as before: a slot whose figure is 0 has no factor
    on_week = np.where(np.isfinite(ahead[lead:]), valid(ahead), day)
    return [(day, ~weekly), (on_week, weekly)]


def slot_factor(
    clean: np.ndarray, ppd: int, weeks: int, how: str = "mean", start=None
) -> np.ndarray:
    """Each row's own seasonal factor (``slot_factors``): the hour-of-week one where it exists,
    else the hour-of-day one."""
    pairs = slot_factors(clean, ppd, weeks, how, start)
    out = np.full(clean.shape, np.nan)
    for factor, rows in pairs:
        out = np.where(rows, factor, out)
    return out


def roll_same_slot(arr: np.ndarray, per_week: int, window: int, mp: int, how: str) -> np.ndarray:
    """Trailing statistic over the same period of earlier weeks (``window`` weeks)."""
    cube, t = by_week(arr, per_week)
    wk, p, s = cube.shape
    return rolling(cube.reshape(wk, p * s), window, mp, how).reshape(wk * p, s)[:t]
