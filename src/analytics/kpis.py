"""Daily KPIs, overall and per channel / country / category, plus summary tables. Vectorized.

Definitions (one row per date × dimension × segment; see ``analytics.context``):
- orders: orders placed that day whose status is not ``cancelled``
- revenue: sum of ``net_revenue`` of those orders, by ``order_date`` (DESIGN.md)
- aov: revenue / orders · units: units of those orders
- sessions: website sessions (NaN per category, and everywhere without ``website_traffic``)
- conversion_rate: orders / sessions
- new_customers: distinct customers placing their first non-cancelled order of the data that day
  (and, when the customers table is present, who signed up on or after the first data day);
  returning_customers: the other distinct customers ordering that day
- cancellation_rate: cancelled orders / all orders placed that day
Per category, an order counts once in each category it contains, and its net revenue is split over
its lines in proportion to their discounted line value, so category revenue adds up to the total.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shocklab.errors import InputError

from .context import DIMENSIONS, KPI_NAMES, DataSet

RATIO_KPIS = ("aov", "conversion_rate", "cancellation_rate")
_COUNTS = ["orders", "placed", "revenue", "units", "new_customers", "returning_customers"]


def _order_frame(ds: DataSet) -> pd.DataFrame:
    orders = ds.tables["orders"]
    valid = (orders["status"] != "cancelled").to_numpy()
    o = pd.DataFrame({
        "order_id": orders["order_id"].to_numpy(),
        "date": orders["order_date"].to_numpy(),
        "customer_id": orders["customer_id"].to_numpy(),
        "channel": orders["channel"].to_numpy(),
        "country": orders["country"].to_numpy(),
        "valid": valid,
        "revenue": np.where(valid, orders["net_revenue"].to_numpy(dtype=float), 0.0),
        "units": np.where(valid, orders["units"].to_numpy(dtype=float), 0.0),
    })
    first_day = o["date"].min()
    # first valid order of each customer in the data
    first = o.loc[o["valid"]].groupby("customer_id")["date"].min()
    is_first_day = o["date"].to_numpy() == o["customer_id"].map(first).to_numpy()
    if "customers" in ds.tables:
        signup = ds.tables["customers"].set_index("customer_id")["signup_date"]
        fresh = (o["customer_id"].map(signup) >= first_day).fillna(True).to_numpy(dtype=bool)
    else:
        fresh = np.ones(len(o), dtype=bool)
    o["is_new"] = is_first_day & fresh & valid
    return o


def _aggregate(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Counts per keys. ``frame`` has one row per order, or per order line (category)."""
    per_order = frame.drop_duplicates([*keys, "order_id"]) if "category" in keys else frame
    agg = per_order.groupby(keys, sort=True).agg(placed=("valid", "size"), orders=("valid", "sum"))
    sums = frame.groupby(keys, sort=True)[["revenue", "units"]].sum()
    v = frame.loc[frame["valid"], [*keys, "customer_id", "is_new"]].drop_duplicates([*keys, "customer_id", "is_new"])
    new = v[v["is_new"]].groupby(keys, sort=True).size().rename("new_customers")
    ret = v[~v["is_new"]].drop_duplicates([*keys, "customer_id"]).groupby(keys, sort=True).size().rename(
        "returning_customers")
    return agg.join(sums, how="outer").join(new, how="outer").join(ret, how="outer").fillna(0.0)


def compute_kpis_daily(ds: DataSet) -> pd.DataFrame:
    """The wide ``kpis_daily`` table for every dimension the data supports."""
    o = _order_frame(ds)
    traffic = ds.tables.get("website_traffic")
    start = o["date"].min()
    end = o["date"].max()
    if traffic is not None and len(traffic):
        start, end = min(start, traffic["date"].min()), max(end, traffic["date"].max())
    grid = pd.date_range(start, end, freq="D")

    lines = None
    if "order_items" in ds.tables and "products" in ds.tables:
        items = ds.tables["order_items"]
        cat = items["product_id"].map(ds.tables["products"].set_index("product_id")["category"])
        if cat.isna().any():
            pid = items["product_id"][cat.isna()].iloc[0]
            raise InputError(f"order_items: product_id {pid!r} is not in products")
        line_value = items["quantity"].to_numpy(float) * items["unit_price"].to_numpy(float) * (
            1 - items["discount_pct"].to_numpy(float))
        lines = pd.DataFrame({"order_id": items["order_id"].to_numpy(), "category": cat.to_numpy(),
                              "line_value": line_value, "quantity": items["quantity"].to_numpy(float)})
        lines = lines.merge(o, on="order_id", how="inner", validate="many_to_one")
        total = lines.groupby("order_id")["line_value"].transform("sum")
        share = np.where(total > 0, lines["line_value"] / total.where(total > 0, 1.0), 0.0)
        lines["revenue"] = lines["revenue"] * share
        lines["units"] = np.where(lines["valid"], lines["quantity"], 0.0)

    frames = []
    for dim in DIMENSIONS:
        if dim == "category":
            if lines is None:
                continue
            src, keys = lines, ["date", "category"]
        else:
            src, keys = o, ["date"] if dim == "overall" else ["date", dim]
        agg = _aggregate(src, keys)
        segments = ["all"] if dim == "overall" else sorted(src[dim].unique())
        idx = pd.MultiIndex.from_product([grid, segments], names=["date", "segment"])
        agg.index = pd.MultiIndex.from_arrays([agg.index.get_level_values(0),
                                               agg.index.get_level_values(1) if dim != "overall" else
                                               np.full(len(agg), "all", dtype=object)], names=["date", "segment"])
        agg = agg.reindex(idx, fill_value=0.0)
        sessions = np.full(len(agg), np.nan)
        if traffic is not None and dim != "category":
            tk = ["date"] if dim == "overall" else ["date", dim]
            s = traffic.groupby(tk, sort=True)["sessions"].sum()
            if dim == "overall":
                s.index = pd.MultiIndex.from_arrays([s.index, np.full(len(s), "all", dtype=object)])
            s.index.names = ["date", "segment"]
            sessions = s.reindex(idx, fill_value=0.0).to_numpy(float)
        out = agg.reset_index()
        out.insert(1, "dimension", dim)
        out["sessions"] = sessions
        with np.errstate(divide="ignore", invalid="ignore"):
            out["aov"] = np.where(out["orders"] > 0, out["revenue"] / out["orders"], np.nan)
            out["conversion_rate"] = np.where(out["sessions"] > 0, out["orders"] / out["sessions"], np.nan)
            out["cancellation_rate"] = np.where(out["placed"] > 0, (out["placed"] - out["orders"]) / out["placed"], np.nan)
        frames.append(out)
    kd = pd.concat(frames, ignore_index=True)
    kd["segment"] = kd["segment"].astype(str)
    kd = kd[["date", "dimension", "segment", *KPI_NAMES]]
    return kd.reset_index(drop=True)


def to_long(kpis_daily: pd.DataFrame, kpis: list[str], dimensions: list[str]) -> pd.DataFrame:
    """Detector input: (date, kpi, dimension, segment, value), sorted by series then date."""
    missing = [k for k in kpis if k not in kpis_daily.columns]
    if missing:
        raise InputError(f"KPI {missing[0]!r} does not exist in the data (available: "
                         f"{', '.join(c for c in kpis_daily.columns if c not in ('date', 'dimension', 'segment'))})")
    sub = kpis_daily[kpis_daily["dimension"].isin(dimensions)]
    long = sub.melt(id_vars=["date", "dimension", "segment"], value_vars=kpis, var_name="kpi", value_name="value")
    long = long[["date", "kpi", "dimension", "segment", "value"]]
    return long.sort_values(["kpi", "dimension", "segment", "date"], kind="stable").reset_index(drop=True)


def summary_tables(ds: DataSet, kpis_daily: pd.DataFrame, top_n: int = 20) -> dict[str, pd.DataFrame]:
    """Monthly revenue with month-over-month growth, channel performance, top products, revenue by country."""
    out: dict[str, pd.DataFrame] = {}
    overall = kpis_daily[kpis_daily["dimension"] == "overall"]
    m = overall.groupby(overall["date"].dt.to_period("M"))[["revenue", "orders"]].sum()
    m["aov"] = m["revenue"] / m["orders"].where(m["orders"] > 0)
    m["mom_growth_pct"] = m["revenue"].pct_change() * 100
    m.index = m.index.astype(str)
    out["monthly_revenue"] = m.rename_axis("month").reset_index()
    for dim, name in (("channel", "channel_performance"), ("country", "revenue_by_country")):
        sub = kpis_daily[kpis_daily["dimension"] == dim]
        if sub.empty:
            continue
        t = sub.groupby("segment")[["sessions", "orders", "revenue", "units"]].sum(min_count=1)
        t["aov"] = t["revenue"] / t["orders"].where(t["orders"] > 0)
        t["conversion_rate"] = t["orders"] / t["sessions"].where(t["sessions"] > 0)
        t["revenue_share"] = t["revenue"] / t["revenue"].sum()
        out[name] = t.sort_values("revenue", ascending=False).rename_axis(dim).reset_index()
    if "order_items" in ds.tables and "products" in ds.tables:
        orders = ds.tables["orders"]
        items = ds.tables["order_items"]
        ok = items["order_id"].isin(orders.loc[orders["status"] != "cancelled", "order_id"])
        it = items[ok]
        rev = it["quantity"] * it["unit_price"] * (1 - it["discount_pct"])
        t = pd.DataFrame({"product_id": it["product_id"], "units": it["quantity"], "revenue": rev}) \
            .groupby("product_id")[["units", "revenue"]].sum()
        t = t.join(ds.tables["products"].set_index("product_id")[["name", "category"]])
        t = t.sort_values(["revenue", "units"], ascending=False).head(top_n)
        out["top_products"] = t.rename_axis("product_id").reset_index()[["product_id", "name", "category", "units", "revenue"]]
    return out
