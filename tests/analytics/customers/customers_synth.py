"""Small synthetic stores with known truth for the customer tests (no simulator needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_store(n_customers: int = 600, days: int = 400, seed: int = 1,
                    churn_share: float = 0.3, wave: tuple[int, float] | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders and truth for a store whose customers buy at Poisson rates until they churn.

    ``wave=(day, share)`` makes ``share`` of the still-alive customers churn on ``day``.
    Returns (orders, truth) with DESIGN column names.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    ids = np.array([f"C{i:05d}" for i in range(n_customers)])
    rate = rng.gamma(2.0, 0.02, n_customers)              # orders per day
    signup = rng.integers(0, days // 2, n_customers)
    churn = np.where(rng.random(n_customers) < churn_share,
                     signup + rng.integers(20, days, n_customers), 10**6)
    if wave is not None:
        day, share = wave
        hit = (churn > day) & (signup < day) & (rng.random(n_customers) < share)
        churn = np.where(hit, day, churn)
    aov = rng.lognormal(3.5, 0.4, n_customers)
    alive_days = np.clip(np.minimum(churn, days) - signup, 0, None)
    counts = rng.poisson(rate * alive_days)
    counts[counts == 0] = 1  # every customer places a first order at signup
    cust_idx = np.repeat(np.arange(n_customers), counts)
    offset = (rng.random(len(cust_idx)) * alive_days[cust_idx]).astype(int)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    offset[first] = 0
    day = signup[cust_idx] + offset
    orders = pd.DataFrame({
        "order_id": [f"O{i:07d}" for i in range(len(cust_idx))],
        "customer_id": ids[cust_idx],
        "order_date": start + pd.to_timedelta(day, unit="D"),
        "status": np.where(rng.random(len(cust_idx)) < 0.03, "cancelled", "completed"),
        "net_revenue": np.round(aov[cust_idx] * rng.lognormal(0, 0.2, len(cust_idx)), 2),
    })
    orders["order_ts"] = orders["order_date"]
    truth = pd.DataFrame({
        "customer_id": ids, "purchase_rate": rate,
        "churn_date": [(start + pd.Timedelta(days=int(c))).date().isoformat() if c < days else None
                       for c in churn],
        "value_tier": np.where(aov > np.median(aov), "high", "low"),
    })
    return orders.sort_values(["order_date", "order_id"]).reset_index(drop=True), truth
