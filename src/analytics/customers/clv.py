"""Customer lifetime value: historical, and predictive with Pareto/NBD + Gamma-Gamma (own code).

Purchase model: **Pareto/NBD** (Schmittlein, Morrison & Colombo 1987): while alive a customer buys
as a Poisson process of rate lambda ~ Gamma(r, alpha); their lifetime is exponential with rate
mu ~ Gamma(s, beta). Unlike BG/NBD it lets one-time buyers leave too, so P(alive) ranks the half
of a store that bought once. Spend: **Gamma-Gamma** (Fader, Hardie & Lee 2005) on repeat orders.

Both are fitted by maximum likelihood with ``scipy.optimize`` on the closed-form likelihoods
(Fader & Hardie's note "Deriving the Pareto/NBD model"; the dropout integral by quadrature), in
log parameters, on at most ``fit_customers`` customers (a deterministic every-k-th subsample:
four population parameters do not need 200 k rows) compressed to unique (x, t_x, T) rows. Every
customer is then scored in closed form. Why not a library: ``lifetimes`` is unmaintained and its
fits produced non-finite values on a real Online Retail slice; PyMC-Marketing's CLV models (the
maintained successor) cost ~0.8 GB installed and ~9 s to import on 2 cores, beyond the customer
stage's 4 s budget (figures in the README and the issue-15 note).

Time unit is the day. A customer's ``frequency`` x is the number of *repeat* purchase days,
``recency`` t_x the days from first to last purchase, ``T`` the days from first purchase to the data
end, ``monetary_value`` the mean revenue of the repeat purchase days.

Failures are never silent: a customer whose prediction is not finite keeps their historical value
with ``clv_source = "historical"`` and is counted in the summary (``unscored_customers``); when a
fit fails outright every customer does, and the summary says why.

CLV interval (``clv_low`` / ``clv_high``, ``interval`` level): the posterior of the customer's
*expected* value over the horizon — with probability 1 - P(alive) zero, otherwise the posterior
Gamma(r + x, alpha + T) of lambda (mu at its posterior mean, spend at its Gamma-Gamma mean) —
so it covers the true expected value, not the realized one (which adds Poisson noise). It holds
``interval`` of that posterior: the central interval, or [0, the ``interval`` quantile] where the
atom at zero holds the whole lower tail (the central [0, q(0.95)] held 95 %).

With the activity clock the dropout comes from acquisition cohorts by default
(``customers.clv.dropout: cohorts``, ``dropout.py``): a baseline rate plus churn waves (a share of
every alive customer lost on a day), fixed in the fit, which then estimates (r, alpha) only; a
fitted age-based dropout read a history with waves as short lifetimes and under-forecast the
survivors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from shocklab.errors import first_line

from . import rfm
from .activity import ClockRows, StoreClock, purchase_days, store_clock
from .config import ClvConfig
from .dropout import store_dropout
from .gamma_gamma import fit_gamma_gamma, gg_expected_spend

log = logging.getLogger("shocklab.customers.clv")

# the columns the fitted model fills (NaN, and historical value flagged, where it cannot score)
MODEL_COLUMNS = ("predicted_purchases", "p_alive", "expected_rate_per_year",
                 "expected_order_value", "clv", "clv_low", "clv_high")

DAYS_PER_MONTH = 30.0
FTOL_CLOCK = 1e-7  # the clock fit's relative tolerance (its likelihood is flat along s)
S_CAP = 100.0  # the dropout-rate shape's cap: CV 10 %, a common rate
HALVES_MIN = 20_000  # rows from which scoring runs in two halves on a spare core
SCORE_CHUNK = 8_192  # rows scored at once otherwise (bounds the temporaries' memory)


def summary_data(orders: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Per customer: frequency, recency, T (days), monetary_value; orders from ``valid_orders``."""
    v = rfm.valid_orders(orders)
    c, d = v["cust"].to_numpy(), v["day"].to_numpy()
    codes, ids = rfm.customer_ids(v)
    # purchase days: unique (customer, day); rows are sorted by (day, customer)
    key = c * 1_000_000 + (d - d.min() if len(d) else d)
    ukey, inv = np.unique(key, return_inverse=True)
    day_rev = np.bincount(inv.ravel(), weights=v["net_revenue"].to_numpy())
    uc, ud = ukey // 1_000_000, ukey % 1_000_000        # sorted by customer, then day
    n = int(codes[-1]) + 1 if len(codes) else 0
    n_days = np.bincount(uc, minlength=n)[codes]
    total = np.bincount(uc, weights=day_rev, minlength=n)[codes]
    first_pos = np.searchsorted(uc, codes, side="left")
    last_pos = np.searchsorted(uc, codes, side="right") - 1
    first_rev = day_rev[first_pos]
    freq = (n_days - 1).astype(float)
    monetary = np.where(freq > 0, (total - first_rev) / np.maximum(freq, 1), 0.0)
    first_day = ud[first_pos] + (d.min() if len(d) else 0)
    return pd.DataFrame({
        "frequency": freq,
        "recency": (ud[last_pos] - ud[first_pos]).astype(float),
        "T": (rfm.as_day(end) - first_day).astype(float),
        "monetary_value": monetary,
    }, index=ids)


def spearman(a: pd.Series, b: pd.Series) -> float | None:
    """Rank correlation on the common index (None if fewer than 3 points or a constant side)."""
    a, b = a.align(b, join="inner")
    ok = a.notna() & b.notna()
    if ok.sum() < 3:
        return None
    ra, rb = a[ok].rank(), b[ok].rank()
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


# --- Pareto/NBD ---------------------------------------------------------------------------------

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(12)
_FRAC = 1.0 - (_NODES + 1.0) / 2.0  # 1 - u / u_tx at the nodes, per unit of span
_HALF_WEIGHTS = _WEIGHTS / 2.0


def _pnbd_log_terms(
    p: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray,
    clock: StoreClock | ClockRows | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(log of the "alive at T" term, log of the whole bracket) of the Pareto/NBD likelihood.

    L = G(r+x)/G(r) a^r b^s [ (a+T)^-(r+x) (b+T)^-s + I ],
    I = int_{t_x}^{T} (a+tau)^-(r+x) s (b+tau)^-(s+1) dtau
    (death at tau after the last purchase). The closed form of I needs ``hyp2f1`` near z = 1,
    ~8 us a call and non-finite for large s; instead I is integrated by 12-point Gauss-Legendre
    after the substitution u = (a+tau)^-(r+x-1), which makes the steep lambda factor uniform and
    leaves the smooth dropout factor to the quadrature (log error < 4e-4 against ``hyp2f1``,
    P(alive) within 4e-6 on the default world's rows). P(alive) = exp(first - second).

    With a ``clock`` (``StoreClock``) the purchase rate is lambda g(t): the lambda factors read
    the store's activity A since the first purchase instead of days, (a + A(tau))^-(r+x), while
    the dropout stays in days; the substitution runs in activity (dtau = dA / g). With the
    clock's dropout waves (``dropout.Dropout``: a share q of the alive lost on a day) the alive
    term is multiplied by the survival of the waves in (t_x, T], and I is the sum over the
    segments between them (each times the survival of the waves before it) plus a point mass
    per wave (q x the survival before it x the integrand's non-density factors there).
    """
    r, a, s, b = p
    rows = None
    if clock is None:
        ax, aT = tx, T
    else:
        rows = clock if isinstance(clock, ClockRows) else clock.rows(tx, T)
        ax, aT = rows.ax, rows.aT
    alive = -(r + x) * np.log(a + aT) - s * np.log(b + T)
    if rows is None or rows.waves is None:
        return alive, np.logaddexp(alive, _log_integral(r, a, s, b, x, ax, aT, tx < T, rows))
    w, seg = rows.waves, rows.segments
    xs = x[w.row]
    with np.errstate(divide="ignore"):
        part = np.logaddexp(
            _log_integral(r, a, s, b, xs, seg.ax, seg.aT, w.lo < w.hi, seg) + w.seg_log,
            w.wave_log - (r + xs) * np.log(a + seg.aT) - s * np.log(b + w.hi))
    alive = alive + w.alive_log
    return alive, np.logaddexp(alive, np.logaddexp.reduceat(part, w.start))


def _log_integral(
    r: float, a: float, s: float, b: float, x: np.ndarray, ax: np.ndarray, aT: np.ndarray,
    nonempty: np.ndarray, rows: ClockRows | None,
) -> np.ndarray:
    """log of int (a + A)^-(r+x) s (b + tau)^-(s+1) dtau between activities ax and aT since the
    first purchase (days without a clock), -inf where ``nonempty`` is False."""
    c = r + x - 1.0
    c = np.where(np.abs(c) < 1e-6, 1e-6, c)
    hi_u = -c * np.log(a + ax)                       # log u at t_x
    span = -np.expm1(-c * np.log((a + aT) / (a + ax)))  # (u_tx - u_T) / u_tx (< 0 when c < 0)
    frac = 1.0 - span[:, None] * _FRAC[None, :]     # u / u_tx at the nodes
    # the fit evaluates this ~80 times on every node of every row: the (rows x nodes) arithmetic
    # runs in place on one buffer (same operations on the same values: the same floats)
    with np.errstate(all="ignore"):
        t = np.log(frac, out=frac)
        t += hi_u[:, None]
        t /= -c[:, None]
        np.exp(t, out=t)
        t -= a                                       # tau
        if rows is None:
            t += b
            lphi = np.log(t, out=t)
            lphi *= -(s + 1.0)
        else:  # tau is activity here: back to days, and the Jacobian 1 / g
            lphi, log_g = rows.days_and_rate(t, log_rate=True)
            lphi += b
            np.log(lphi, out=lphi)
            lphi *= -(s + 1.0)
            lphi -= log_g
        m = lphi.max(axis=1)
        lphi -= m[:, None]
        np.exp(lphi, out=lphi)
        lphi *= _HALF_WEIGHTS
        lsum = m + np.log(np.sum(lphi, axis=1))
        return np.where(
            nonempty, np.log(s) + lsum + hi_u + np.log(np.abs(span)) - np.log(np.abs(c)), -np.inf
        )


def _pnbd_nll(
    theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray,
    clock: ClockRows | None = None, dropout_rate: float | None = None,
) -> float:
    if dropout_rate is None:
        r, a, s, mu = np.exp(theta)
    else:  # the dropout is given (a common rate): only the purchase rates are fitted
        (r, a), s, mu = np.exp(theta), S_CAP, dropout_rate
    b = s / mu
    _, bracket = _pnbd_log_terms(np.array([r, a, s, b]), x, tx, T, clock)
    ll = special.gammaln(r + x) - special.gammaln(r) + r * np.log(a) + s * np.log(b) + bracket
    val = -float(np.sum(w * ll) / np.sum(w))
    return val if np.isfinite(val) else 1e10


def fit_pareto_nbd(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray | None = None,
    clock: StoreClock | None = None, start_params: dict[str, float] | None = None,
    ftol: float = 1e-9, dropout_rate: float | None = None,
) -> dict[str, float]:
    """MLE of (r, alpha, s, beta) on (possibly weighted, compressed) rows; raises if it fails.

    Optimized over log(r, alpha, s, s/beta): s/beta is the mean dropout rate, so a store whose
    customers all leave at about the same rate (s -> infinity, the simulator's case) is a flat
    direction in s rather than a ridge in (s, beta). s is capped at 100 (dropout-rate CV 10 %:
    indistinguishable from a common rate). With ``dropout_rate`` (per day, e.g. the clock's
    cohort estimate, ``dropout.cohort_dropout``) s = 100 and s / beta = that rate are fixed and
    only (r, alpha) are fitted."""
    w = np.ones(len(x)) if w is None else w
    # start: the NBD rate from the mean repeat rate, a dropout rate of one per mean age
    rate = max(float(np.sum(w * x) / max(np.sum(w * T), 1.0)), 1e-4)
    mean_t = max(float(np.average(T, weights=w)), 1.0)
    start = np.log([1.0, 1.0 / rate, 1.0, 1.0 / mean_t])
    bounds = [(np.log(1e-3), np.log(1e3)), (np.log(1e-3), np.log(1e6)),
              (np.log(1e-2), np.log(S_CAP)), (np.log(1e-7), np.log(1.0))]
    if start_params is not None:  # e.g. the calendar fit, for the activity-clock fit
        sp = start_params
        start = np.log([sp["r"], sp["alpha"], sp["s"], sp["s"] / sp["beta"]])
        if sp["s"] >= 0.99 * S_CAP:  # a common dropout rate (s at its cap): kept, not searched
            bounds[2] = (np.log(S_CAP), np.log(S_CAP))
            start[2] = np.log(S_CAP)
    rows = None if clock is None else clock.rows(tx, T)
    if dropout_rate is not None:
        start, bounds = start[:2], bounds[:2]
    res = optimize.minimize(_pnbd_nll, start, args=(x, tx, T, w, rows, dropout_rate),
                            method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 200, "ftol": ftol})
    if not np.isfinite(res.fun) or res.fun >= 1e10:
        raise ValueError(f"Pareto/NBD fit did not converge ({res.message})")
    if dropout_rate is None:
        r, a, s, mu = map(float, np.exp(res.x))
    else:
        (r, a), s, mu = map(float, np.exp(res.x)), S_CAP, float(dropout_rate)
    return {"r": r, "alpha": a, "s": s, "beta": s / mu, "evaluations": int(res.nfev)}


def pnbd_p_alive(p: dict[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                 clock: StoreClock | None = None) -> np.ndarray:
    q = np.array([p["r"], p["alpha"], p["s"], p["beta"]])
    alive, bracket = _pnbd_log_terms(q, x, tx, T, clock)
    return np.exp(alive - bracket)


def pnbd_expected_rate(p: dict[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                       clock: StoreClock | None = None) -> np.ndarray:
    """Posterior mean purchase rate while alive, E[lambda | x, t_x, T] (per day), exact.

    Given death at tau (t_x < tau <= T, or alive at T: tau = T) lambda is Gamma(r + x, alpha + tau),
    mean (r + x) / (alpha + tau); weighting by the posterior of tau multiplies each term of the
    likelihood bracket by (r + x) / (alpha + tau), which is the bracket of x + 1 times (r + x):
    E[lambda] = (r + x) exp(bracket(x + 1) - bracket(x)). (The earlier approximation put every
    dead customer's death at t_x, overstating the rate of those who stopped buying.)"""
    return pnbd_alive_and_rate(p, x, tx, T, clock)[1]


def pnbd_alive_and_rate(p: dict[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                        clock: StoreClock | ClockRows | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(``pnbd_p_alive``, ``pnbd_expected_rate``) with one bracket of x and one of x + 1 (and one
    set of clock rows) instead of three brackets."""
    q = np.array([p["r"], p["alpha"], p["s"], p["beta"]])
    if isinstance(clock, StoreClock):
        clock = clock.rows(tx, T)
    alive, b0 = _pnbd_log_terms(q, x, tx, T, clock)
    _, b1 = _pnbd_log_terms(q, x + 1.0, tx, T, clock)
    return np.exp(alive - b0), (p["r"] + x) * np.exp(b1 - b0)


def _alive_and_rate_halves(p: dict[str, float], x: np.ndarray, tx: np.ndarray, T: np.ndarray,
                           clock: StoreClock | None) -> tuple[np.ndarray, np.ndarray]:
    """``pnbd_alive_and_rate`` of every row; with a spare core (``schedule.spare_core``: in
    order, two usable cores) the two halves of the rows on two threads. Rows are independent
    (each its own clock terms, wave segments and quadrature) and the work is numpy on arrays of
    ~1 M nodes a half (each operation milliseconds without the GIL), so the halves run side by
    side; concatenated they are the same floats."""
    from ..schedule import spare_core

    if len(x) < HALVES_MIN or not spare_core():
        if len(x) <= SCORE_CHUNK:
            return pnbd_alive_and_rate(p, x, tx, T, clock)
        # in blocks of rows: the (rows x nodes) temporaries of one block at a time (peak memory
        # ~100 MB lower on the default world); concatenated they are the same floats
        parts = [pnbd_alive_and_rate(p, x[i:i + SCORE_CHUNK], tx[i:i + SCORE_CHUNK],
                                     T[i:i + SCORE_CHUNK], clock)
                 for i in range(0, len(x), SCORE_CHUNK)]
        return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    from concurrent.futures import ThreadPoolExecutor

    h = len(x) // 2
    halves = [slice(0, h), slice(h, len(x))]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="clv-scoring") as pool:
        parts = list(pool.map(lambda sl: pnbd_alive_and_rate(p, x[sl], tx[sl], T[sl], clock),
                              halves))
    return (np.concatenate([parts[0][0], parts[1][0]]),
            np.concatenate([parts[0][1], parts[1][1]]))


def pnbd_expected_purchases(
    p: dict[str, float], t: float | np.ndarray, x: np.ndarray, T: np.ndarray, p_alive: np.ndarray,
    clock: StoreClock | None = None,
) -> np.ndarray:
    """E[purchases in (T, T + t]] given the history: P(alive) * E[lambda] * E[alive time in t]
    (with a clock: E[lambda | alive] = (r + x) / (alpha + A(T)), times the store's current
    activity ``clock.g_end`` per day)."""
    r, a, s, b = p["r"], p["alpha"], p["s"], p["beta"]
    scale = 1.0
    if clock is not None:
        scale = clock.g_end
        a = a + clock.delta(T, T) - T  # so that a + T below is alpha + A(T)
    ratio = np.log((b + T) / (b + T + t))  # < 0
    # (b+T)/(s-1) * (1 - ((b+T)/(b+T+t))^(s-1)), continuous through s = 1
    sm1 = s - 1.0
    life = (b + T) * (-np.expm1(sm1 * ratio) / sm1 if abs(sm1) > 1e-9 else -ratio)
    return p_alive * (r + x) / (a + T) * life * scale


# --- Gamma-Gamma: ``gamma_gamma.py`` (fit_gamma_gamma, gg_expected_spend) ----------------------

# --- the stage ----------------------------------------------------------------------------------

@dataclass
class ClvResult:
    table: pd.DataFrame                         # per customer_id
    summary: dict[str, Any] = field(default_factory=dict)


def _subsample(n: int, limit: int) -> np.ndarray:
    """Every k-th row (deterministic, spread over the sorted customer ids)."""
    step = max(1, -(-n // limit))
    return np.arange(0, n, step)


def _unique_rows(
    x: np.ndarray, tx: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (x, t_x, T) rows (whole days), the inverse map and the counts, via one int64 key."""
    xi, ti, Ti = (np.asarray(a, dtype=np.int64) for a in (x, tx, T))
    if len(xi) and max(int(ti.max()), int(Ti.max())) < 1 << 14 and int(xi.max()) < 1 << 30:
        key = (xi << 28) | (ti << 14) | Ti
        ukey, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
        u = np.column_stack(
            [ukey >> 28, (ukey >> 14) & ((1 << 14) - 1), ukey & ((1 << 14) - 1)]
        ).astype(float)
    else:  # a longer history than 44 years: the general (slower) path
        u, inv, counts = np.unique(
            np.column_stack([x, tx, T]), axis=0, return_inverse=True, return_counts=True
        )
    return u, inv.ravel(), counts.astype(float)


def run_clv(orders: pd.DataFrame, end: pd.Timestamp, cfg: ClvConfig,
            truth_customers: pd.DataFrame | None = None) -> ClvResult:
    """Historical value for everyone; predictive CLV where the models can score (never raises on
    a failed fit: those customers keep historical value, flagged, and the summary says why).

    ``truth_customers`` is accepted for backward compatibility and ignored: scoring against the
    truth lives in ``truth_scores`` (models never read the truth)."""
    orders = rfm.valid_orders(orders)
    keep = int(np.searchsorted(orders["day"].to_numpy(), rfm.as_day(end), side="right"))
    orders = orders if keep == len(orders) else orders.iloc[:keep]  # nothing after ``end``
    s = summary_data(orders, end)
    pc = rfm.per_customer(orders)
    # both come from rfm.customer_ids(orders): the same customers in the same (sorted id) order,
    # so the columns are put side by side without a join on the string ids
    rev, n_orders = pc["revenue"].to_numpy(), pc["orders"].to_numpy()
    table = pd.DataFrame({"historical_value": rev, "orders": n_orders,
                          "avg_order_value": rev / n_orders,
                          **{c: s[c].to_numpy() for c in s.columns}}, index=pc.index)
    summary: dict[str, Any] = {"model": "pareto_nbd+gamma_gamma", "horizon_days": cfg.horizon_days,
                               "interval": cfg.interval, "customers": int(len(table)),
                               "historical_value_total": float(table["historical_value"].sum())}
    try:
        table, fitted = _predictive(table, cfg, orders, end)
        summary.update(fitted, status="ok")
    except Exception as exc:  # a degenerate data set must not stop the run
        reason = f"{type(exc).__name__}: {first_line(exc)}"
        log.warning("CLV: model fit failed (%s); every customer keeps historical value, flagged",
                    reason)
        summary["status"] = f"fallback: historical value for every customer ({reason})"
        for c in MODEL_COLUMNS:
            table[c] = np.nan
    bad = ~np.isfinite(table[list(MODEL_COLUMNS)].to_numpy(dtype=float)).all(axis=1)
    hist = table["historical_value"]
    table["clv_source"] = np.where(bad, "historical", "model")
    table["clv"] = table["clv"].where(~bad, hist)
    table["clv_low"] = table["clv_low"].where(~bad, hist)
    table["clv_high"] = table["clv_high"].where(~bad, hist)
    summary["scored_customers"] = int((~bad).sum())
    summary["unscored_customers"] = int(bad.sum())
    if bad.any() and not bad.all():
        log.warning("CLV: %d customers could not be scored by the model; they keep historical "
                    "value, flagged clv_source=historical", int(bad.sum()))
    table["value_pct"] = table["clv"].rank(pct=True, method="average")
    summary["predicted_value_total"] = float(table.loc[~bad, "clv"].sum()) if (~bad).any() else None
    summary["history_days"] = hist = int(table["T"].max()) + 1 if len(table) else 0
    if hist < cfg.horizon_days and (~bad).any():   # a forecast past the data: say so
        h = cfg.horizon_days
        summary["note"] = (f"the {h}-day horizon is {h / hist:.1f}x the {hist} days of order "
                           "history: read predicted values as a ranking, not a forecast")
    return ClvResult(table=table, summary=summary)


def _predictive(table: pd.DataFrame, cfg: ClvConfig, orders: pd.DataFrame | None = None,
                end: pd.Timestamp | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    x, tx, T = (table[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    sub = _subsample(len(table), cfg.fit_customers)
    cu, _, w = _unique_rows(x[sub], tx[sub], T[sub])
    clock = drop = refused = None
    if cfg.activity_clock and orders is not None and end is not None:
        days = purchase_days(orders, end)
        if cfg.dropout == "cohorts":   # None, or refused (too few customers): fitted instead
            drop, refused = store_dropout(days)
        if drop is not None:  # the dropout from cohorts: the clock's survival, fixed in the fit
            base = {"r": 1.0, "alpha": 1.0, "s": S_CAP, "beta": S_CAP / drop.mu}
            clock = store_clock(orders, end, base, days=days, dropout=drop)
            pn = fit_pareto_nbd(cu[:, 0], cu[:, 1], cu[:, 2], w, clock, ftol=FTOL_CLOCK,
                                dropout_rate=drop.mu)
        else:
            # the clock's alive-rate mass needs a calendar fit: a fifth of the customers suffice
            few = _subsample(len(table), max(100, cfg.fit_customers // 5))
            cf, _, wf = _unique_rows(x[few], tx[few], T[few])
            pn0 = fit_pareto_nbd(cf[:, 0], cf[:, 1], cf[:, 2], wf)
            clock = store_clock(orders, end, pn0, days=days)
            pn = fit_pareto_nbd(cu[:, 0], cu[:, 1], cu[:, 2], w, clock, start_params=pn0,
                                ftol=FTOL_CLOCK)
    else:
        pn = fit_pareto_nbd(cu[:, 0], cu[:, 1], cu[:, 2], w)
    out = table.copy()
    # everything but spend depends on (x, t_x, T) only: computed once per unique row (~40 % of the
    # customers on the default world) and mapped back
    u, inv, _ = _unique_rows(x, tx, T)
    ux, utx, uT = u[:, 0], u[:, 1], u[:, 2]
    pa, rate = _alive_and_rate_halves(pn, ux, utx, uT, clock)
    H = float(cfg.horizon_days)
    r, a = pn["r"], pn["alpha"]
    out["p_alive"] = pa[inv]
    out["predicted_purchases"] = pnbd_expected_purchases(pn, H, ux, uT, pa, clock)[inv]
    out["expected_rate_per_year"] = (365.25 * rate)[inv]

    m = out["monetary_value"].to_numpy(dtype=float)
    rep = (x > 0) & (m > 0)
    if rep.sum() < 10:
        raise ValueError(
            f"only {int(rep.sum())} repeat customers with positive value for Gamma-Gamma"
        )
    rsub = np.flatnonzero(rep)[_subsample(int(rep.sum()), cfg.fit_customers)]
    gg = fit_gamma_gamma(x[rsub], m[rsub])
    spend = gg_expected_spend(gg, x, m)
    out["expected_order_value"] = spend

    # CLV: monthly increments of expected purchases, discounted at the end of each month
    months = max(1, round(H / DAYS_PER_MONTH))
    edges = np.arange(months + 1) * (H / months)
    cum = pnbd_expected_purchases(pn, edges[None, :], ux[:, None], uT[:, None], pa[:, None],
                                  clock)  # rows x month edges (0 at the first)
    disc = (1.0 + cfg.discount_rate_monthly) ** -np.arange(1, months + 1)
    disc_purchases = (np.diff(cum, axis=1) @ disc)
    out["clv"] = spend * disc_purchases[inv]

    # interval of the expected value: 0 with prob 1 - P(alive), else lambda ~ Gamma(r+x, a+T);
    # the discounting and spend of the point estimate per expected purchase
    lo_q, hi_q = (1 - cfg.interval) / 2, (1 + cfg.interval) / 2
    mu = pn["s"] / (pn["beta"] + uT)                 # posterior mean dropout rate if alive
    life = -np.expm1(-mu * H) / mu                   # expected alive days within the horizon
    pp = cum[:, -1]
    per_purchase = np.divide(disc_purchases, pp, out=np.ones_like(pp), where=pp > 0)

    # lambda's posterior Gamma(r + x, alpha + exposure) per day at the forecast's activity
    expo, g_now = (uT, 1.0) if clock is None else (clock.delta(uT, uT), clock.g_end)

    def q(level: float | np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            uu = (level - (1 - pa)) / np.where(pa > 0, pa, np.nan)
            lam = special.gammaincinv(r + ux, np.clip(uu, 0, 1)) / (a + expo) * g_now
        return np.where(uu <= 0, 0.0, lam * life * per_purchase)[inv] * spend

    # where the value's atom at 0 (1 - P(alive)) holds the whole lower tail, the central
    # interval [0, q(hi_q)] would hold (1 + interval) / 2 of the posterior: [0, q(interval)]
    # holds ``interval``, like the central one elsewhere
    out["clv_low"] = q(lo_q)
    out["clv_high"] = q(np.where(1 - pa >= lo_q, cfg.interval, hi_q))
    fitted = {
        "purchase_model_params": pn,
        "activity_clock": None if clock is None else {
            "g_end": round(clock.g_end, 4), "g_first_quarter": round(float(
                clock.g[: max(1, clock.n // 4)].mean()), 4)},
        "dropout": (refused or {"source": "fitted"}) if drop is None else {   # never a bare null
            "source": "cohorts", "mean_lifetime_days": round(1.0 / drop.mu, 1),
            "waves": [{"day": (pd.Timestamp(end) - pd.Timedelta(days=int(clock.n - p))).date()
                       .isoformat(), "share_lost": round(float(q), 3)}
                      for p, q in zip(drop.wave_pos, drop.wave_q, strict=True)]},
        "gamma_gamma_params": gg,
        "repeat_customers": int(rep.sum()),
        "fit_rows": {
            "pareto_nbd_customers": int(len(sub)),
            "pareto_nbd_unique_rows": int(len(w)),
            "scored_unique_rows": int(len(u)),
            "gamma_gamma_customers": int(len(rsub)),
        },
    }
    return out, fitted
