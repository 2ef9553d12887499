"""Monthly acquisition cohorts × months since first order: the retention matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import rfm

PARTIAL_DAYS = 3  # a month whose last 3 days hold no data (the data ends before) is partial


def _month_index(dates: pd.Series) -> np.ndarray:
    """year * 12 + month - 1 of each date (tz-naive datetimes)."""
    months = dates.to_numpy().astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    return months + 1970 * 12


def retention_matrix(orders: pd.DataFrame, max_months: int = 24,
                     end: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Share of each cohort's customers with a valid order k months after their first month.

    ``orders`` from ``rfm.valid_orders``; ``end``: the data's last day (``--as-of``, or a store's
    last traffic day), default the last order's day — months up to it with no order are observed
    months with nobody retained (0), not months not reached yet. Returns (matrix, cohort sizes):
    the matrix is indexed by cohort ("YYYY-MM"), columns 0..min(max_months, age of the oldest
    cohort) (month 0 is 1.0 by construction); cells a cohort has not reached yet are NaN, and so
    are those of a last month the data covers only in part (it ends ``PARTIAL_DAYS`` days or more
    before the month does: its last ``PARTIAL_DAYS`` days hold no data; data ending on the 28th
    of a 31-day month).
    """
    if len(orders) == 0:
        return pd.DataFrame(), pd.Series(dtype=np.int64)
    month = _month_index(orders["order_date"])
    if "cust" in orders.columns:  # valid_orders' integer customer codes: no string hashing
        cust = orders["cust"].to_numpy()
    else:
        cust = pd.factorize(orders["customer_id"])[0]
    first_m = np.full(int(cust.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first_m, cust, month)
    first = first_m[cust]
    age = month - first
    keep = age <= max_months
    # distinct (cohort, age, customer) triples, counted per (cohort, age)
    m0, n_cust = int(first.min()), int(cust.max()) + 1
    key = ((first[keep] - m0) * (max_months + 1) + age[keep]) * n_cust + cust[keep]
    cell = rfm.distinct(key) // n_cust
    n_cells, counts = np.unique(cell, return_counts=True)
    coh, ag = n_cells // (max_months + 1) + m0, n_cells % (max_months + 1)
    cohorts_ = np.flatnonzero(np.bincount(coh - m0)) + m0
    ages_ = np.flatnonzero(np.bincount(ag))
    grid = np.zeros((len(cohorts_), len(ages_)), dtype=np.int64)
    grid[np.searchsorted(cohorts_, coh), np.searchsorted(ages_, ag)] = counts
    active = pd.DataFrame(grid, index=pd.Index(cohorts_, name="cohort"),
                          columns=pd.Index(ages_, name="age"))
    sizes = active[0]
    matrix = active.div(sizes, axis=0)
    last_day = orders["order_date"].max() if end is None else \
        max(pd.Timestamp(end).normalize(), orders["order_date"].max())
    last_month = int(_month_index(pd.Series([last_day]))[0])
    # a last month the data covers only in part (a file ending on the 9th) would read as
    # customers lost: it counts once the data reaches its last PARTIAL_DAYS days (a store closed
    # over a month's last weekend), else its cells are NaN like months not reached (month 0, the
    # cohort's own, is 1.0 by construction)
    month_end = last_day + pd.offsets.MonthEnd(0)
    full = last_month if (month_end - last_day).days < PARTIAL_DAYS else last_month - 1
    # columns up to the oldest cohort's observed age (or max_months): no all-empty columns
    ages = np.arange(max(min(max_months, full - int(matrix.index.min())), 0) + 1)
    matrix = matrix.reindex(columns=ages, fill_value=0.0)
    # cohorts cannot be observed beyond the last (full) month of data: NaN, not 0
    age_of = ages[None, :]
    reached = ((full - matrix.index.to_numpy()[:, None]) >= age_of) | (age_of == 0)
    matrix = matrix.where(reached)
    labels = [f"{c // 12:04d}-{c % 12 + 1:02d}" for c in matrix.index]
    matrix.index = pd.Index(labels, name="cohort")
    matrix.columns = pd.Index(ages, name="months_since_first_order")
    sizes.index = pd.Index(labels, name="cohort")
    return matrix, sizes.rename("customers")
