"""The store's dropout from acquisition cohorts, for the CLV model (``clv``, activity clock).

A customer's dropout has two parts: a baseline hazard ``mu`` per day (the simulator: an
exponential lifetime), and **churn waves** — days on which a share ``q`` of every alive customer
leaves at once (calendar events, not ages). Fitted as an age-based Pareto/NBD dropout, a history
with waves reads as a short lifetime: three 80 % waves in a year and a half gave a mean lifetime of
48 days where the truth's was 329, and the 12-month forecast of the survivors was a fifth of theirs.
The individual purchase histories cannot place the waves (at two purchases a year a customer's
death is known to within months), but acquisition cohorts can:

Per cohort c (customers whose first purchase fell in bin c of ``bin_days``), the repeat purchase
days per customer in the calendar bins after cohorts c and c + 1 both exist are
``g(t) x mean rate x S(age) x (waves since acquisition)``; the ratio of consecutive cohorts over
the same calendar bins cancels the store's activity g(t) and leaves
``d_c = -log(ratio) / bin_days`` = the baseline hazard + the waves between the two cohorts'
acquisition.

* ``mu`` is the lower median of d_c (waves are rare, and they only ever push a step up);
* a step whose excess over ``mu`` is beyond ``z`` times the robust spread of the steps
  (standardized by their Poisson standard errors: late steps rest on few bins) is a wave at the
  boundary between the two bins, q = 1 - exp(-(d_c - mu) bin_days); ``mu`` and the spread are then
  taken again over the steps without waves, and the waves flagged again;
* a wave inside a bin shows in two consecutive steps (the cohort of its bin is partly exposed):
  a step next to a wave step counts too above one spread, so the wave is split over two
  boundaries (located within a bin).

**Small stores** (module constant ``MAX_SURVIVAL_SE``): the steps' Poisson errors count repeat
purchase days as independent, but they come in customers, and a cohort of a few hundred
customers with spread-out purchase rates is far noisier than its count says. Each step's
customer-level standard error (``_customer_se``: the per-customer counts' sample variance, delta
method on the log of each cohort's mean) gives the baseline's standard error (``mu_rel_se`` x mu:
1.2533 x the precision-weighted mean's, the median's under normal steps). What the 12-month
forecast feels is that error over a year, the standard error of the log one-year survival
(se(mu) x 365); above ``MAX_SURVIVAL_SE`` the cohorts do not decide the dropout and the model
fits its own (stationary files of 1.5-3 k customers over 13 months: 0.69-1.05; random worlds
0.08-0.73; the default world 0.10). A relative threshold (se(mu) / mu) was tried first and
dropped: long lifetimes (a small mu) made a precise baseline look imprecise, and random worlds
with waves fell back to a dropout that reads waves as short lives. A per-step customer-level
test for the waves was dropped too (a wave inside a bin is split over two steps, each below it).
The choice and its held-out figures: README "Customers", "Small stores" (session 43).

``Dropout.rows`` prepares, for fixed likelihood rows, the waves each row's death integral crosses
(those after its last purchase and before the data end): the integral is taken per segment
between them and each wave adds a point mass (``clv._pnbd_log_terms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .activity import PurchaseDays

MIN_STEPS = 6  # cohort steps needed for an estimate (fewer: the model fits its own dropout)
MAX_SURVIVAL_SE = 0.75  # the standard error of the baseline's log one-year survival (se(mu) x
# 365 days) above which the model fits its own dropout (chosen on training files: README Customers)


@dataclass
class Dropout:
    """Baseline hazard ``mu`` per day, and waves: positions (day boundaries since the first data
    day, as ``StoreClock``'s) ``wave_pos`` (sorted) and the share lost at each, ``wave_q``."""

    mu: float
    wave_pos: np.ndarray
    wave_q: np.ndarray
    mu_rel_se: float = float("nan")   # customer-level relative standard error of mu (NaN: unknown)

    def log_survival(self, n: int) -> np.ndarray:
        """W[t]: -log of the share of the customers alive before day 0 who survive the waves up
        to day t (t = 0 .. n - 1; a wave at position p hits days >= p)."""
        w = np.zeros(n)
        for p, q in zip(self.wave_pos, self.wave_q, strict=True):
            if 0 <= p < n:
                w[int(p):] -= np.log1p(-q)
        return w

    def rows(self, t0: np.ndarray, tx: np.ndarray, T: np.ndarray) -> WaveRows:
        """The waves each row (first purchase at position t0, last at t0 + t_x, end at t0 + T)
        crosses in (t0 + t_x, t0 + T], as flat segment arrays (row-sorted)."""
        p = np.asarray(self.wave_pos, dtype=float)
        k_lo = np.searchsorted(p, t0 + tx, side="right")
        k_hi = np.searchsorted(p, t0 + T, side="right")
        m = k_hi - k_lo                                 # waves crossed per row
        clog = np.concatenate([[0.0], np.cumsum(np.log1p(-np.asarray(self.wave_q, float)))])
        n_seg = m + 1
        row = np.repeat(np.arange(len(t0)), n_seg)
        j = np.arange(int(n_seg.sum())) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)
        k = k_lo[row] + j                               # the wave that ends segment j (if any)
        last = j == m[row]
        lo = np.where(j == 0, tx[row], p[np.minimum(k - 1, len(p) - 1)] - t0[row]) if len(p) \
            else tx[row]
        hi = np.where(last, T[row], p[np.minimum(k, len(p) - 1)] - t0[row]) if len(p) else T[row]
        # survival factor of segment j: the waves crossed before it
        seg_log = clog[k] - clog[k_lo[row]]
        has = ~last                                     # a wave at the segment's end: point mass
        q = np.asarray(self.wave_q, float)
        wave_log = np.where(has, np.log(np.where(has, q[np.minimum(k, len(q) - 1)], 1.0))
                            if len(q) else 0.0, -np.inf)
        return WaveRows(row=row, start=np.cumsum(n_seg) - n_seg, lo=lo, hi=hi, seg_log=seg_log,
                        wave_log=wave_log + seg_log, alive_log=clog[k_hi] - clog[k_lo])


@dataclass
class WaveRows:
    """Flat segments of fixed rows' death integrals: owner ``row``, ``start`` (first segment of
    each row), bounds ``lo`` / ``hi`` (days since the first purchase), the log survival of the
    waves before the segment (``seg_log``), of a death at the wave closing it (``wave_log``,
    -inf for the last segment) and of every wave crossed (``alive_log``, per row)."""

    row: np.ndarray
    start: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    seg_log: np.ndarray
    wave_log: np.ndarray
    alive_log: np.ndarray


def _customer_se(first_day: np.ndarray, repeat_cust: np.ndarray, cb: np.ndarray,
                 tb: np.ndarray, off: int, bin_days: int, nb: int, acq: np.ndarray,
                 a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Each step's standard error (per day) from the customers themselves: the sample variance of
    the per-customer repeat purchase days of cohorts c (bins >= c + 2) and c + 1 (bins >= c + 2)
    over their customers, by the delta method on the log of each cohort's mean. It holds the
    Poisson noise, the spread of the purchase rates and the chance of who left: a cohort of a
    few hundred customers carries far more noise than its repeat days' Poisson count says."""
    ncust = len(first_day)
    ya = np.bincount(repeat_cust, weights=(tb >= cb + 2).astype(float), minlength=ncust)
    yb = np.bincount(repeat_cust, weights=(tb >= cb + 1).astype(float), minlength=ncust)
    has = first_day >= off
    cc = (first_day[has] - off) // bin_days
    s2a = np.bincount(cc, weights=ya[has] ** 2, minlength=nb)
    s2b = np.bincount(cc, weights=yb[has] ** 2, minlength=nb)

    def rel_var(total: np.ndarray, s2: np.ndarray, k: np.ndarray) -> np.ndarray:
        m = acq[k]
        var = np.maximum(s2[k] - total ** 2 / m, 0.0) / np.maximum(m - 1.0, 1.0)
        return var * m / total ** 2          # var(mean) / mean^2 = var / (m mean^2)

    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(rel_var(a, s2a, c) + rel_var(b, s2b, c + 1)) / bin_days


def cohort_dropout(first_day: np.ndarray, repeat_day: np.ndarray, repeat_first: np.ndarray,
                   n: int, bin_days: int = 28, z: float = 3.0,
                   repeat_cust: np.ndarray | None = None) -> Dropout | None:
    """Estimate the baseline hazard and the waves from acquisition cohorts (module docstring).

    ``first_day``: each customer's first purchase day (0 .. n - 1); ``repeat_day`` and
    ``repeat_first``: each repeat purchase day and its customer's first purchase day. Bins are
    aligned to the data end. None when fewer than ``MIN_STEPS`` cohort steps are measurable.

    ``repeat_cust`` (each repeat day's customer, an index into ``first_day``) gives
    ``mu_rel_se``, how well the baseline is known from the customers the cohorts hold
    (``_customer_se``; ``store_dropout`` falls back to the fitted dropout above
    ``MAX_SURVIVAL_SE``); without it ``mu_rel_se`` is NaN. The waves' rule does not use it."""
    nb = n // bin_days
    if nb < MIN_STEPS + 3:
        return None
    off = n - nb * bin_days
    ok = repeat_first >= off
    cb, tb = (repeat_first[ok] - off) // bin_days, (repeat_day[ok] - off) // bin_days
    table = np.bincount(cb * nb + tb, minlength=nb * nb).reshape(nb, nb).astype(float)
    acq = np.bincount((first_day[first_day >= off] - off) // bin_days, minlength=nb).astype(float)
    # suffix sums over calendar bins: after[c, t] = repeat days of cohort c in bins >= t
    after = np.cumsum(table[:, ::-1], axis=1)[:, ::-1]
    # from the second step: the first cohort bin also holds the initial base's first in-period
    # orders (customers of unknown age, found at a rate-biased moment), not acquisitions
    c = np.arange(1, nb - 2)
    a, b = after[c, c + 2], after[c + 1, c + 2]
    good = (a > 0) & (b > 0) & (acq[c] > 0) & (acq[c + 1] > 0)
    if good.sum() < MIN_STEPS:
        return None
    d = -np.log((a[good] / acq[c][good]) / (b[good] / acq[c + 1][good])) / bin_days
    se = np.sqrt(1.0 / a[good] + 1.0 / b[good]) / bin_days  # Poisson s.e. of each step
    se_c = np.full(len(d), np.nan) if repeat_cust is None else _customer_se(
        first_day, repeat_cust[ok], cb, tb, off, bin_days, nb, acq, a, b, c)[good]
    guard = np.isfinite(se_c) & (se_c > 0)   # steps whose customer-level error is known
    wave = np.zeros(len(d), dtype=bool)
    for _ in range(2):  # the steps' centre and spread, then again over the steps without waves
        calm = ~wave
        # the lower median: steps are only ever pushed up (waves too small or too local to flag)
        mu = float(np.sort(d[calm])[(int(calm.sum()) - 1) // 2])
        if not np.isfinite(mu) or mu <= 0:
            return None
        z_c = (d - mu) / se  # standardized; the spread beyond Poisson (heterogeneity) is robust
        scale = max(1.0, 1.4826 * float(np.median(np.abs(z_c[calm]))))
        wave = z_c > z * scale
    # a wave inside a bin shows in the two steps around it: a neighbour of a wave step counts
    # too if it is above one spread (not used for ``mu``)
    near = np.zeros(len(d), dtype=bool)
    near[1:] |= wave[:-1]
    near[:-1] |= wave[1:]
    wave |= near & (z_c > scale)
    pos = (off + (c[good] + 1) * bin_days)[wave].astype(float)
    q = -np.expm1(-(d[wave] - mu) * bin_days)
    calm_se = se_c[~wave & guard]
    # the median's standard error under normal steps: 1.2533 x the precision-weighted mean's
    rel = (1.2533 / np.sqrt(np.sum(1.0 / calm_se ** 2)) / mu) if len(calm_se) else float("nan")
    return Dropout(mu=mu, wave_pos=pos, wave_q=np.minimum(q, 0.99), mu_rel_se=float(rel))



def store_dropout(days: PurchaseDays) -> tuple[Dropout | None, dict[str, Any] | None]:
    """The CLV model's dropout from a store's purchase days (``activity.purchase_days``, sorted
    by customer): the cohorts' estimate, or (None, the summary's reason) where the standard error
    of its baseline's log one-year survival is above ``MAX_SURVIVAL_SE`` (too few customers a
    cohort: the model fits its own dropout), or (None, that reason) when the cohorts give no
    estimate (under ``MIN_STEPS`` measurable steps, or no positive baseline: the summary's
    dropout was a bare null)."""
    cust = np.cumsum(days.first) - 1
    drop = cohort_dropout(days.first_day[days.first], days.day[~days.first],
                          days.first_day[~days.first], days.n, repeat_cust=cust[~days.first])
    if drop is None:
        return None, {"source": "fitted", "cohorts_refused": (
            f"the acquisition cohorts give no baseline dropout (fewer than {MIN_STEPS} measurable "
            "28-day steps, about 9 months of data, or no loss visible in them); the dropout is "
            "fitted instead")}
    se_year = drop.mu_rel_se * drop.mu * 365.0
    if not se_year > MAX_SURVIVAL_SE:
        return drop, None
    return None, {"source": "fitted", "cohorts_refused": (
        f"the cohorts' baseline dropout is too uncertain: standard error {se_year:.2f} of its "
        f"log one-year survival (above {MAX_SURVIVAL_SE}: too few customers a cohort); the "
        "dropout is fitted instead")}
