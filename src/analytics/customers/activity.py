"""The store's activity clock for the CLV model (``clv``): purchase activity per day.

In a store whose repeat volume follows traffic while its customer base grows, a customer's
purchase intensity is not constant: the same repeat volume is shared by more customers (the
default simulated world: 1.9x the period average in the first quarter, 0.6x in the last). The
CLV model then reads time as activity, g(t) per day (``store_clock``), in its purchase-rate
factors; dropout stays in days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import rfm
from .dropout import Dropout, WaveRows

INVERSE_GRID = 1 << 14  # points of the activity clock's inverse table


@dataclass
class StoreClock:
    """The store's purchase activity per day, g (mean 1 over the history, exposure-weighted): a
    customer of rate lambda buys lambda g(t) a day while alive. Positions are days since the
    first data day (the data end is ``len(g)``); a customer with age T first bought at len(g) - T.
    ``g_end``: the activity of the last ``end_days`` days (the level the forecast extrapolates).
    """

    g: np.ndarray
    g_end: float
    dropout: Dropout | None = None  # waves the likelihood's dropout integral crosses

    def __post_init__(self) -> None:
        self.n = len(self.g)
        self.A = np.concatenate([[0.0], np.cumsum(self.g)])  # activity at day boundaries
        self.pos = np.arange(self.n + 1, dtype=float)
        # the inverse (activity -> position) on a uniform activity grid: the likelihood's
        # quadrature maps ~50 k nodes an evaluation, an index lookup instead of a binary search
        self.step = self.A[-1] / INVERSE_GRID
        self.inverse = np.interp(np.arange(INVERSE_GRID + 1) * self.step, self.A, self.pos)
        with np.errstate(divide="ignore"):
            self.log_g = np.log(self.g)  # the quadrature reads log g at its nodes

    def _at(self, y: np.ndarray) -> np.ndarray:
        return np.interp(y, self.pos, self.A)

    def delta(self, T: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Activity between a customer's first purchase (age T) and t days after it."""
        t0 = self.n - T
        return self._at(t0 + t) - self._at(t0)

    def rows(self, tx: np.ndarray, T: np.ndarray) -> ClockRows:
        """The parameter-free part of the likelihood's clock terms for rows (t_x, T), with the
        segments between the dropout's waves where it has any."""
        tx, T = np.asarray(tx, dtype=float), np.asarray(T, dtype=float)
        t0 = self.n - T
        base = self._at(t0)
        out = ClockRows(self, t0, base, self._at(t0 + tx) - base, self._at(t0 + T) - base)
        d = self.dropout
        if d is not None and len(d.wave_pos):
            w = d.rows(t0, tx, T)
            seg = ClockRows(self, t0[w.row], base[w.row],
                            self._at(t0[w.row] + w.lo) - base[w.row],
                            self._at(t0[w.row] + w.hi) - base[w.row])
            out.waves, out.segments = w, seg
        return out


@dataclass
class ClockRows:
    """``StoreClock`` terms of fixed rows: first-purchase position t0, activity there (base),
    activity from the first purchase to t_x (ax) and to T (aT)."""

    clock: StoreClock
    t0: np.ndarray
    base: np.ndarray
    ax: np.ndarray
    aT: np.ndarray
    # with dropout waves: the death integral's segments (``WaveRows``) and their clock terms
    # (one row per segment: ax / aT = activity at the segment's bounds)
    waves: WaveRows | None = None
    segments: ClockRows | None = None

    def days_and_rate(self, v: np.ndarray, log_rate: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(days after the first purchase, activity per day there — its log with ``log_rate``)
        where activity v (rows x nodes) has accumulated since the first purchase.

        The likelihood's quadrature calls this once per evaluation on every node of every row:
        the arithmetic runs in place on one buffer (the same operations on the same values as
        ``clip``, ``lo + (u - i) * (hi - lo)``: the same floats, a third of the memory traffic)."""
        c = self.clock
        u = self.base[:, None] + v
        u /= c.step
        np.maximum(u, 0.0, out=u)              # np.clip(u, 0, INVERSE_GRID)
        np.minimum(u, INVERSE_GRID, out=u)
        i = u.astype(np.int64)
        np.minimum(i, INVERSE_GRID - 1, out=i)
        lo = c.inverse.take(i)
        i += 1
        hi = c.inverse.take(i)
        i -= 1
        hi -= lo
        u -= i
        u *= hi
        u += lo                                # y: the position (days since the data start)
        idx = u.astype(np.int64)
        np.maximum(idx, 0, out=idx)
        np.minimum(idx, c.n - 1, out=idx)
        u -= self.t0[:, None]
        return u, (c.log_g if log_rate else c.g).take(idx)


@dataclass
class PurchaseDays:
    """Distinct (customer, day) purchases up to the data end, sorted by customer: ``n`` days
    since the first data day, each purchase day ``day``, whether it is its customer's ``first``,
    and its customer's first purchase day ``first_day``."""

    n: int
    day: np.ndarray
    first: np.ndarray
    first_day: np.ndarray


def purchase_days(orders: pd.DataFrame, end: pd.Timestamp) -> PurchaseDays:
    v = rfm.valid_orders(orders)
    end_day = rfm.as_day(end)
    v = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), end_day, side="right"))]
    d, c = v["day"].to_numpy(), v["cust"].to_numpy()
    d0 = int(d.min())
    n = end_day - d0 + 1
    key = rfm.distinct(c * n + (d - d0))                 # purchase days, sorted by customer
    kc, kd = key // n, key % n
    first = np.ones(len(key), dtype=bool)
    first[1:] = kc[1:] != kc[:-1]
    starts = np.flatnonzero(first)
    first_day = np.repeat(kd[starts], np.diff(np.r_[starts, len(key)]))
    return PurchaseDays(n=n, day=kd, first=first, first_day=first_day)


def store_clock(orders: pd.DataFrame, end: pd.Timestamp, params: dict[str, float],
                smooth_days: int = 28, end_days: int = 90, days: PurchaseDays | None = None,
                dropout: Dropout | None = None) -> StoreClock:
    """Estimate the store's activity g(t) from repeat purchase days.

    Repeat purchase days on day t are ~ g(t) times the purchase-rate mass of the customers seen
    by t and still alive; that mass is estimated from the calendar Pareto/NBD fit (``params``):
    mean rate r / alpha times the survival ((beta / (beta + age))^s) of every customer acquired
    (first purchase) before t — a convolution of daily acquisitions with the survival curve.
    Ratio of ``smooth_days`` centred sums, normalized to a mean of 1; ``g_end`` the same ratio
    over the last ``end_days`` days. In a store whose repeat volume follows traffic while the
    base grows, g falls: a late customer's few orders are not a low rate.

    With a ``dropout`` (``cohort_dropout``) its waves thin the mass too: the customers alive at a
    wave lose its share q, so the survivors' activity after it rises (the repeat volume follows
    traffic, not the base)."""
    p = days if days is not None else purchase_days(orders, end)
    n, kd, first = p.n, p.day, p.first
    repeat = np.bincount(kd[~first], minlength=n).astype(float)[:n]
    acq = np.bincount(kd[first], minlength=n).astype(float)[:n]
    age = np.arange(n, dtype=float)
    surv = (params["beta"] / (params["beta"] + age)) ** params["s"]
    surv[0] = 0.0                                         # the first purchase day is not a repeat
    if dropout is not None and len(dropout.wave_pos):
        w = dropout.log_survival(n)   # mass(t) = e^-W(t) sum_c acq(c) e^W(c) S(t - c)
        conv = np.exp(-w) * np.convolve(acq * np.exp(w), surv)[:n]
    else:
        conv = np.convolve(acq, surv)[:n]
    mass = conv * params["r"] / params["alpha"]
    k = np.ones(smooth_days)
    rs = np.convolve(repeat, k, mode="same")
    ms = np.convolve(mass, k, mode="same")
    total = repeat.sum() / max(mass.sum(), 1e-12)
    g = np.where(ms > 1e-9, rs / np.maximum(ms, 1e-12), total) / max(total, 1e-12)
    g = np.clip(g, 0.02, None)
    tail = slice(max(0, n - end_days), n)
    g_end = float(repeat[tail].sum() / max(mass[tail].sum(), 1e-12) / max(total, 1e-12))
    return StoreClock(g=g, g_end=max(g_end, 0.02), dropout=dropout)
