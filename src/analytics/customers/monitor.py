"""At-Risk monitoring: daily segment snapshots, abnormal-growth alerts with severity tiers,
cooldown per (segment, severity), de-duplication of an ongoing incident, optional escalation.

Two modes over the same logic:

* ``replay(orders, …)`` — every day of the data's period, as if the monitor had run each morning;
* ``daily(orders, as_of, …)`` — one day (``run_analysis.py --as-of DATE``).

The watched quantity is the segment's *share* of a configured population (``population``: by
default repeat buyers not yet gone for good, a denominator that does not drift with acquisition;
every customer seen so far with ``min_orders: 1``). Its relative growth over ``window_days`` is
judged against the share's day-to-day log changes over the trailing ``baseline_days`` (current day
excluded: causal): their median is the normal drift, their MAD scaled by sqrt(window) the normal
spread, a robust z. A day is flagged when the growth beyond the normal drift reaches a tier's
``min_growth`` *and* z >= ``min_z``; severity is the highest tier reached. Flagged days
with gaps of at most ``incident_gap_days`` days observed as not flagged form one incident (a day
a daily run skipped is judged from the stored snapshots; one without a snapshot is not quiet),
which alerts once, again only if
its severity rises (or, with ``escalate_after_days``, once more one tier up if it lasts); a
(segment, severity) alerted within ``cooldown_days`` is not alerted again. All state lives in
SQLite (``store``), so a restart or a re-run of a replay does not resend.

Size (~920 lines, one module on purpose): the closed-form daily segment counts sit beside the
loop reference they are tested against, and the monitor's state machine shares their types.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shocklab.errors import InputError

from ..alerts import Dispatcher
from .config import MonitorConfig, PopulationConfig, RfmConfig, ShortfallConfig
from .rfm import (
    activity_clock,
    as_day,
    int_reference,
    int_scores_against,
    new_purchase_day,
    overdue_ratio,
    rank_score,
    scores_against,
    valid_orders,
)
from .segments import SegmentLookup
from .store import MonitorStore

MIN_SCALE = (
    0.005  # floor of the growth spread (0.5 % relative growth): a flat history cannot give z = inf
)

SUGGESTION = {
    "At Risk": "launch the win-back offer for this segment and review recent experience issues",
    "Lapsing": "repeat buyers are missing their usual reorder: check recent experience issues "
    "(delivery, prices, stock) and send a reminder before they reach At Risk",
}


def daily_segment_counts(
    orders: pd.DataFrame,
    dates: pd.DatetimeIndex,
    rfm_cfg: RfmConfig,
    window_days: int = 14,
    population: PopulationConfig | None = None,
) -> pd.DataFrame:
    """Customers per segment on each of ``dates`` (consecutive days), from RFM as of that day.

    Same rows as ``_daily_segment_counts_reference`` (the per-day re-segmentation, kept as the
    reference and for the configurations the closed form does not cover: the activity clock,
    shrunk gaps, monetary rules, non-consecutive dates). The default path (calendar clock, own
    gaps, R and F rules) computes every day at once, without a loop over days: see
    ``_counts_closed_form``.
    """
    v = valid_orders(orders)
    dates = pd.DatetimeIndex(dates).normalize().sort_values()
    oc = rfm_cfg.overdue
    consecutive = bool(np.all((dates[1:] - dates[:-1]) == pd.Timedelta(days=1)))
    if (oc.clock != "calendar" or oc.gap_prior_strength != 0 or rfm_cfg.uses_monetary
            or not consecutive or len(dates) == 0 or len(v) == 0):
        return _daily_segment_counts_reference(v, dates, rfm_cfg, window_days, population)
    d0 = as_day(dates[0])
    v = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), as_day(dates[-1]), side="right"))]
    now, base = _counts_closed_form(v["cust"].to_numpy(), v["day"].to_numpy() - d0, len(dates),
                                    window_days, SegmentLookup(rfm_cfg), population)
    return _long_rows(dates, rfm_cfg.names, now, base)


def _long_rows(
    dates: pd.DatetimeIndex, names: list[str], now: np.ndarray, base: np.ndarray
) -> pd.DataFrame:
    k = len(names)
    return pd.DataFrame(
        {
            "date": np.repeat(dates.to_numpy(), k),
            "segment": np.tile(np.array(names, dtype=object), len(dates)),
            "customers": now.ravel().astype(np.int64),
            "total": np.repeat(now.sum(axis=1), k).astype(np.int64),
            "base_customers": base.ravel(),
            "base_total": np.repeat(base.sum(axis=1), k),
        }
    )


def _first_crossing(gap: np.ndarray, b: float, strict: bool, r_max: int) -> np.ndarray:
    """Per customer, the least integer recency r >= 0 with r / gap >= b (> b if ``strict``),
    evaluated with the same float division as ``overdue_ratio``; capped at ``r_max``."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.clip(np.floor(np.minimum(b * gap, r_max)) - 2, 0, r_max).astype(np.int64)
    for _ in range(6):  # the float estimate is within a unit or two of the exact crossing
        ov = r.astype(float) / gap
        r += ((ov <= b) if strict else (ov < b)) & (r < r_max)
    return r


def _counts_closed_form(
    codes: np.ndarray,
    day: np.ndarray,
    n: int,
    w: int,
    lookup: SegmentLookup,
    population: PopulationConfig | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(now, base) counts per day and segment (n x segments), every day at once.

    Between two order days a customer's last order day s, order count f and mean gap are fixed
    and the recency r = t - s grows by one a day, so the overdue ratio r / gap crosses each rule
    boundary (and the population's ``max_overdue``) on a day known in closed form
    (``_first_crossing``). Each customer's history is cut into pieces of constant (f, overdue
    region, in the population), written as +1/-1 into (day, last order day) difference arrays and
    summed over days: the active customers per (day, last order day) for each (F-score class,
    region). The day's R scores are a function of the last order day (the rank among every
    customer seen, from the same kind of table over all customers) and its F scores a function
    of f, so each (day, last order day) cell maps to one segment: one ``bincount`` per class.
    The base count (the population a window earlier, scored with the day's breakpoints) reads
    the same tables shifted by ``w`` days.
    """
    k = len(lookup.cfg.names)
    now, base = np.zeros((n, k)), np.full((n, k), np.nan)
    if len(codes) == 0:
        return now, base
    # one row per (customer, order day): orders that day, cumulative orders, first and next day
    order = np.lexsort((day, codes))
    c, d = codes[order], day[order]
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    starts = np.flatnonzero(new)
    c, s = c[starts], d[starts]
    per_day = np.diff(np.append(starts, len(order)))
    cust_start = np.ones(len(c), dtype=bool)
    cust_start[1:] = c[1:] != c[:-1]
    cum = np.cumsum(per_day)
    grp = np.cumsum(cust_start) - 1
    f = cum - np.concatenate([[0], cum[:-1]])[cust_start][grp]
    pdays = np.arange(len(c)) - np.flatnonzero(cust_start)[grp] + 1  # purchase days so far
    first = s[cust_start][grp]
    nxt = np.full(len(s), n, dtype=np.int64)
    nxt[:-1] = np.where(cust_start[1:], n, s[1:])
    s_min = int(min(s.min(), 0))
    S = n - s_min  # last order day axis: s_min .. n-1
    ta, tb = np.maximum(s, 0), np.minimum(nxt, n)  # days each piece is the customer's state
    live = ta < tb
    si = s - s_min
    del order, c, d, new, starts, per_day, cust_start, cum, grp, nxt  # memory: not needed below

    def table(t0: np.ndarray, t1: np.ndarray, col: np.ndarray, width: int) -> np.ndarray:
        """(n, width) counts of pieces active on each day, from +1/-1 at their first/end days."""
        m = (n + 1) * width
        diff = np.bincount(t0 * width + col, minlength=m) - np.bincount(
            t1 * width + col, minlength=m
        )
        return np.cumsum(diff.reshape(n + 1, width), axis=0)[:n]

    # every customer seen so far: the day's reference for R (last order day) and F (order count)
    L = table(ta[live], tb[live], si[live], S)
    f_max = int(f.max())
    FH = table(ta[live], tb[live], f[live], f_max + 2)
    n_t = L.sum(axis=1)
    n_div = np.where(n_t > 0, n_t, 1)[:, None]
    # R score of last order day s on day t: rank = 1 + customers whose last order is before s
    # (= strictly longer recency); F score of f: rank = 1 + customers with fewer orders
    r_rank = np.cumsum(L, axis=1) - L + 1
    r_sc = rank_score(r_rank, n_div).astype(np.int64)
    f_rank = np.cumsum(FH, axis=1) - FH + 1
    f_sc = rank_score(f_rank, n_div).astype(np.int64)
    # order counts whose F score is the same on every day share one class
    f_cols, f_cls = np.unique(f_sc.T, axis=0, return_inverse=True)
    f_cls = np.asarray(f_cls).ravel()
    del L, FH, r_rank, f_rank, f_sc, n_div  # (memory: not needed below)

    # population pieces, cut where the overdue region or the population membership changes
    min_orders = population.min_orders if population is not None else 1
    p = live & (f >= min_orders)
    s_p, f_p, ta_p, tb_p, pd_p = s[p], f[p], ta[p], tb[p], pdays[p]
    rep = pd_p > 1  # a cadence needs two purchase days (rfm.mean_gap)
    span = (s_p - first[p]).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.maximum((span + 0.0) / (pd_p - 1 + 0.0), 1.0)
    gap = np.where(rep, gap, 1.0)
    r_max = S + 1
    bounds = list(lookup.bounds)
    if population is not None and population.max_overdue is not None:
        bounds.append(float(population.max_overdue))
    # the cut days of each piece, one column each, filled into one preallocated matrix and sorted
    # in place (memory: no list of columns beside their stacked and sorted copies)
    active = population is not None and population.active_days is not None
    cut = np.empty((len(s_p), 2 + 2 * len(bounds) + active),
                   dtype=np.result_type(ta_p, tb_p, s_p, np.int64))
    cut[:, 0], cut[:, 1] = ta_p, tb_p
    j = 2
    for b in bounds:
        for strict in (False, True):
            r = _first_crossing(gap, b, strict, r_max)
            cut[:, j] = np.where(rep, np.clip(s_p + r, ta_p, tb_p), ta_p)
            j += 1
    if active:
        cut[:, j] = np.clip(s_p + population.active_days + 1, ta_p, tb_p)  # type: ignore[union-attr]
    cut.sort(axis=1)
    # consecutive cuts of a row are its pieces (row-major, as ravel()[keep] would list them)
    keep = cut[:, :-1] < cut[:, 1:]
    lo, hi = cut[:, :-1][keep], cut[:, 1:][keep]
    row = np.nonzero(keep)[0]
    del cut, keep
    rec = lo - s_p[row]  # the piece's state at its first day
    ov = np.where(rep[row], rec.astype(float) / gap[row], np.nan)
    f_row = f_p[row]
    inside = population.mask(f_row, rec, ov) if population is not None else np.ones(len(row), bool)
    del rec
    reg = lookup.region(ov[inside])
    del ov
    lo = lo[inside]  # (one array at a time: memory)
    hi = hi[inside]
    row = row[inside]
    f_row = f_row[inside]
    del inside
    si_row = s_p[row] - s_min
    key = f_cls[f_row] * lookup.n_regions + reg
    del row, f_row, reg
    # segment of each (R score, F score, region) cell, scores 1..5 (M = F: no monetary rule)
    seg_of = np.zeros((6, 6, lookup.n_regions), dtype=np.int64)
    sc = np.arange(1, 6)
    seg_of[1:, 1:, :] = lookup.table.reshape(5, 5, 5, lookup.n_regions)[
        sc[:, None] - 1, sc[None, :] - 1, sc[None, :] - 1, :
    ]
    # the R score is non-decreasing along the last-order-day axis (rank by last order day), so
    # on day t score q holds the contiguous columns [start[t, q], stop[t, q]): a group's count per
    # (day, R score) is a difference of its cumulative sum along that axis at the band edges.
    # The base (the population w days earlier, scored with day t's breakpoints) sees last order
    # day s' as day t's s' + w: the same bands shifted by w columns.
    stop = np.stack([(r_sc < q).sum(axis=1) for q in range(2, 6)] + [np.full(n, S)], axis=1)
    start = np.concatenate([np.zeros((n, 1), dtype=np.int64), stop[:, :-1]], axis=1)
    rows = np.arange(n)[:, None]
    stop_b, start_b = np.clip(stop - w, 0, S), np.clip(start - w, 0, S)
    t_idx = np.arange(n)[:, None] * k
    now_flat, base_flat = np.zeros(n * k), np.zeros(n * k)
    # pieces grouped by key with one stable sort: each group is a slice, in the same order as a
    # boolean mask per group would pick it (one pass instead of four per group); reordered one
    # array at a time (memory)
    by_key = np.argsort(key, kind="stable")
    key = key[by_key]
    lo = lo[by_key]
    hi = hi[by_key]
    si_row = si_row[by_key]
    del by_key
    edges = np.flatnonzero(np.r_[True, key[1:] != key[:-1], True]) if len(key) else []
    cum = np.zeros((n, S + 1), dtype=np.int64)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        g = key[a]
        np.cumsum(table(lo[a:b], hi[a:b], si_row[a:b], S), axis=1, out=cum[:, 1:])
        fg, rg = f_cols[g // lookup.n_regions], g % lookup.n_regions
        seg = seg_of[sc[None, :], fg[:, None], rg]  # (day, R score 1..5) -> segment
        band = cum[rows, stop] - cum[rows, start]
        now_flat += np.bincount((t_idx + seg).ravel(), weights=band.ravel(), minlength=n * k)
        if w < n:
            band_b = cum[rows[: n - w], stop_b[w:]] - cum[rows[: n - w], start_b[w:]]
            base_flat[w * k :] += np.bincount(
                (t_idx[: n - w] + seg[w:]).ravel(),
                weights=band_b.ravel(),
                minlength=(n - w) * k,
            )
    now = now_flat.reshape(n, k)
    base[w:] = base_flat.reshape(n, k)[w:]
    empty = n_t == 0  # nobody seen yet: zeros now, no base
    now[empty], base[empty] = 0.0, np.nan
    return now, base


def _daily_segment_counts_reference(
    orders: pd.DataFrame,
    dates: pd.DatetimeIndex,
    rfm_cfg: RfmConfig,
    window_days: int = 14,
    population: PopulationConfig | None = None,
) -> pd.DataFrame:
    """Customers per segment on each of ``dates`` (consecutive days), from RFM as of that day.

    Each day is scored like ``compute_rfm`` on that day (quintiles of that day's population), so
    a snapshot equals the segments table the analysis would have produced that morning. For the
    growth, the same day's breakpoints also score the customers as they were ``window_days``
    earlier (``base_customers`` / ``base_total``): comparing two days each ranked among itself
    would let whole tie groups (all 3-order customers, say) jump between F scores and would hide
    real movement behind the fixed 40 % that low R scores always hold.

    Incremental over the days (one pass over the orders), vectorized over customers within a
    day. Returns long rows (date, segment, customers, total, base_customers, base_total).
    """
    v = valid_orders(orders)
    dates = pd.DatetimeIndex(dates).normalize().sort_values()
    names = rfm_cfg.names
    cols = ["date", "segment", "customers", "total", "base_customers", "base_total"]
    if len(dates) == 0 or len(v) == 0:
        return pd.DataFrame(columns=cols)
    d0 = as_day(dates[0])
    v = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), as_day(dates[-1]), side="right"))]
    codes = v["cust"].to_numpy()
    # renumber customers in order of first appearance: the customers seen by any day are then a
    # prefix of every per-customer array (slices, not gathers); counts do not depend on the order
    if len(codes):
        first_row = np.full(int(codes.max()) + 1, len(codes), dtype=np.int64)
        first_row[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        present = np.flatnonzero(first_row < len(codes))
        rank = np.empty(len(first_row), dtype=np.int64)
        rank[present[np.argsort(first_row[present], kind="stable")]] = np.arange(len(present))
        codes = rank[codes]
    day = v["day"].to_numpy() - d0  # negative: history before the range
    new_day = new_purchase_day(codes, day)
    rev = v["net_revenue"].to_numpy()
    n_cust = int(codes.max()) + 1 if len(codes) else 0
    first = np.full(n_cust, np.iinfo(np.int32).max, dtype=np.int64)
    last = np.full(n_cust, np.iinfo(np.int32).min, dtype=np.int64)
    freq = np.zeros(n_cust, dtype=np.int64)
    pdays = np.zeros(n_cust, dtype=np.int64)  # purchase days: the overdue ratio's cadence
    money = np.zeros(n_cust, dtype=float)
    use_m = rfm_cfg.uses_monetary
    # history keeps every repeat buyer: the store's pooled gap (overdue_ratio) is taken over them
    min_orders = min(population.min_orders, 2) if population is not None else 1
    oc = rfm_cfg.overdue
    k_prior = oc.gap_prior_strength
    clock, off = None, 0
    if oc.clock == "activity":
        c_min, clock = activity_clock(v, as_day(dates[-1]))
        off = d0 - c_min  # day t (relative to dates[0]) -> clock[t + off]
    lookup = SegmentLookup(rfm_cfg)
    targets = (dates - dates[0]).days.to_numpy()
    bounds = np.searchsorted(day, targets, side="right")  # orders up to and including each day
    history: deque[tuple[np.ndarray, ...]] = deque(maxlen=window_days + 1)
    k = len(names)
    now_rows, base_rows = [], []
    lo = n_seen = 0
    for t, hi in zip(targets, bounds, strict=True):
        c, dd = codes[lo:hi], day[lo:hi]
        if len(c):
            new = first[c] == np.iinfo(np.int32).max
            first[c[new][::-1]] = dd[new][
                ::-1
            ]  # rows are sorted by day: the first row is the earliest
            last[c] = dd  # ... and the last row the latest
            np.add.at(freq, c, 1)
            np.add.at(pdays, c[new_day[lo:hi]], 1)
            if use_m:
                np.add.at(money, c, rev[lo:hi])
            n_seen = max(n_seen, int(c.max()) + 1)
        lo = hi
        seen = slice(0, n_seen)
        # the day's population with its recency, frequency, money and overdue ratio: what the
        # day's count needs and, window_days later, the base count too (only the breakpoints
        # differ), so it is computed once and kept
        cand = np.flatnonzero(freq[seen] >= min_orders)
        last_, first_, f_, p_ = last[cand], first[cand], freq[cand], pdays[cand]
        rec_ = t - last_
        if clock is None:
            overdue = overdue_ratio(rec_.astype(float), (last_ - first_).astype(float), p_, k_prior)
        else:  # days relative to dates[0] -> clock index
            c_t, c_last = clock[t + off], clock[last_ + off]
            overdue = overdue_ratio(c_t - c_last, c_last - clock[first_ + off], p_, k_prior)
        m_ = money[cand] if use_m else None
        if population is not None:  # segment only the population (counts are of it alone)
            keep = population.mask(f_, rec_, overdue)
            rec_, f_, overdue = rec_[keep], f_[keep], overdue[keep]
            m_ = m_[keep] if use_m else None
        history.append((rec_, f_, m_, overdue))
        if n_seen == 0:
            now_rows.append(np.zeros(k))
            base_rows.append(np.full(k, np.nan))
            continue
        # the day's score breakpoints come from every customer seen so far
        ref_r, ref_f = int_reference(t - last[seen]), int_reference(freq[seen])
        ref_m = np.sort(money[seen].round(2)) if use_m else None

        def count(
            rec_: np.ndarray,
            f_: np.ndarray,
            m_: np.ndarray | None,
            overdue: np.ndarray,
            ref_r=ref_r,
            ref_f=ref_f,
            ref_m=ref_m,
        ) -> np.ndarray:
            r_s = int_scores_against(rec_, ref_r, False)
            f_s = int_scores_against(f_, ref_f, True)
            m_s = scores_against(m_.round(2), ref_m, True) if ref_m is not None else f_s
            return lookup.counts(r_s, f_s, m_s, overdue).astype(float)

        now_rows.append(count(*history[-1]))
        if len(history) == window_days + 1:
            base_rows.append(count(*history[0]))
        else:
            base_rows.append(np.full(k, np.nan))
    return _long_rows(dates, names, np.vstack(now_rows), np.vstack(base_rows))


SHORTFALL_COLUMNS = ["repeat_orders", "expected_repeat_orders", "repeat_shortfall", "shortfall_z"]


def repeat_shortfall(orders: pd.DataFrame, end: pd.Timestamp, cfg: ShortfallConfig
                     ) -> pd.DataFrame:
    """Per day from the first order day to ``end``: returning orders over the trailing
    ``window_days`` against what the same days' orders of each channel predict, and its z.

    A returning order is a customer's second or later valid order. Channel c's returning share
    pi_c comes from the ``baseline_days`` before the window. Each window day's returning orders
    are compared with sum_c orders_c * pi_c (binomial variance; the same z as returning vs
    rho_c * new orders, rho_c = returning per new order, with Poisson counts: the expected count
    and the shortfall reported are in that form, 30 % of repeat buyers' orders missing = a
    shortfall of 0.3); the per-day z's are divided by
    their robust spread over the baseline days (at least 1: real data is overdispersed), clipped
    to +-``clip_z`` and summed over the window / sqrt(window), inflated for the estimated pi
    (sqrt(1 + window / baseline)). Causal: day t uses orders up to t only. NaN where the baseline
    is incomplete or has fewer than ``min_reference_orders`` new or returning orders.
    """
    v = valid_orders(orders)
    end_day = as_day(pd.Timestamp(end).normalize())
    v = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), end_day, side="right"))]
    cols = ["date", *SHORTFALL_COLUMNS]
    if len(v) == 0:
        return pd.DataFrame(columns=cols)
    day = v["day"].to_numpy()
    d0 = int(day[0])
    n = end_day - d0 + 1
    cust = v["cust"].to_numpy()
    ret = np.ones(len(v), dtype=bool)  # rows are sorted by day: a customer's first row is new
    ret[np.unique(cust, return_index=True)[1]] = False
    if "channel" in v.columns:
        cell = v["channel"].cat.codes.to_numpy().astype(np.int64)
        cell = np.where(cell < 0, cell.max(initial=0) + 1, cell)
    else:
        cell = np.zeros(len(v), dtype=np.int64)
    C = int(cell.max()) + 1
    idx = (day - d0) * C + cell
    T = np.bincount(idx, minlength=n * C).reshape(n, C).astype(float)
    R = np.bincount(idx[ret], minlength=n * C).reshape(n, C).astype(float)
    w, B = cfg.window_days, cfg.baseline_days
    out = pd.DataFrame({"date": pd.date_range(pd.Timestamp(d0, unit="D"), periods=n, freq="D")})
    for c in SHORTFALL_COLUMNS:
        out[c] = np.nan
    t = np.arange(w + B - 1, n)  # days with a full window and baseline
    if len(t) == 0:
        return out
    cT = np.vstack([np.zeros(C), np.cumsum(T, axis=0)])
    cR = np.vstack([np.zeros(C), np.cumsum(R, axis=0)])
    lo = t - w + 1  # window [lo, t], baseline [lo - B, lo)
    Tb, Rb = cT[lo] - cT[lo - B], cR[lo] - cR[lo - B]
    pi = (Rb + 0.5) / (Tb + 1.0)  # (m, C)
    win = np.lib.stride_tricks.sliding_window_view
    Tw, Rw = win(T, w, axis=0)[lo], win(R, w, axis=0)[lo]  # (m, C, w)
    Tbb, Rbb = win(T, B, axis=0)[lo - B], win(R, B, axis=0)[lo - B]  # (m, C, B)

    def day_z(tt: np.ndarray, rr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = np.einsum("mcd,mc->md", tt, pi)
        var = np.einsum("mcd,mc->md", tt, pi * (1 - pi))
        o = rr.sum(axis=1)
        z = np.divide(o - e, np.sqrt(var), out=np.zeros_like(e), where=var > 0)
        return z, o, e

    zw, o, e = day_z(Tw, Rw)
    zb, _, _ = day_z(Tbb, Rbb)
    med = np.median(zb, axis=1, keepdims=True)
    phi = np.maximum(1.0, 1.4826 * np.median(np.abs(zb - med), axis=1))
    z = np.clip(zw / phi[:, None], -cfg.clip_z, cfg.clip_z).sum(axis=1) / np.sqrt(w)
    z /= np.sqrt(1.0 + w / B)
    # what the window's new-customer orders predict (rho_c = returning per new order of the
    # channel over the baseline); the z above is the same test in its conditional form
    rho = (Rb + 0.5) / (Tb - Rb + 0.5)
    obs, E = o.sum(axis=1), np.einsum("mcd,mc->m", Tw - Rw, rho)
    new_b = (Tb - Rb).sum(axis=1)
    ok = (new_b >= cfg.min_reference_orders) & (Rb.sum(axis=1) >= cfg.min_reference_orders)
    out.loc[t, "repeat_orders"] = obs
    out.loc[t, "expected_repeat_orders"] = np.round(E, 3)
    out.loc[t, "repeat_shortfall"] = np.where(ok & (E > 0), 1 - obs / np.where(E > 0, E, 1), np.nan)
    out.loc[t, "shortfall_z"] = np.where(ok, -z, np.nan)  # positive = fewer repeat orders
    return out


def growth_series(snaps: pd.DataFrame, segment: str, cfg: MonitorConfig) -> pd.DataFrame:
    """Per day: customers, total, share, growth over the window, robust z and severity (or None)."""
    s = snaps[snaps["segment"] == segment].set_index("date").sort_index()
    full = pd.date_range(s.index.min(), s.index.max(), freq="D") if len(s) else pd.DatetimeIndex([])
    s = s.reindex(full)
    share = s["customers"] / s["total"].where(s["total"] > 0)
    past = s["base_customers"] / s["base_total"].where(s["base_total"] > 0)
    growth = share / past.where(past > 0) - 1
    # the normal movement of the share comes from its day-to-day log changes over the baseline
    # (current day excluded: causal): median = drift, MAD = noise, scaled to the window as a random
    # walk (sqrt of the days). Robust to the few days a sale or an outage moves the share at once,
    # which would otherwise sit in the baseline of every window that spans them.
    log_share = np.log(share.where(share > 0))
    step = (log_share - log_share.shift(1)).shift(1)
    hist = step.rolling(cfg.baseline_days, min_periods=max(7, cfg.baseline_days // 2))
    drift = hist.median()
    mad = (
        (step - drift)
        .abs()
        .rolling(cfg.baseline_days, min_periods=max(7, cfg.baseline_days // 2))
        .median()
    )
    w = cfg.window_days
    spread = (1.4826 * mad * np.sqrt(w)).clip(lower=MIN_SCALE)
    log_excess = np.log1p(growth.where(growth > -1)) - drift * w
    med = np.expm1(drift * w)
    excess = np.expm1(log_excess)
    z = log_excess / spread
    sev = pd.Series(None, index=full, dtype=object)
    ok = (z >= cfg.min_z) & (s["customers"] >= cfg.min_customers)
    for tier in cfg.tiers:  # sorted by min_growth: the highest tier reached wins
        sev[ok & (excess >= tier.min_growth)] = tier.severity
    return pd.DataFrame(
        {
            "date": full,
            "segment": segment,
            "customers": s["customers"].to_numpy(),
            "total": s["total"].to_numpy(),
            "share": share.to_numpy(),
            "growth": growth.to_numpy(),
            "normal_growth": med.to_numpy(),
            "excess_growth": excess.to_numpy(),
            "z": z.to_numpy(),
            "severity": sev.to_numpy(),
        }
    )


def _finite(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


@dataclass
class MonitorResult:
    series: pd.DataFrame  # growth_series rows, all segments
    decisions: list[dict[str, Any]] = field(default_factory=list)  # one per flagged day
    # alerts of the judged days, new or already sent: ``sent_this_run`` says which
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # the days of the run the monitor could alert on (``judged_days``): none before its warm-up
    judged: pd.DatetimeIndex = field(default_factory=lambda: pd.DatetimeIndex([]))
    # alerts of earlier runs this run delivered on retry (their run said "undelivered")
    delivered_late: int = 0


class Monitor:
    """Judges flagged days against the state in ``store`` and sends alerts through
    ``dispatcher``."""

    def __init__(
        self, cfg: MonitorConfig, store: MonitorStore, dispatcher: Dispatcher | None, namespace: str
    ):
        self.cfg = cfg
        self.store = store
        self.dispatcher = dispatcher
        self.namespace = namespace
        self.rank = {t.severity: i for i, t in enumerate(cfg.tiers)}
        self.by_rank = [t.severity for t in cfg.tiers]

    def judge(self, row: dict[str, Any], observed: pd.Series | None = None) -> dict[str, Any]:
        """Decide what a flagged day does: "sent", "already_sent", "cooldown" or "ongoing".

        ``observed``: the segment's days the series holds (date -> flagged), as ``judge_series``
        passes it. The incident of the last stored flag goes on unless more than
        ``incident_gap_days`` days *observed as not flagged* follow each other since: a day the
        monitor did not run (``--as-of`` skipped it) is judged from the snapshots in the state,
        and a day with no snapshot at all does not count as quiet. Without ``observed`` every
        day between the two flags counts as observed and quiet."""
        ns, seg, sev = self.namespace, row["segment"], row["severity"]
        d = pd.Timestamp(row["date"]).date()
        day = d.isoformat()
        prev = self.store.last_flag_before(ns, seg, day)
        gap_ok = prev is not None and self._quiet_run(
            pd.Timestamp(prev[0]), pd.Timestamp(d), observed) <= self.cfg.incident_gap_days
        incident_id = prev[1] if gap_ok else f"{seg}:{day}"
        self.store.put_flag(ns, day, seg, sev, float(row["growth"]), float(row["z"]), incident_id,
                            commit=False)  # judge_series commits once (put_alert commits too)
        incident_start = pd.Timestamp(incident_id.rsplit(":", 1)[1]).date()
        sent = self.store.incident_alerts(ns, incident_id, day)
        sent_rank = max((self.rank.get(s, -1) for s, _ in sent), default=-1)
        escalated_before = any(e for _, e in sent)
        target, escalated, why = None, False, ""
        if self.rank[sev] > sent_rank:
            target, why = sev, ("new incident" if sent_rank < 0 else "severity rose")
        elif (
            self.cfg.escalate_after_days is not None
            and not escalated_before
            and (d - incident_start).days >= self.cfg.escalate_after_days
            and sent_rank < len(self.by_rank) - 1
        ):
            target, escalated = self.by_rank[sent_rank + 1], True
            why = f"escalated: incident ongoing {(d - incident_start).days} days"
        decision = {
            "date": day,
            "segment": seg,
            "severity": sev,
            "incident_id": incident_id,
            "growth": round(float(row["growth"]), 4),
            "z": round(float(row["z"]), 2),
        }
        if target is None:
            return decision | {"decision": "ongoing"}
        alert_id = f"{ns}:{seg}:{target}:{day}"
        if self.store.has_alert(alert_id):
            return decision | {"decision": "already_sent", "alert_id": alert_id}
        last = self.store.last_alert_date(ns, seg, target, day)
        if last is not None and (d - pd.Timestamp(last).date()).days < self.cfg.cooldown_days:
            return decision | {"decision": "cooldown", "alert_id": alert_id, "last_sent": last}
        alert = self._alert(
            alert_id, row, target, incident_id, incident_start.isoformat(), escalated, why
        )
        if (
            self.dispatcher is not None
        ):  # outbox rows first: a crash after this point re-sends, never loses
            self.dispatcher.enqueue(alert)
        self.store.put_alert(alert)
        if self.dispatcher is not None:
            alert_sinks = self.dispatcher.send(alert)
            decision["delivered"] = alert_sinks
        return decision | {"decision": "sent", "alert_id": alert_id}

    @staticmethod
    def _quiet_run(prev: pd.Timestamp, day: pd.Timestamp, observed: pd.Series | None) -> int:
        """The longest run of days strictly between ``prev`` and ``day`` observed as not flagged
        (days missing from ``observed`` neither count nor break a run)."""
        if observed is None:
            return max((day - prev).days - 1, 0)
        between = observed[(observed.index > prev) & (observed.index < day)].sort_index()
        run = longest = 0
        for flagged in between.to_numpy(dtype=bool):
            run = 0 if flagged else run + 1
            longest = max(longest, run)
        return longest

    def _alert(
        self,
        alert_id: str,
        row: dict[str, Any],
        severity: str,
        incident_id: str,
        since: str,
        escalated: bool,
        why: str,
    ) -> dict[str, Any]:
        seg, w = row["segment"], self.cfg.window_days
        share, growth = float(row["share"]), float(row["growth"])
        title = f"'{seg}' segment grew {growth:+.0%} in {w} days"
        sf = _finite(row.get("repeat_shortfall"))
        confirm = ""
        if sf is not None:
            sw = self.cfg.shortfall.window_days
            confirm = (
                f" Repeat buyers placed {int(row['repeat_orders'])} orders in the last {sw} days "
                f"where {float(row['expected_repeat_orders']):.0f} were expected from the "
                f"channels' orders ({sf:.1%} short, z = {float(row['shortfall_z']):.1f})."
            )
            if row.get("basis") == "repeat_shortfall":
                title = (f"'{seg}': repeat buyers placed {sf:.0%} fewer orders than expected "
                         f"in {sw} days")
        return {
            "alert_id": alert_id,
            "namespace": self.namespace,
            "date": pd.Timestamp(row["date"]).date().isoformat(),
            "segment": seg,
            "severity": severity,
            "incident_id": incident_id,
            "escalated": escalated,
            "title": title,
            "text": (
                f"'{seg}' now holds {share:.1%} of the watched customers ({int(row['customers'])} "
                "of "
                f"{int(row['total'])}: {self.cfg.population.describe()}), {growth:+.1%} over {w} "
                "days where "
                f"{float(row['normal_growth']):+.1%} is normal (z = {float(row['z']):.1f}); {why}."
                + confirm
            ),
            "fields": {
                "Segment": seg,
                "Customers": int(row["customers"]),
                "Share": f"{share:.1%}",
                f"Growth ({w} d)": f"{growth:+.1%}",
                "Normal growth": f"{float(row['normal_growth']):+.1%}",
                "z": f"{float(row['z']):.1f}",
                "Incident since": since,
                "Suggested action": SUGGESTION.get(seg, "review the segment's customers"),
            } | ({} if sf is None else {
                f"Repeat orders ({self.cfg.shortfall.window_days} d)":
                    f"{int(row['repeat_orders'])} vs {float(row['expected_repeat_orders']):.0f} "
                    f"expected ({sf:.1%} short, z = {float(row['shortfall_z']):.1f})"}),
            "growth": round(growth, 4),
            "share": round(share, 4),
            "z": round(float(row["z"]), 2),
            "customers": int(row["customers"]),
            "total": int(row["total"]),
            "reason": why,
        }

    def judge_series(
        self, series: pd.DataFrame, days: pd.DatetimeIndex | None = None
    ) -> MonitorResult:
        """Judge every flagged day (of ``days``, if given) in date order."""
        flagged = series[series["severity"].notna()]
        if days is not None:
            flagged = flagged[flagged["date"].isin(days)]
        res = MonitorResult(series=series)
        # each segment's observed days (date -> flagged): what ends an incident is a run of
        # observed quiet days, not the days a daily run was skipped (``judge``)
        seen = {seg: pd.Series(g["severity"].notna().to_numpy(),
                               index=pd.DatetimeIndex(g["date"]))
                for seg, g in series.groupby("segment", sort=False)} if len(series) else {}
        try:
            for row in flagged.sort_values(["date", "segment"]).to_dict("records"):
                d = self.judge(row, seen.get(row["segment"]))
                res.decisions.append(d)
        finally:
            self.store.commit()
        ids = {d["alert_id"] for d in res.decisions if d["decision"] in ("sent", "already_sent")}
        sent = {d["alert_id"] for d in res.decisions if d["decision"] == "sent"}
        res.alerts = [a | {"sent_this_run": a["alert_id"] in sent}
                      for a in self.store.alerts(self.namespace) if a["alert_id"] in ids]
        return res


def _series(store: MonitorStore, namespace: str, cfg: MonitorConfig,
            shortfall: pd.DataFrame | None = None) -> pd.DataFrame:
    snaps = store.snapshots(namespace)
    series = pd.concat([growth_series(snaps, s, cfg) for s in cfg.segments], ignore_index=True)
    return confirm_with_shortfall(series, shortfall, cfg)


def confirm_with_shortfall(series: pd.DataFrame, shortfall: pd.DataFrame | None,
                           cfg: MonitorConfig) -> pd.DataFrame:
    """Apply the repeat-order shortfall to the segments' share-growth severities.

    Where the shortfall can be computed (a full baseline with enough new and returning orders):
    a share-growth flag stands only if the shortfall was flagged (z >= min_z) on the day or
    within ``confirm_days`` before it — the overdue share also grows after a sale (its buyers
    fall due together) and after a seasonal peak, when repeat buyers do not buy less than
    acquisition predicts; and ``shortfall.segment`` is flagged by the shortfall itself, its
    severity from the tiers applied to the shortfall (the share of expected repeat orders
    missing). Where it cannot, the share growth alone decides — except before the statistic's
    first full baseline (the data's first ``window_days + baseline_days`` days, or until it is
    first computed if that is sooner), where nothing alerts unless ``judge_before_baseline``
    (``basis`` "warmup"). ``basis`` says which rule flagged.
    """
    sc = cfg.shortfall
    series = series.copy()
    series["basis"] = np.where(series["severity"].notna(), "share_growth", None)
    if shortfall is None or not sc.enabled or len(shortfall) == 0 or len(series) == 0:
        for c in SHORTFALL_COLUMNS:
            series[c] = np.nan
        return series
    sf = shortfall.set_index("date").sort_index()
    flag = (sf["shortfall_z"] >= sc.min_z).astype(float)
    recent = flag.rolling(sc.confirm_days + 1, min_periods=1).max().astype(bool)
    avail = sf["shortfall_z"].notna()
    at = pd.DatetimeIndex(series["date"])
    for c in SHORTFALL_COLUMNS:
        series[c] = sf[c].reindex(at).to_numpy()
    avail_ = avail.reindex(at, fill_value=False).to_numpy()
    recent_ = recent.reindex(at, fill_value=False).to_numpy()
    flag_ = flag.reindex(at, fill_value=0.0).to_numpy() > 0
    sev = series["severity"].to_numpy(dtype=object).copy()
    basis = series["basis"].to_numpy(dtype=object).copy()
    sev = np.where(pd.notna(sev), sev, None)
    drop = avail_ & ~recent_ & pd.notna(sev)
    sev[drop], basis[drop] = None, None
    ready = _warmup_end(sf, sc)
    if ready is not None:  # a file's first months: no baseline of the population yet
        early = (at < ready) & pd.notna(sev)
        sev[early], basis[early] = None, "warmup"
    if sc.segment is not None:
        rank = {t.severity: i for i, t in enumerate(cfg.tiers)}
        own = (series["segment"].to_numpy() == sc.segment) & avail_ & flag_
        own &= series["customers"].fillna(0).to_numpy() >= cfg.min_customers
        own &= np.isfinite(series["growth"].to_numpy(float)) & np.isfinite(
            series["z"].to_numpy(float))  # the alert also reports the share's movement
        short = series["repeat_shortfall"].to_numpy()
        have = pd.Series(sev).map(rank).fillna(-1).to_numpy()
        for tier in cfg.tiers:  # sorted by min_growth: the highest tier reached wins
            better = own & (short >= tier.min_growth) & (rank[tier.severity] >= have)
            sev[better], basis[better] = tier.severity, "repeat_shortfall"
    series["severity"], series["basis"] = sev, basis
    return series


def _warmup_end(sf: pd.DataFrame, sc: ShortfallConfig) -> pd.Timestamp | None:
    """The first day past the warm-up (``confirm_with_shortfall``): the statistic's first full
    baseline, or its first computed day if that is sooner; None when nothing is held back.
    ``sf``: ``repeat_shortfall`` indexed by date."""
    if sc.judge_before_baseline or len(sf) == 0:
        return None
    ready = sf.index.min() + pd.Timedelta(days=sc.window_days + sc.baseline_days - 1)
    avail = sf["shortfall_z"].notna()
    return min(ready, avail[avail].index.min()) if avail.any() else ready


def judged_days(series: pd.DataFrame, shortfall: pd.DataFrame | None, cfg: MonitorConfig,
                days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The days of ``days`` on which the monitor could alert: a watched segment's growth and z
    are computable (a baseline of share changes) and the day is past the warm-up. A data set
    shorter than that (a few weeks) is judged on no day: its silence is not "no churn"."""
    z = pd.to_numeric(series["z"], errors="coerce").to_numpy(dtype=float) if len(series) else []
    ok = pd.DatetimeIndex(series.loc[np.isfinite(z), "date"]) if len(series) else \
        pd.DatetimeIndex([])
    sc = cfg.shortfall
    if shortfall is not None and sc.enabled and len(shortfall):
        ready = _warmup_end(shortfall.set_index("date").sort_index(), sc)
        if ready is not None:
            ok = ok[ok >= ready]
    return pd.DatetimeIndex(sorted(set(ok) & set(days)))


def replay(
    orders: pd.DataFrame,
    cfg: MonitorConfig,
    rfm_cfg: RfmConfig,
    store: MonitorStore,
    dispatcher: Dispatcher | None,
    namespace: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
) -> MonitorResult:
    """Run the monitor on every day from ``start`` (default: first order day) to ``end`` (default:
    last order day), storing the snapshots and alert state in ``store``."""
    dates = pd.to_datetime(orders["order_date"])
    start = pd.Timestamp(start or dates.min()).normalize()
    end = pd.Timestamp(end or dates.max()).normalize()
    days = pd.date_range(start, end, freq="D")
    store.put_snapshots(
        namespace, daily_segment_counts(orders, days, rfm_cfg, cfg.window_days, cfg.population)
    )
    late = dispatcher.retry_pending(namespace)["sent"] if dispatcher is not None else 0
    sf = repeat_shortfall(orders, end, cfg.shortfall) if cfg.shortfall.enabled else None
    series = _series(store, namespace, cfg, sf)
    res = Monitor(cfg, store, dispatcher, namespace).judge_series(series, days)
    res.judged = judged_days(series, sf, cfg, days)
    res.delivered_late = late
    return res


def check_order(store: MonitorStore, namespace: str, as_of: pd.Timestamp | str) -> None:
    """Refuse (InputError) a new ``as_of`` day before the latest day the state judged for
    ``namespace``; a day judged before may be run again (its alerts are listed as already sent).
    ``_daily`` checks it under the state's lock; ``run_analysis.py`` also before the analysis
    (``pipeline.check_daily_state``), so that the refusal costs no model fit."""
    as_of = pd.Timestamp(as_of).normalize()
    last, seen = store.judged_days(namespace)
    if last is not None and as_of < last and str(as_of.date()) not in seen:
        # its cooldown and incidents look only at earlier days: a new day judged after a later
        # one alerted again what the later run had alerted (audit, 2026-12-05)
        raise InputError(
            f"--as-of {as_of.date()}: the monitor state {store.path} already judged "
            f"{namespace!r} up to {last.date()}; new days are judged in order (an earlier one "
            "would alert past the cooldown). Use another state (SHOCKLAB_STATE_DIR, "
            "customers.monitor.state_path) or customers.monitor.namespace to replay earlier days")


def daily(
    orders: pd.DataFrame,
    as_of: pd.Timestamp | str,
    cfg: MonitorConfig,
    rfm_cfg: RfmConfig,
    store: MonitorStore,
    dispatcher: Dispatcher | None,
    namespace: str,
) -> MonitorResult:
    """Run the monitor for one day: refresh the snapshots it needs (the window and baseline before
    ``as_of``, from orders up to each day), then judge ``as_of`` only."""
    with store.exclusive():   # the check below and the judging are one step
        return _daily(orders, pd.Timestamp(as_of).normalize(), cfg, rfm_cfg, store, dispatcher,
                      namespace)


def _daily(orders: pd.DataFrame, as_of: pd.Timestamp, cfg: MonitorConfig, rfm_cfg: RfmConfig,
           store: MonitorStore, dispatcher: Dispatcher | None, namespace: str) -> MonitorResult:
    check_order(store, namespace, as_of)
    # growth needs the window; z the baseline's steps and, for their MAD, the drift of each of
    # those steps (itself a baseline-long median): replay and daily mode then agree exactly
    need = 2 * cfg.baseline_days + cfg.window_days + 2
    # never before the first order day (as replay): days without data are not zero-customer days
    first = pd.Timestamp(pd.to_datetime(orders["order_date"]).min()).normalize() \
        if len(orders) else as_of
    days = pd.date_range(max(as_of - pd.Timedelta(days=need), min(first, as_of)), as_of, freq="D")
    store.put_snapshots(
        namespace, daily_segment_counts(orders, days, rfm_cfg, cfg.window_days, cfg.population)
    )
    late = dispatcher.retry_pending(namespace)["sent"] if dispatcher is not None else 0
    sf = repeat_shortfall(orders, as_of, cfg.shortfall) if cfg.shortfall.enabled else None
    series = _series(store, namespace, cfg, sf)
    res = Monitor(cfg, store, dispatcher, namespace).judge_series(
        series, pd.DatetimeIndex([as_of])
    )
    res.judged = judged_days(series, sf, cfg, pd.DatetimeIndex([as_of]))
    res.delivered_late = late
    store.put_judged(namespace, str(as_of.date()))
    return res
