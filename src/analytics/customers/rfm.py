"""RFM: recency, frequency and monetary value per customer, and quintile scores (5 = best).

Recency is measured from the data's end date (``as_of``), never from today; without ``--as-of``
that is ``data_end_date``: the last order of *any* status, so a credit note (a cancelled order)
dated after the last sale moves it and every customer's recency with it. Frequency counts the
customer's valid orders (a known customer, status other than cancelled) and monetary sums their
``net_revenue``. A cancelled order — a simulated cancellation, or a transactions file's credit
note ("C" invoice), which is an order of its own — counts for neither, and nothing is subtracted
from the order a credit note refunds: monetary (and the CLV and revenue built on the same orders)
is gross of credit notes, not netted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shocklab.errors import InputError

from ..kpis import factorize_sorted
from .config import RfmConfig

ORDER_COLUMNS = ("order_id", "customer_id", "order_date", "net_revenue")
OPTIONAL_COLUMNS = ("channel",)  # kept when present (categorical): the monitor's reference cells


VALID_MARK = "shocklab.valid_orders"  # attrs flag: the frame is already valid_orders' output


def valid_mask(orders: pd.DataFrame) -> pd.Series:
    """The rows that count for customer models: a known customer and a status other than
    cancelled (the rule of ``valid_orders``, also used where the sorted frame is not needed)."""
    keep = orders["customer_id"].notna()
    if "status" in orders.columns:
        keep &= orders["status"].astype("string").str.lower().ne("cancelled").fillna(True)
    return keep


def valid_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders that count for customer models: a known customer and a status other than cancelled.

    Returns columns order_id, customer_id, order_date (datetime64, normalized), net_revenue
    (float), ``channel`` (categorical, when the input has it), ``day`` (int64 days since
    1970-01-01) and ``cust`` (int64 code of customer_id in sorted id order, so per-customer
    arrays indexed by code come out sorted by id), sorted by (order_date, customer_id) with the
    input order kept within a customer's day. A frame that is already this function's output (or
    a row subset of it) is returned as is: the customer stage
    prepares the orders once and every model reuses them.
    """
    if (
        orders.attrs.get(VALID_MARK)
        and {"cust", "day"} <= set(orders.columns)
        and _consistent(orders)
    ):
        return orders
    missing = [c for c in ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise InputError(
            f"orders: missing column(s) {', '.join(missing)} needed for customer models"
        )
    keep = valid_mask(orders).to_numpy(dtype=bool)
    rows = np.flatnonzero(keep)
    extra = [c for c in OPTIONAL_COLUMNS if c in orders.columns]
    codes, uniques = _customer_codes(orders["customer_id"], rows)
    order_date = _normalized_dates(orders["order_date"], rows)
    day = order_date.astype("datetime64[D]").astype(np.int64)
    # sort by (day, customer) keeping the input order within ties: one stable int64 argsort
    idx = np.argsort((day - day.min(initial=0)) * (len(uniques) + 1) + codes, kind="stable")
    sel = rows[idx]  # the input rows in output order: every column is taken once, from the input
    net = orders["net_revenue"]
    if net.dtype == np.float64:
        revenue = net.to_numpy()[sel]
        revenue[np.isnan(revenue)] = 0.0
    else:
        revenue = pd.to_numeric(net.iloc[sel], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    cust = codes[idx].astype(np.int64)
    out = pd.DataFrame({
        "order_id": orders["order_id"].iloc[sel].reset_index(drop=True),
        # categorical ids (codes = ``cust``): per-customer tables take their ids from the
        # categories instead of converting half a million strings each time
        "customer_id": pd.Categorical.from_codes(cust, categories=uniques),
        "order_date": order_date[idx],
        "net_revenue": revenue,
        # categorical: the codes are taken, not the strings
        **{c: _categorical_rows(orders[c], sel) for c in extra},
        "day": day[idx],
        "cust": cust,
    })
    out.attrs[VALID_MARK] = True
    return out


def _customer_codes(ids: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, Any]:
    """``pd.factorize(ids.iloc[rows], sort=True)``, factorizing the whole column (no copy of
    the kept ids) and keeping the codes of the ids present in ``rows``."""
    if len(rows) == len(ids) or ids.isna().any():
        return factorize_sorted(ids if len(rows) == len(ids) else ids.iloc[rows])
    codes, uniques = factorize_sorted(ids)
    codes = codes[rows]
    present = np.bincount(codes, minlength=len(uniques)) > 0
    if present.all():
        return codes, uniques
    return (np.cumsum(present) - 1)[codes], uniques[present]


def _normalized_dates(col: pd.Series, rows: np.ndarray) -> np.ndarray:
    """``pd.to_datetime(col.iloc[rows]).dt.normalize()`` as datetime64[ns] values: straight
    from the numpy values for a tz-naive datetime64[ns] column without NaT."""
    if col.dtype == "datetime64[ns]":
        v = col.to_numpy()[rows]
        if not np.isnat(v).any():
            return v.astype("datetime64[D]").astype("datetime64[ns]")
    return (pd.to_datetime(col.iloc[rows]).dt.normalize().astype("datetime64[ns]")
            .to_numpy())


def _categorical_rows(col: pd.Series, sel: np.ndarray) -> pd.Categorical:
    """``col.iloc[sel].astype("category")``: the whole column's categories, then only the
    codes are taken and the categories no row uses dropped (the same sorted categories)."""
    cat = col.array if isinstance(col.dtype, pd.CategoricalDtype) else \
        col.astype("category").array
    codes = cat.codes[sel]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(codes, dtype=cat.dtype)
    used = np.bincount(codes[codes >= 0], minlength=len(cat.categories)) > 0
    if not used.all():
        codes = np.where(codes >= 0, (np.cumsum(used) - 1)[np.maximum(codes, 0)], -1)
    return pd.Categorical.from_codes(codes, categories=cat.categories[used])


def _consistent(v: pd.DataFrame) -> bool:
    """Still valid_orders' output after edits? (sorted by day, ``day`` matching order_date)"""
    d = v["day"].to_numpy()
    od = v["order_date"]
    return (od.dtype == "datetime64[ns]" and bool(np.all(np.diff(d) >= 0))
            and np.array_equal(od.to_numpy().astype("datetime64[D]").astype(np.int64), d)
            and bool(v["customer_id"].notna().all()))


def distinct(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` (sorted distinct values) by one sort: numpy >= 2.3 answers a plain
    ``np.unique`` through a hash table, ~15x slower on half a million int64 keys."""
    s = np.sort(np.asarray(a).ravel())
    return s[np.r_[True, s[1:] != s[:-1]]] if len(s) else s


def customer_ids(v: pd.DataFrame) -> tuple[np.ndarray, pd.Index]:
    """(codes of the customers present in ``v``, sorted; their customer_ids as an Index)."""
    c = v["cust"].to_numpy()
    if len(c) == 0:
        return np.zeros(0, np.int64), pd.Index([], name="customer_id")
    col = v["customer_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = np.flatnonzero(np.bincount(c) > 0)
        return codes, pd.Index(col.cat.categories.take(codes), name="customer_id")
    first_row = np.full(int(c.max()) + 1, -1, dtype=np.int64)
    first_row[c[::-1]] = np.arange(len(c) - 1, -1, -1)   # first row of each code
    codes = np.flatnonzero(first_row >= 0)
    ids = pd.Index(v["customer_id"].to_numpy()[first_row[codes]], name="customer_id")
    return codes, ids


def new_purchase_day(c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Per order row, whether it is its customer's first order of that day (rows sorted by day,
    a customer's orders of one day adjacent, as ``valid_orders`` gives them)."""
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    return new


def per_customer(v: pd.DataFrame) -> pd.DataFrame:
    """Per customer of ``v`` (valid orders): first_day, last_day (int days), orders (rows: one row
    is one order), purchase_days (days with an order: the cadence's unit), revenue; indexed by
    customer_id, sorted. Vectorized (bincount on the codes)."""
    codes, ids = customer_ids(v)
    c = v["cust"].to_numpy()
    d = v["day"].to_numpy()
    n = int(codes[-1]) + 1 if len(codes) else 0
    first = np.zeros(n, np.int64)
    last = np.zeros(n, np.int64)
    first[c[::-1]] = d[::-1]   # rows are sorted by day: the first row of a code is its first day
    last[c] = d
    return pd.DataFrame({
        "first_day": first[codes], "last_day": last[codes],
        "orders": np.bincount(c, minlength=n)[codes].astype(np.int64),
        "purchase_days": np.bincount(c[new_purchase_day(c, d)], minlength=n)[codes].astype(
            np.int64),
        "revenue": np.bincount(c, weights=v["net_revenue"].to_numpy(), minlength=n)[codes],
    }, index=ids)


def as_day(ts: pd.Timestamp) -> int:
    """Days since 1970-01-01 (the ``day`` column of ``valid_orders``)."""
    return int(pd.Timestamp(ts).normalize().value // 86_400_000_000_000)


def data_end_date(orders: pd.DataFrame, traffic: pd.DataFrame | None = None) -> pd.Timestamp:
    """The data's last day, the reference day for recency: the last order date (all statuses),
    or the traffic table's last day where it runs later — a store's days with sessions and no
    order are days of data, as in kpis_daily (a small store whose last 74 days had no order
    measured recency from its last order: 3 days where 77 had passed, and --as-of on those days
    was refused as 'after the data')."""
    if len(orders) == 0:
        raise InputError("orders: no rows; customer models need at least one order")
    end = pd.Timestamp(pd.to_datetime(orders["order_date"]).max()).normalize()
    if traffic is not None and len(traffic) and "date" in traffic:
        end = max(end, pd.Timestamp(pd.to_datetime(traffic["date"]).max()).normalize())
    return end


def quintile_scores(values: pd.Series | np.ndarray, higher_is_better: bool = True,
                    reference: pd.Series | np.ndarray | None = None) -> np.ndarray:
    """Scores 1..5 by rank percentile (5 = best).

    Ties share the score of the lowest rank in the tie group (``method="min"``), so e.g. all
    one-order customers get F = 1 however many there are, and the result does not depend on row
    order. With distinct values each quintile holds a fifth of the customers.

    With ``reference``, values are ranked within the reference population instead of among
    themselves (frozen breakpoints: a day's count then moves only when customers move).
    """
    v = np.asarray(values, dtype=float)
    ref = v if reference is None else np.asarray(reference, dtype=float)
    return scores_against(v, np.sort(ref), higher_is_better)


def scores_against(
    values: np.ndarray, sorted_ref: np.ndarray, higher_is_better: bool
) -> np.ndarray:
    """``quintile_scores`` against an already sorted reference (sort once, score many)."""
    n = len(sorted_ref)
    if len(values) == 0 or n == 0:
        return np.zeros(len(values), dtype=np.int8)
    # rank with method="min": 1 + number of reference values strictly worse
    if higher_is_better:
        rank = np.searchsorted(sorted_ref, values, side="left") + 1
    else:
        rank = n - np.searchsorted(sorted_ref, values, side="right") + 1
    return rank_score(rank, n)


def rank_score(rank: np.ndarray, n: int) -> np.ndarray:
    """Score 1..5 of a ``min`` rank among ``n``: ceil(5 rank / n), and 1 at the bottom rank (with
    fewer than 5 customers that formula starts above 1: two one-order customers were F = 3)."""
    return np.where(rank <= 1, 1, np.clip(np.ceil(rank / n * 5), 1, 5)).astype(np.int8)


def int_reference(ref: np.ndarray) -> np.ndarray:
    """Cumulative counts of a non-negative integer reference: ``cum[v]`` = number of values < v."""
    return np.concatenate([[0], np.cumsum(np.bincount(ref))])


def int_scores_against(values: np.ndarray, cum: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """``scores_against`` for non-negative integers in O(n) (no sort): same scores."""
    n, top = int(cum[-1]), len(cum) - 1
    if len(values) == 0 or n == 0:
        return np.zeros(len(values), dtype=np.int8)
    if higher_is_better:
        rank = cum[np.clip(values, 0, top)] + 1
    else:
        rank = n - cum[np.clip(values + 1, 0, top)] + 1
    return rank_score(rank, n)


def mean_gap(span_days: np.ndarray, purchase_days: np.ndarray) -> np.ndarray:
    """Mean days between purchase days (at least 1); NaN for a customer who bought on one day
    only (no cadence yet). Purchase days, not orders: two orders of one day are one purchase (an
    invoice split in two), not a 0-day gap that made the customer overdue four days later."""
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(purchase_days > 1, np.maximum(span_days / (purchase_days - 1), 1.0), np.nan)
    return gap


def activity_clock(v: pd.DataFrame, last_day: int, *, smooth_days: int = 7, year_days: int = 364,
                   clip: tuple[float, float] = (0.5, 2.0)) -> tuple[int, np.ndarray]:
    """Seasonality-aware time: (first day, cumulative clock per day up to ``last_day``).

    One clock unit is one day of the store's usual repeat-purchase activity. A day advances the
    clock by its returning orders (customers' 2nd+ orders) relative to the trailing year's daily
    mean (expanding in the first year), median-smoothed over the trailing ``smooth_days`` (a 2-day
    sale or outage barely moves it) and clipped to ``clip``. Causal: day d uses days <= d only.
    In a December peak the clock runs fast, in the January lull slowly, so a holiday buyer's
    January silence is not read as lapsing; a churn wave removes buyers, not store activity, so
    it still shows up. Returns (d_min, clock) with clock[d - d_min] at the end of day d.
    """
    d = v["day"].to_numpy()
    if len(d) == 0:
        return int(last_day), np.ones(1)
    d_min = int(d[0])
    n = int(last_day) - d_min + 1
    c = v["cust"].to_numpy()
    # a row is a returning order if an earlier row has the same customer (rows sorted by day)
    first_row = np.full(int(c.max()) + 1, len(c), dtype=np.int64)
    first_row[c[::-1]] = np.arange(len(c) - 1, -1, -1)
    returning = np.arange(len(c)) != first_row[c]
    keep = d <= last_day
    daily = np.bincount(d[keep & returning] - d_min, minlength=n).astype(float)[:n]
    cum = np.concatenate([[0.0], np.cumsum(daily)])
    idx = np.arange(n)
    lo = np.maximum(idx - year_days, 0)
    trailing = (cum[idx] - cum[lo]) / np.maximum(idx - lo, 1)   # mean of the days before d
    ratio = np.where(trailing > 0, daily / np.where(trailing > 0, trailing, 1.0), 1.0)
    ratio[: min(28, n)] = 1.0                                  # no reference yet: calendar time
    smooth = pd.Series(ratio).rolling(smooth_days, min_periods=1).median().to_numpy()
    return d_min, np.cumsum(np.clip(smooth, *clip))


def overdue_ratio(recency: np.ndarray, span: np.ndarray, purchase_days: np.ndarray,
                  prior_strength: float) -> np.ndarray:
    """Recency / the customer's expected gap, the gap shrunk toward the store's (empirical Bayes).

    Expected gap = (span + k G) / (p - 1 + k), p the customer's purchase days (``mean_gap``): the
    customer's own gaps plus ``k`` pseudo-gaps of the store's pooled gap G = sum(span) /
    sum(p - 1) over repeat buyers. A customer with two quick orders is not called overdue a week
    later; a regular with many orders keeps their own rhythm. k = 0: the raw mean gap. NaN for a
    customer of one purchase day (no cadence yet).
    """
    rep = purchase_days > 1
    g = float(span[rep].sum() / max((purchase_days[rep] - 1).sum(), 1)) if rep.any() else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.maximum((span + prior_strength * g) / (purchase_days - 1 + prior_strength), 1.0)
    return np.where(rep, recency / gap, np.nan)


def overdue_at(v: pd.DataFrame, cfg: RfmConfig | None, first: np.ndarray, last: np.ndarray,
               purchase_days: np.ndarray, today: int) -> np.ndarray:
    """Overdue ratios on day ``today`` as configured (``cfg.overdue``): calendar or activity clock,
    own or shrunk gaps. ``first`` / ``last``: int days."""
    oc = cfg.overdue if cfg is not None else None
    if oc is None or oc.clock == "calendar":
        rec, span = (today - last).astype(float), (last - first).astype(float)
    else:
        d_min, clock = activity_clock(v, today)
        at = lambda d: clock[np.clip(d - d_min, 0, len(clock) - 1)]  # noqa: E731
        rec, span = at(np.full(len(last), today)) - at(last), at(last) - at(first)
    return overdue_ratio(rec, span, purchase_days,
                         oc.gap_prior_strength if oc is not None else 0.0)


NEUTRAL_R = 3  # the recency score when recency carries no information


def recency_informative(rec_days: np.ndarray, cfg: RfmConfig | None) -> bool:
    """Whether the customers' last orders spread over at least ``recency_min_span_days``: if not
    (every last order on one day, or within a few days), recency ranks say nothing about who is
    lost, and every customer gets the middle score ``NEUTRAL_R``."""
    span = int(rec_days.max() - rec_days.min()) if len(rec_days) else 0
    return span >= (cfg or RfmConfig()).recency_min_span_days


def rfm_codes(r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
    """``r.astype(str) + f.astype(str) + m.astype(str)`` ("545") for scores 1..5: the 125 codes
    written once and looked up (an Arrow dictionary decoded), not three integer-to-text casts and
    two concatenations of every customer's; the same values and dtype (the plain way otherwise)."""
    plain = r.astype(str) + f.astype(str) + m.astype(str) if len(r) < 1024 else None
    if plain is not None:
        return plain
    want = (pd.Series(np.array([1], dtype=r.dtype)).astype(str) * 2).dtype
    sv = [np.asarray(x) for x in (r, f, m)]
    if not isinstance(want, pd.StringDtype) or want.storage != "pyarrow" or any(
            x.min() < 1 or x.max() > 5 for x in sv):
        return r.astype(str) + f.astype(str) + m.astype(str)
    import pyarrow as pa

    idx = (sv[0].astype(np.int32) - 1) * 25 + (sv[1] - 1) * 5 + (sv[2] - 1)
    codes = pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(_CODES))
    return pd.Series(pd.array(codes.cast(pa.large_string()), dtype=want), index=r.index)


_CODES = [f"{a}{b}{c}" for a in range(1, 6) for b in range(1, 6) for c in range(1, 6)]


def compute_rfm(orders: pd.DataFrame, as_of: pd.Timestamp | None = None,
                cfg: RfmConfig | None = None) -> pd.DataFrame:
    """One row per customer with at least one valid order on or before ``as_of``.

    Columns: customer_id, first_order_date, last_order_date, recency_days, frequency, monetary,
    mean_gap_days (between purchase days), overdue (recency / mean gap; NaN with one purchase
    day), r_score, f_score, m_score,
    rfm_code ("545"). ``as_of`` defaults to the data's end date. r_score is ``NEUTRAL_R`` for
    everyone when the last orders span fewer than ``cfg.recency_min_span_days`` days.
    """
    as_of = data_end_date(orders) if as_of is None else pd.Timestamp(as_of).normalize()
    v = valid_orders(orders)
    v = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), as_day(as_of), side="right"))]
    if len(v) == 0:
        raise InputError(
            f"orders: no completed orders on or before {as_of.date()} to compute RFM on"
        )
    pc = per_customer(v)
    epoch = np.datetime64("1970-01-01", "ns")
    rfm = pd.DataFrame({
        "first_order_date": epoch + pc["first_day"].to_numpy().astype("timedelta64[D]"),
        "last_order_date": epoch + pc["last_day"].to_numpy().astype("timedelta64[D]"),
        "frequency": pc["orders"].to_numpy(),
        "monetary": pc["revenue"].round(2).to_numpy(),
    }, index=pc.index).reset_index()
    rfm["recency_days"] = (as_of - rfm["last_order_date"]).dt.days.astype(np.int64)
    span = (rfm["last_order_date"] - rfm["first_order_date"]).dt.days.to_numpy(dtype=float)
    pdays = pc["purchase_days"].to_numpy()
    rfm["mean_gap_days"] = mean_gap(span, pdays)
    rfm["overdue"] = overdue_at(v, cfg, pc["first_day"].to_numpy(), pc["last_day"].to_numpy(),
                                pdays, as_day(as_of))
    # recency and frequency are non-negative integers: O(n) counting ranks, the same scores
    rec_days, freq = rfm["recency_days"].to_numpy(), rfm["frequency"].to_numpy()
    if recency_informative(rec_days, cfg):
        rfm["r_score"] = int_scores_against(rec_days, int_reference(rec_days), False)
    else:  # a day's or a few days' data: nobody is Lost for having ordered yesterday
        rfm["r_score"] = np.full(len(rec_days), NEUTRAL_R, dtype=np.int8)
    rfm["f_score"] = int_scores_against(freq, int_reference(freq), True)
    rfm["m_score"] = quintile_scores(rfm["monetary"])
    rfm["rfm_code"] = rfm_codes(rfm["r_score"], rfm["f_score"], rfm["m_score"])
    cols = ["customer_id", "first_order_date", "last_order_date", "recency_days", "frequency",
            "monetary", "mean_gap_days", "overdue", "r_score", "f_score", "m_score", "rfm_code"]
    return rfm[cols]
