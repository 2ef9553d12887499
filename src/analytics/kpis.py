"""Daily KPIs, overall and per channel / country / category, plus summary tables. Vectorized.

Definitions (one row per date × dimension × segment; see ``analytics.context``):
- orders: orders placed that day whose status is not ``cancelled``
- revenue: sum of ``net_revenue`` of those orders, by ``order_date`` (docs/ARCHITECTURE.md)
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

from typing import Any

import numpy as np
import pandas as pd

from shocklab.catalogue import DIMENSIONS, KPI_NAMES
from shocklab.errors import InputError

from .context import DataSet


def _codes(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and sorted unique labels (string keys are slow to group on)."""
    codes, uniques = factorize_sorted(
        np.asarray(values, dtype=object) if not isinstance(values, pd.Series) else values
    )
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def factorize_sorted(values: pd.Series | np.ndarray) -> tuple[np.ndarray, Any]:
    """``pd.factorize(values, sort=True)``. Generated ids (Arrow text, all digits of one width)
    are factorized as int64 — the same order and equality as their text — and the labels taken
    back from the text at each code's first row."""
    arr = values.array if isinstance(values, pd.Series) else None
    if isinstance(arr, pd.arrays.ArrowStringArray) and len(arr) >= 1024:
        import pyarrow as pa

        keys = _digit_keys(pa.array(arr))
        if keys is not None:
            codes, distinct = pd.factorize(keys[0], sort=True)
            first = np.empty(len(distinct), dtype=np.int64)
            first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # last write: the first row
            return codes, pd.Index(arr.take(first))
    return pd.factorize(values, sort=True)


def key_codes(frame: pd.DataFrame, cols: list[str], sel: np.ndarray | None = None) -> np.ndarray:
    """One int64 per row of ``frame`` (per row at positions ``sel``): the combination of the
    ``cols``' values, each column dictionary-encoded once (equal values, NaN too, equal codes)."""
    combo = np.zeros(len(frame) if sel is None else len(sel), dtype=np.int64)
    for c in cols:
        k, u = pd.factorize(frame[c], use_na_sentinel=False)
        combo = combo * len(u) + (k if sel is None else k[sel])
    return combo


def positions(index: pd.Series | pd.Index | np.ndarray,
              targets: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """``pd.Index(index).get_indexer(targets)``: the position of each target in ``index``, -1 when
    absent. ``index`` holds unique values (every loader checks its keys: orders, products,
    customers). Hashed by Arrow's ``index_in``, ~3x faster than pandas on string ids; pandas for
    anything Arrow will not compare (mixed types, nulls)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return pd.Index(index).get_indexer(targets)
    try:
        ia, ta = pa.array(index, from_pandas=True), pa.array(targets, from_pandas=True)
        text = [pa.types.is_string(a.type) or pa.types.is_large_string(a.type) for a in (ia, ta)]
        if all(text):
            ki, kt = _digit_keys(ia), _digit_keys(ta)
            if ki is not None and kt is not None and ki[1] == kt[1]:
                return _int_positions(ki[0], kt[0])
            ia, ta = ia.cast(pa.large_string()), ta.cast(pa.large_string())
        if ia.null_count == 0 and ta.null_count == 0 and ia.type == ta.type:
            pos = pc.index_in(ta, value_set=ia)
            return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    except (pa.ArrowException, TypeError, ValueError):
        pass
    return pd.Index(index).get_indexer(targets)


def _digit_keys(a) -> tuple[np.ndarray, int] | None:
    """A text array of ids that are all digits of one width (generated ids such as
    ``20240101000001``), as int64 (the same order and equality as the text), with that width;
    None otherwise."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(a) == 0 or a.null_count:
        return None
    lo, hi = (v.as_py() for v in pc.min_max(pc.binary_length(a)).values())
    if lo != hi or not 0 < hi <= 18 or not pc.all(pc.ascii_is_decimal(a)).as_py():
        return None
    return pc.cast(a, pa.int64()).to_numpy(zero_copy_only=False), hi


def _int_positions(index: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``positions`` on int64 keys (``index`` unique): a binary search when it is sorted."""
    if len(index) and bool(np.all(index[1:] > index[:-1])):
        pos = np.minimum(np.searchsorted(index, targets), len(index) - 1)
        return np.where(index[pos] == targets, pos, -1).astype(np.intp)
    return pd.Index(index).get_indexer(targets)


_positions = positions  # the former private name (other modules may still import it)


def _distinct_count(key: np.ndarray, item: np.ndarray, n_keys: int) -> np.ndarray:
    """Number of distinct ``item`` per ``key`` (both int arrays)."""
    if key.size == 0:
        return np.zeros(n_keys)
    width = int(item.max()) + 1
    pairs = np.sort(key * width + item)   # sort + diff: much faster than np.unique's hashing here
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    return np.bincount(pairs // width, minlength=n_keys).astype(float)


# Above this many order rows + order-line rows, ``compute_kpis_daily`` aggregates with DuckDB
# (multi-threaded, columnar) instead of numpy; ``SHOCKLAB_KPI_ENGINE=pandas|duckdb`` forces one.
COLUMNAR_MIN_ROWS = 3_000_000


def compute_kpis_daily(ds: DataSet, engine: str = "auto") -> pd.DataFrame:
    """The wide ``kpis_daily`` table for every dimension the data supports.

    ``engine``: "pandas" (numpy over the loaded frames), "duckdb" (SQL over the same frames, see
    ``analytics.kpis_columnar``) or "auto" (DuckDB from ``COLUMNAR_MIN_ROWS`` rows, when installed).
    Both give the same bytes (the same table, revenue summed in the same order)."""
    import os

    engine = os.environ.get("SHOCKLAB_KPI_ENGINE", engine) if engine == "auto" else engine
    if engine not in ("auto", "pandas", "duckdb"):
        raise InputError(f"KPI engine must be auto, pandas or duckdb, got {engine!r}")
    if engine == "auto":
        rows = len(ds.tables["orders"]) + len(ds.tables.get("order_items", ()))
        engine = "duckdb" if rows >= COLUMNAR_MIN_ROWS and _has_duckdb() else "pandas"
    if engine == "duckdb":
        from .kpis_columnar import kpis_daily_columnar
        return kpis_daily_columnar(ds)
    return _compute_kpis_daily_pandas(ds)


def _has_duckdb() -> bool:
    import importlib.util
    return importlib.util.find_spec("duckdb") is not None


def _compute_kpis_daily_pandas(ds: DataSet) -> pd.DataFrame:
    orders = ds.tables["orders"]
    traffic = ds.tables.get("website_traffic")
    odate = orders["order_date"].to_numpy("datetime64[D]")
    start, end = odate.min(), odate.max()
    if traffic is not None and len(traffic):
        tdate = traffic["date"].to_numpy("datetime64[D]")
        start, end = min(start, tdate.min()), max(end, tdate.max())
    grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq="D")
    n_days = len(grid)
    day = (odate - start).astype(np.int64)

    valid = (orders["status"] != "cancelled").to_numpy()
    revenue = np.where(valid, orders["net_revenue"].to_numpy(dtype=float), 0.0)
    units = np.where(valid, orders["units"].to_numpy(dtype=float), 0.0)
    cust, cust_ids = _codes(orders["customer_id"])
    # a customer is new on the day of their first valid order in the data, if they signed up
    # within the data period (customers who existed before it are returning)
    first = np.full(len(cust_ids), np.iinfo(np.int64).max)
    np.minimum.at(first, cust[valid], day[valid])
    is_new = valid & (day == first[cust])
    if "customers" in ds.tables:
        c = ds.tables["customers"]
        pos = positions(c["customer_id"], cust_ids)
        signup = c["signup_date"].to_numpy("datetime64[D]")
        fresh = np.where(pos >= 0, signup[np.maximum(pos, 0)] >= start, True)
        is_new &= fresh[cust]

    def block(
        dim: str,
        seg: np.ndarray,
        labels: np.ndarray,
        d: np.ndarray,
        ok: np.ndarray,
        rev: np.ndarray,
        un: np.ndarray,
        cu: np.ndarray,
        new: np.ndarray,
        order: np.ndarray | None,
    ) -> pd.DataFrame:
        S = len(labels)
        key = d * S + seg
        n = n_days * S
        if order is None:   # one row per order
            placed = np.bincount(key, minlength=n).astype(float)
            n_orders = np.bincount(key, weights=ok.astype(float), minlength=n)
        else:               # one row per order line: count each order once per key
            placed = _distinct_count(key, order, n)
            n_orders = _distinct_count(key[ok], order[ok], n)
        out = pd.DataFrame(
            {
                "date": np.repeat(grid.to_numpy(), S),
                "dimension": dim,
                "segment": np.tile(labels, n_days).astype(str),
                "orders": n_orders,
                "placed": placed,
                "revenue": np.bincount(key, weights=rev, minlength=n),
                "units": np.bincount(key, weights=un, minlength=n),
                "new_customers": _distinct_count(key[new], cu[new], n),
                "returning_customers": _distinct_count(key[ok & ~new], cu[ok & ~new], n),
            }
        )
        return out

    frames = [
        block(
            "overall",
            np.zeros(len(day), np.int64),
            np.array(["all"], dtype=object),
            day,
            valid,
            revenue,
            units,
            cust,
            is_new,
            None,
        )
    ]
    seg_codes = {}
    for dim in ("channel", "country"):
        seg, labels = _codes(orders[dim])
        seg_codes[dim] = labels
        frames.append(block(dim, seg, labels, day, valid, revenue, units, cust, is_new, None))
    if "order_items" in ds.tables and "products" in ds.tables:
        items = ds.tables["order_items"]
        row, prow, line_revenue = item_lines(ds, revenue)
        cat, cat_labels = _codes(ds.tables["products"]["category"])
        ok = valid[row]
        frames.append(
            block(
                "category",
                cat[prow],
                cat_labels,
                day[row],
                ok,
                line_revenue,
                np.where(ok, items["quantity"].to_numpy(float), 0.0),
                cust[row],
                is_new[row],
                row,
            )
        )

    return finish_kpis(frames, traffic, np.datetime64(start, "D"), n_days, seg_codes)


def item_lines(ds: DataSet, revenue: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per order line: its order's row in ``orders``, its product's row in ``products``, and its
    part of the order's net revenue (``revenue``, per order row: zero when cancelled), split in
    proportion to the lines' discounted value. Shared by both KPI engines: the DuckDB path takes
    its revenue sums from here, so both give the same bytes (module docstring)."""
    orders, items = ds.tables["orders"], ds.tables["order_items"]
    row = positions(orders["order_id"], items["order_id"])
    if (row < 0).any():
        raise InputError(
            f"order_items: order_id {items['order_id'][row < 0].iloc[0]!r} is not in orders"
        )
    prow = positions(ds.tables["products"]["product_id"], items["product_id"])
    if (prow < 0).any():
        raise InputError(
            f"order_items: product_id {items['product_id'][prow < 0].iloc[0]!r} is not in "
            "products"
        )
    line_value = items["quantity"].to_numpy(float) * items["unit_price"].to_numpy(float) * (
        1 - items["discount_pct"].to_numpy(float))
    total = np.bincount(row, weights=line_value, minlength=len(orders))[row]
    share = np.divide(line_value, total, out=np.zeros_like(line_value), where=total > 0)
    return row, prow, revenue[row] * share


def finish_kpis(
    frames: list[pd.DataFrame],
    traffic: pd.DataFrame | None,
    start: np.datetime64,
    n_days: int,
    seg_codes: dict[str, np.ndarray],
) -> pd.DataFrame:
    """Sessions, ratio KPIs and row order on top of the per-dimension count blocks (each block:
    ``n_days × S`` rows, day-major, segments in ``seg_codes`` order)."""
    kd = pd.concat(frames, ignore_index=True)
    sessions = np.full(len(kd), np.nan)
    if traffic is not None and len(traffic):  # an empty traffic table (transaction files) = unknown
        tday = (traffic["date"].to_numpy("datetime64[D]") - start).astype(np.int64)
        sess = traffic["sessions"].to_numpy(float)
        offset = 0
        for f in frames:
            dim = f["dimension"].iloc[0]
            S = len(f) // n_days
            if dim == "overall":
                sessions[offset:offset + len(f)] = np.bincount(tday, weights=sess, minlength=n_days)
            elif dim in seg_codes:
                labels = seg_codes[dim]
                tseg = pd.Index(labels).get_indexer(traffic[dim].astype(object))
                known = tseg >= 0  # traffic slices without any order still count for the total only
                sessions[offset : offset + len(f)] = np.bincount(
                    tday[known] * S + tseg[known], weights=sess[known], minlength=n_days * S
                )
            offset += len(f)
    kd["sessions"] = sessions
    with np.errstate(divide="ignore", invalid="ignore"):
        kd["aov"] = np.where(kd["orders"] > 0, kd["revenue"] / kd["orders"], np.nan)
        kd["conversion_rate"] = np.where(kd["sessions"] > 0, kd["orders"] / kd["sessions"], np.nan)
        kd["cancellation_rate"] = np.where(
            kd["placed"] > 0, (kd["placed"] - kd["orders"]) / kd["placed"], np.nan
        )
    kd = kd[["date", "dimension", "segment", *KPI_NAMES]]
    return kd.sort_values(
        ["dimension", "segment", "date"], key=_dim_order, kind="stable"
    ).reset_index(drop=True)


def _dim_order(col: pd.Series) -> pd.Series:
    return col.map({d: i for i, d in enumerate(DIMENSIONS)}) if col.name == "dimension" else col


def to_long(kpis_daily: pd.DataFrame, kpis: list[str], dimensions: list[str]) -> pd.DataFrame:
    """Detector input: (date, kpi, dimension, segment, value), sorted by series then date.
    Built column by column (no melt), so a KPI may itself be named ``value`` or ``kpi``."""
    missing = [k for k in kpis if k not in kpis_daily.columns]
    if missing:
        raise InputError(
            f"KPI {missing[0]!r} does not exist in the data (available: "
            + ", ".join(c for c in kpis_daily.columns if c not in ("date", "dimension", "segment"))
            + ")"
        )
    sub = kpis_daily[kpis_daily["dimension"].isin(dimensions)]
    n = len(sub)
    long = pd.DataFrame(
        {
            "date": np.tile(sub["date"].to_numpy(), len(kpis)),
            "kpi": np.repeat(np.asarray(kpis, dtype=object), n),
            "dimension": np.tile(sub["dimension"].to_numpy(), len(kpis)),
            "segment": np.tile(sub["segment"].to_numpy(), len(kpis)),
            "value": np.concatenate([sub[k].to_numpy(dtype=float, na_value=np.nan) for k in kpis])
            if kpis
            else np.array([], dtype=float),
        }
    )
    return long.sort_values(["kpi", "dimension", "segment", "date"], kind="stable").reset_index(
        drop=True
    )


def _traffic_only(t: pd.DataFrame, traffic: pd.DataFrame | None, dim: str) -> pd.DataFrame:
    """A segment with sessions and not one order over the data (a broken landing page, a bot
    source) is no segment of ``kpis_daily`` (its series start from the orders): the performance
    tables add it, with its sessions and no orders, revenue or units, so their sessions add up to
    the store's and its conversion of 0 is there to see."""
    if traffic is None or not len(traffic) or dim not in traffic.columns:
        return t
    sess = traffic.groupby(traffic[dim].astype(str))["sessions"].sum()
    extra = sess[~sess.index.isin(t.index.astype(str))]
    if extra.empty:
        return t
    add = pd.DataFrame({"sessions": extra.astype(float), "orders": 0.0, "revenue": 0.0,
                        "units": 0.0}, index=extra.index)
    return pd.concat([t, add]).rename_axis("segment")


def summary_tables(
    ds: DataSet, kpis_daily: pd.DataFrame, top_n: int = 20
) -> dict[str, pd.DataFrame]:
    """Monthly revenue with month-over-month growth, channel performance, top products, revenue by
    country. A month the data covers in part (its first or last) is ``partial`` with the ``days``
    it has, and has no growth, nor has the month after it: a 6-day month read -80 %; nor has the
    month after one without revenue."""
    out: dict[str, pd.DataFrame] = {}
    overall = kpis_daily[kpis_daily["dimension"] == "overall"]
    month = overall["date"].dt.to_period("M")
    m = overall.groupby(month)[["revenue", "orders"]].sum()
    m["aov"] = m["revenue"] / m["orders"].where(m["orders"] > 0)
    days = overall["date"].dt.normalize().groupby(month).nunique()
    partial = (days < m.index.days_in_month).to_numpy()
    whole = ~(partial | np.r_[True, partial[:-1]])  # this month and the one before are whole
    # after a month without revenue (a small store) the growth is undefined: empty, not inf (a
    # month of 0 then one of 231,940 wrote 'inf' into the CSV; edge-worlds audit)
    prev = m["revenue"].shift(1)
    m["mom_growth_pct"] = ((m["revenue"] / prev.where(prev > 0) - 1) * 100).where(whole)
    m["days"] = days.to_numpy()
    m["partial"] = partial
    m.index = m.index.astype(str)
    out["monthly_revenue"] = m.rename_axis("month").reset_index()
    for dim, name in (("channel", "channel_performance"), ("country", "revenue_by_country")):
        sub = kpis_daily[kpis_daily["dimension"] == dim]
        if sub.empty:
            continue
        t = sub.groupby("segment")[["sessions", "orders", "revenue", "units"]].sum(min_count=1)
        t = _traffic_only(t, ds.tables.get("website_traffic"), dim)
        t["aov"] = t["revenue"] / t["orders"].where(t["orders"] > 0)
        t["conversion_rate"] = t["orders"] / t["sessions"].where(t["sessions"] > 0)
        t["revenue_share"] = t["revenue"] / t["revenue"].sum()
        out[name] = t.sort_values("revenue", ascending=False).rename_axis(dim).reset_index()
    if "order_items" in ds.tables and "products" in ds.tables:
        orders = ds.tables["orders"]
        items = ds.tables["order_items"]
        # (isin on arrow strings is slow; a positional lookup is not)
        row = positions(orders["order_id"], items["order_id"])
        valid = (orders["status"] != "cancelled").to_numpy()
        it = items[(row >= 0) & valid[np.maximum(row, 0)]]
        rev = it["quantity"] * it["unit_price"] * (1 - it["discount_pct"])
        t = (
            pd.DataFrame({"product_id": it["product_id"], "units": it["quantity"], "revenue": rev})
            .groupby("product_id")[["units", "revenue"]]
            .sum()
        )
        t = t.join(ds.tables["products"].set_index("product_id")[["name", "category"]])
        t = t.sort_values(["revenue", "units"], ascending=False).head(top_n)
        out["top_products"] = t.rename_axis("product_id").reset_index()[
            ["product_id", "name", "category", "units", "revenue"]
        ]
    return out
