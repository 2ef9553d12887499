"""The oracle's null tables from the truth, in the detectors' long layout (date, kpi, dimension,
segment, value, noise): ``baseline_long`` from truth/baseline_daily (the noise-free, shock-free
expectation and the simulator's own noise, ``simulation/noise_model.py``) and, for the watched
product series, ``product_baseline`` from truth/product_null. ``evaluation.oracle`` scores the
watched series against them (and re-exports both).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from analytics.context import RunContext

PRODUCT_DIM = "product"

# noise column of truth/baseline_daily per KPI (simulation/noise_model.py): a variance for sums,
# the variance of one order's value for aov; conversion_rate takes the day-level CV² of conversion
# plus the slice's cell-mix CV² (conversion_mix_cv2) where the truth has it
NOISE_COLUMNS = {
    "sessions": "sessions_var",
    "orders": "orders_var",
    "revenue": "revenue_var",
    "units": "units_var",
    "aov": "aov_order_var",
}


def truth_baseline(ctx: RunContext) -> pd.DataFrame | None:
    """The run's truth/baseline_daily table (None without truth): the oracle's one read of it."""
    return ctx.truth.baseline if ctx.truth is not None else None


def truth_products(ctx: RunContext) -> pd.DataFrame | None:
    """The run's truth/product_null table (None without truth or in older truth layouts)."""
    return getattr(ctx.truth, "product_null", None) if ctx.truth is not None else None


def truth_order_values(ctx: RunContext) -> pd.DataFrame | None:
    """The run's truth/order_value_null table (None without truth or in older truth layouts)."""
    return ctx.truth.order_values if ctx.truth is not None else None


def product_baseline(
    b: pd.DataFrame, products: pd.DataFrame, segments: list[str] | None = None
) -> pd.DataFrame:
    """Long null rows (date, kpi, dimension 'product', segment, value, noise) of the product
    series, from the overall rows of the normalized baseline ``b`` and truth/product_null
    (``products``; ``segments``: only these product ids, as text). orders: mean M·tau, variance
    tau·M + tau²·(Var[orders] − M) with M, Var[orders] of the overall row that day (as
    ``noise_model.baseline_table`` thins orders for a category); price: the list price with
    variance 0. Without an overall orders row (or its variance) values (or noise) are NaN."""
    cols = ["date", "kpi", "dimension", "segment", "value", "noise"]
    pn = products
    if not {"product_id", "tau", "price"} <= set(pn.columns):
        return pd.DataFrame(columns=cols)
    pid = pn["product_id"].astype(str).str.strip().to_numpy(object)
    keep = np.ones(len(pn), bool) if segments is None else np.isin(pid, list(segments))
    pid = pid[keep]
    tau = pd.to_numeric(pn["tau"], errors="coerce").to_numpy(float)[keep]
    price = pd.to_numeric(pn["price"], errors="coerce").to_numpy(float)[keep]
    over = b[b["dimension"] == "overall"].drop_duplicates("date").sort_values("date")
    dates = over["date"].to_numpy()
    n_d, n_p = len(dates), len(pid)
    M = (over["orders"].to_numpy(float) if "orders" in over else np.full(n_d, np.nan))
    V = (over["orders_var"].to_numpy(float) if "orders_var" in over else np.full(n_d, np.nan))
    Mt, Vt, tt = np.tile(M, n_p), np.tile(V, n_p), np.repeat(tau, n_d)
    date, seg = np.tile(dates, n_p), np.repeat(pid, n_d)
    orders = pd.DataFrame({"date": date, "kpi": "orders", "dimension": PRODUCT_DIM,
                           "segment": seg, "value": Mt * tt,
                           "noise": tt * Mt + tt**2 * (Vt - Mt)})
    prices = pd.DataFrame({"date": date, "kpi": "price", "dimension": PRODUCT_DIM,
                           "segment": seg, "value": np.repeat(price, n_d), "noise": 0.0})
    # the list-price index of each category and of the store (analytics.watch.price_index): 1
    # while no price moves
    cats = sorted(set(pn["category"].astype(str)))
    names = [("category", c) for c in cats] + [("overall", "all")]
    index = pd.DataFrame({"date": np.tile(dates, len(names)), "kpi": "price",
                          "dimension": np.repeat([d for d, _ in names], n_d),
                          "segment": np.repeat([c for _, c in names], n_d), "value": 1.0,
                          "noise": 0.0})
    return pd.concat([orders, prices, index], ignore_index=True)[cols]


def baseline_long(
    b: pd.DataFrame | None,
    kpis: list[str],
    products: pd.DataFrame | None = None,
    segments: list[str] | None = None,
    dimensions: Collection[str] | None = None,
) -> pd.DataFrame | None:
    """truth/baseline_daily (``b``) in the detectors' long layout (date, kpi, dimension, segment,
    value, noise) for the oracle. Older layouts: rows without a channel (or with channel 'all')
    are overall, the others per channel, and noise is unknown (NaN). ``products``:
    truth/product_null, adding the product series' rows (``product_baseline``; ``segments``: the
    watched product ids only); without it product series have no null (the robust fallback).
    ``dimensions``: only these dimensions' rows of ``b`` (memory: the default run watches no
    channel x country cell, a third of the table's rows)."""
    if b is None:
        return None
    b = b.copy()
    if {"dimension", "segment"} <= set(b.columns):
        b["segment"] = b["segment"].astype(str)
    elif "channel" in b.columns:
        ch = b["channel"].astype(str)
        overall = b["channel"].isna() | ch.isin(["all", "overall", "", "nan"])
        b["dimension"] = np.where(overall, "overall", "channel")
        b["segment"] = np.where(overall, "all", ch)
    else:
        b["dimension"], b["segment"] = "overall", "all"
    present = [k for k in kpis if k in b.columns]
    keys = ["date", "dimension", "segment"]
    rows = b if dimensions is None else b[b["dimension"].isin(list(dimensions))]
    long = rows.melt(id_vars=keys, value_vars=present, var_name="kpi", value_name="value")
    noise = {k: c for k, c in NOISE_COLUMNS.items() if k in present and c in b.columns}
    long["noise"] = np.nan
    if noise:
        nl = rows.melt(
            id_vars=keys, value_vars=list(noise.values()), var_name="kpi", value_name="noise"
        )
        nl["kpi"] = nl["kpi"].map({c: k for k, c in noise.items()})
        long = long.drop(columns="noise").merge(nl, on=[*keys, "kpi"], how="left")
    if "conversion_rate" in present and "conversion_cv2" in b.columns:
        # the day-level CV² plus, where the truth has it, the slice's cell-mix CV² that day
        # (simulation.noise_model._mix_cv2; older truth: the day-level CV² alone)
        cv2 = pd.to_numeric(rows["conversion_cv2"], errors="coerce")
        if "conversion_mix_cv2" in rows.columns:
            cv2 = cv2 + pd.to_numeric(rows["conversion_mix_cv2"], errors="coerce").fillna(0.0)
        conv = (long["kpi"] == "conversion_rate").to_numpy()
        # melt stacks each KPI's block in the rows' order and the noise merge keeps it
        long.loc[conv, "noise"] = cv2.to_numpy(float)
    del rows
    long = long[["date", "kpi", "dimension", "segment", "value", "noise"]]
    if products is not None and len(products) and (segments is None or len(segments)):
        prod = product_baseline(b, products, segments)
        if len(prod):
            long = pd.concat([long, prod], ignore_index=True)
    return long


__all__ = ["NOISE_COLUMNS", "PRODUCT_DIM", "baseline_long", "product_baseline", "truth_baseline",
           "truth_order_values", "truth_products"]
