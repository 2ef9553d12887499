"""Monthly acquisition cohorts × months since first order: the retention matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _month_index(dates: pd.Series) -> np.ndarray:
    return (dates.dt.year * 12 + dates.dt.month - 1).to_numpy()


def retention_matrix(orders: pd.DataFrame, max_months: int = 24) -> tuple[pd.DataFrame, pd.Series]:
    """Share of each cohort's customers with a valid order k months after their first month.

    ``orders`` from ``rfm.valid_orders``. Returns (matrix, cohort sizes): the matrix is indexed by
    cohort ("YYYY-MM"), columns 0..min(max_months, age of the oldest cohort) (month 0 is 1.0 by
    construction); cells a cohort has not reached yet are NaN.
    """
    if len(orders) == 0:
        return pd.DataFrame(), pd.Series(dtype=np.int64)
    month = _month_index(orders["order_date"])
    cust = orders["customer_id"].to_numpy()
    first = pd.Series(month).groupby(cust).transform("min").to_numpy()
    age = month - first
    pairs = pd.DataFrame({"cohort": first, "age": age, "customer_id": cust})
    pairs = pairs[pairs["age"] <= max_months].drop_duplicates()
    active = pairs.groupby(["cohort", "age"]).size().unstack("age", fill_value=0)
    sizes = active[0]
    matrix = active.div(sizes, axis=0)
    last_month = int(month.max())
    # columns up to the oldest cohort's age (or max_months): no all-empty columns
    ages = np.arange(min(max_months, last_month - int(matrix.index.min())) + 1)
    matrix = matrix.reindex(columns=ages, fill_value=0.0)
    # cohorts cannot be observed beyond the last month of data: NaN, not 0
    reached = (last_month - matrix.index.to_numpy()[:, None]) >= ages[None, :]
    matrix = matrix.where(reached)
    labels = [f"{c // 12:04d}-{c % 12 + 1:02d}" for c in matrix.index]
    matrix.index = pd.Index(labels, name="cohort")
    matrix.columns = pd.Index(ages, name="months_since_first_order")
    sizes.index = pd.Index(labels, name="cohort")
    return matrix, sizes.rename("customers")
