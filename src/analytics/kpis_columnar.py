"""Daily KPIs with DuckDB: the same table as ``analytics.kpis`` for stores too big for pandas.

Two entry points:
- ``kpis_daily_columnar(ds)``: SQL over an already loaded ``DataSet`` (DuckDB scans the pandas
  frames in place, on every core); ``compute_kpis_daily`` switches to it above
  ``kpis.COLUMNAR_MIN_ROWS`` rows.
- ``kpis_daily_from_files(data_dir)``: SQL straight over the data directory's Parquet (or CSV)
  files, which are never loaded whole: DuckDB streams them, aggregates per (day, segment) and spills
  to disk past its memory limit. This is how a 10 M order-line store gets its KPIs in a few GB.

Definitions are those of ``analytics.kpis`` (see its docstring); only the per-dimension counts are
computed here — sessions, ratios and row order come from ``kpis.finish_kpis``, shared with the
pandas path. ``kpis_daily_columnar`` gives the pandas path's bytes: its revenue, the one sum of
non-integer floats, is summed in numpy in row order as the pandas path sums it (DuckDB's parallel
SUM of doubles adds in an order that follows its threads' timing: the same data gave other last
digits from run to run, and ``run_analysis.py`` takes this path from ``kpis.COLUMNAR_MIN_ROWS``
rows). ``kpis_daily_from_files`` (the orders never loaded) agrees up to float summation order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from shocklab.errors import InputError, first_line
from shocklab.textfile import refuse_data_binary

from .context import DataSet
from .kpis import finish_kpis, item_lines

# memory DuckDB may hold before it spills to its temp directory (the rest of the 4 GB budget is
# the interpreter, pandas and the result); SHOCKLAB_DUCKDB_MEMORY overrides it
MEMORY_LIMIT = "2GB"

MASK_BITS = 64   # slices per dimension that fit the per-(customer, day) bit masks (UBIGINT)

_COUNTS = ("orders", "placed", "revenue", "units", "new_customers", "returning_customers")


def check_memory_setting() -> None:
    """A ``SHOCKLAB_DUCKDB_MEMORY`` DuckDB refuses is bad input however large the data: it was
    checked only when the columnar engine ran (3 M rows up), so ``lots`` passed on smaller data."""
    if not os.environ.get("SHOCKLAB_DUCKDB_MEMORY"):
        return
    try:
        import duckdb  # noqa: F401  (an optional engine: without it the setting never applies)
    except ImportError:
        return
    with _connect():
        pass


@contextmanager
def _connect() -> Iterator[object]:
    import duckdb

    memory = os.environ.get("SHOCKLAB_DUCKDB_MEMORY") or MEMORY_LIMIT
    tmp = tempfile.mkdtemp(prefix="shocklab-duckdb-")
    try:
        try:
            con = duckdb.connect(":memory:", config={
                "memory_limit": memory, "temp_directory": tmp,
                "threads": max(1, os.cpu_count() or 1), "preserve_insertion_order": False})
        except duckdb.Error as exc:   # the one setting a user gives: 'lots' was an internal error
            raise InputError(f"SHOCKLAB_DUCKDB_MEMORY: {memory!r} is no memory size DuckDB "
                             f"takes, e.g. 2GB or 500MB ({first_line(exc)})") from None
        try:
            yield con
        finally:
            con.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _orders_table(con, start: str, with_customers: bool) -> None:
    """TEMP TABLE ``o``: one row per order with its day offset d, ok (not cancelled), rev and un
    (zero when cancelled) and is_new (the customer's first valid order day, if they signed up
    within the data)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE o0 AS
        SELECT order_id, customer_id, CAST(channel AS VARCHAR) AS channel,
               CAST(country AS VARCHAR) AS country,
               CAST(CAST(order_date AS DATE) - DATE '{start}' AS BIGINT) AS d,
               status <> 'cancelled' AS ok,
               CASE WHEN status <> 'cancelled' THEN CAST(net_revenue AS DOUBLE) ELSE 0.0 END AS rev,
               CASE WHEN status <> 'cancelled' THEN CAST(units AS DOUBLE) ELSE 0.0 END AS un
        FROM orders""")
    fresh = (f"AND (c.customer_id IS NULL OR CAST(c.signup_date AS DATE) >= DATE '{start}')"
             if with_customers else "")
    join_c = "LEFT JOIN customers c ON c.customer_id = o0.customer_id" if with_customers else ""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE o AS
        WITH f AS (SELECT customer_id, MIN(d) AS fd FROM o0 WHERE ok GROUP BY customer_id)
        SELECT o0.*, coalesce(o0.ok AND o0.d = f.fd {fresh}, FALSE) AS is_new
        FROM o0 LEFT JOIN f ON f.customer_id = o0.customer_id {join_c}""")
    con.execute("DROP TABLE o0")


def _distinct_customers(con, table: str, seg: str) -> pd.DataFrame:
    """(d, segment) → new_customers, returning_customers: distinct customers among the valid rows
    of ``table`` (dedupe first: DuckDB's COUNT(DISTINCT) per group is several times slower)."""
    return con.execute(f"""
        SELECT d, {seg} AS segment,
               CAST(SUM(CASE WHEN is_new THEN 1 ELSE 0 END) AS DOUBLE) AS new_customers,
               CAST(SUM(CASE WHEN is_new THEN 0 ELSE 1 END) AS DOUBLE) AS returning_customers
        FROM (SELECT DISTINCT d, {seg}, customer_id, is_new FROM {table} WHERE ok)
        GROUP BY ALL""").df()


def _distinct_by_masks(con, labels: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
    """Distinct new / returning customers per (day, slice) for overall, channel and country from one
    aggregation: each (customer, day) row carries a bit per channel and per country used that
    day."""
    lists = {dim: "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in labels[dim]) + "]"
             for dim in ("channel", "country")}
    con.execute(f"""CREATE OR REPLACE TEMP TABLE cd AS
        SELECT d, is_new,
               bit_or(CAST(1 AS UBIGINT)
                      << CAST(list_position({lists["channel"]}, channel) - 1 AS UBIGINT)) AS
                      m_channel,
               bit_or(CAST(1 AS UBIGINT)
                      << CAST(list_position({lists["country"]}, country) - 1 AS UBIGINT)) AS
                      m_country
        FROM o WHERE ok GROUP BY customer_id, d, is_new""")
    cols = ", ".join(f"SUM(CAST((m_{dim} >> {k}) & 1 AS BIGINT)) AS {dim}_{k}"
                     for dim in ("channel", "country") for k in range(len(labels[dim])))
    agg = con.execute(
        f"SELECT d, is_new, COUNT(*) AS overall_0, {cols} FROM cd GROUP BY d, is_new"
    ).df()
    con.execute("DROP TABLE cd")
    out = {}
    for dim in ("overall", "channel", "country"):
        frames = []
        for k, lab in enumerate(labels[dim]):
            v = agg[f"{dim}_{k}"].to_numpy(float)
            new = agg["is_new"].to_numpy(bool)
            frames.append(pd.DataFrame({"d": agg["d"].to_numpy(np.int64), "segment": lab,
                                        "new_customers": np.where(new, v, 0.0),
                                        "returning_customers": np.where(new, 0.0, v)}))
        df = pd.concat(frames, ignore_index=True)
        out[dim] = df.groupby(["d", "segment"], as_index=False)[
            ["new_customers", "returning_customers"]
        ].sum()
    return out


def _orphan_line(con, lines: int, kept: int) -> None:
    bad = con.execute("SELECT CAST(i.order_id AS VARCHAR) FROM order_items i ANTI JOIN o "
                      "ON i.order_id = o.order_id LIMIT 1").fetchone()
    if bad:
        raise InputError(f"order_items: order_id {bad[0]!r} is not in orders")
    bad = con.execute(
        "SELECT CAST(i.product_id AS VARCHAR) FROM order_items i ANTI JOIN products p "
        "ON i.product_id = p.product_id LIMIT 1"
    ).fetchone()
    if bad:
        raise InputError(f"order_items: product_id {bad[0]!r} is not in products")
    raise InputError(f"order_items: {lines} lines, but {kept} after joining orders and products "
                     "(a duplicate order_id or product_id?)")


def _count_blocks(con, start: np.datetime64, n_days: int, with_customers: bool,
                  with_items: bool) -> tuple[list[pd.DataFrame], dict[str, np.ndarray]]:
    _orders_table(con, str(start), with_customers)
    labels: dict[str, np.ndarray] = {"overall": np.array(["all"], dtype=object)}
    for dim in ("channel", "country"):  # slices seen in orders, sorted as pandas does
        labels[dim] = np.array(
            sorted(v for (v,) in con.execute(f"SELECT DISTINCT {dim} FROM o").fetchall()),
            dtype=object,
        )
    masks_fit = all(len(labels[d]) <= MASK_BITS for d in ("channel", "country"))
    distinct = _distinct_by_masks(con, labels) if masks_fit else {}
    parts = []
    for dim, seg in (("overall", "'all'"), ("channel", "channel"), ("country", "country")):
        sums = con.execute(f"""
            SELECT d, {seg} AS segment,
                   CAST(SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS DOUBLE) AS orders,
                   CAST(COUNT(*) AS DOUBLE) AS placed, SUM(rev) AS revenue, SUM(un) AS units
            FROM o GROUP BY ALL""").df()
        parts.append(
            (dim, sums, distinct[dim] if masks_fit else _distinct_customers(con, "o", seg))
        )
    if with_items:
        labels["category"] = np.array(sorted(str(c) for (c,) in con.execute(
            "SELECT DISTINCT CAST(category AS VARCHAR) FROM products").fetchall()), dtype=object)
        # one row per (order, category): an order counts once in each category it contains, and its
        # net revenue is split over its lines in proportion to their discounted value (kpis.py)
        con.execute("""CREATE OR REPLACE TEMP TABLE oc AS
            WITH lc AS (SELECT i.order_id, CAST(p.category AS VARCHAR) AS category,
                               SUM(CAST(i.quantity AS DOUBLE)) AS q, COUNT(*) AS n,
                               SUM(CAST(i.quantity AS DOUBLE) * CAST(i.unit_price AS DOUBLE)
                                   * (1 - CAST(i.discount_pct AS DOUBLE))) AS lv
                        FROM order_items i JOIN products p ON i.product_id = p.product_id
                        GROUP BY i.order_id, p.category),
                 tot AS (SELECT order_id, SUM(lv) AS t FROM lc GROUP BY order_id)
            SELECT o.d, lc.category, o.ok, o.customer_id, o.is_new, lc.n,
                   CASE WHEN tot.t > 0 THEN o.rev * (lc.lv / tot.t) ELSE 0.0 END AS rev,
                   CASE WHEN o.ok THEN lc.q ELSE 0.0 END AS un
            FROM lc JOIN tot ON tot.order_id = lc.order_id JOIN o ON o.order_id = lc.order_id""")
        (lines,) = con.execute("SELECT COUNT(*) FROM order_items").fetchone()
        (kept,) = con.execute("SELECT coalesce(SUM(n), 0) FROM oc").fetchone()
        if (
            kept != lines
        ):  # a line whose order or product is missing: name it, as the pandas path does
            _orphan_line(con, lines, kept)
        sums = con.execute("""
            SELECT d, category AS segment,
                   CAST(SUM(CASE WHEN ok THEN 1 ELSE 0 END) AS DOUBLE) AS orders,
                   CAST(COUNT(*) AS DOUBLE) AS placed, SUM(rev) AS revenue, SUM(un) AS units
            FROM oc GROUP BY ALL""").df()
        parts.append(("category", sums, _distinct_customers(con, "oc", "category")))
    grid = pd.date_range(pd.Timestamp(start), periods=n_days, freq="D").to_numpy()
    frames = []
    for dim, sums, distinct in parts:
        lab = labels[dim]
        S = len(lab)
        block = {
            "date": np.repeat(grid, S),
            "dimension": dim,
            "segment": np.tile(lab, n_days).astype(str),
        }
        for sub, cols in ((sums, _COUNTS[:4]), (distinct, _COUNTS[4:])):
            pos = sub["d"].to_numpy(np.int64) * S + pd.Index(lab).get_indexer(
                sub["segment"].astype(object)
            )
            for col in cols:   # the grid is dense: days and segments without orders get zeros
                dense = np.zeros(n_days * S)
                dense[pos] = sub[col].to_numpy(float)
                block[col] = dense
        frames.append(pd.DataFrame(block)[["date", "dimension", "segment", *_COUNTS]])
    seg_codes = {dim: labels[dim] for dim in ("channel", "country")}
    return frames, seg_codes


def _date_range(con, traffic: pd.DataFrame | None) -> tuple[np.datetime64, int]:
    lo, hi = con.execute(
        "SELECT MIN(CAST(order_date AS DATE)), MAX(CAST(order_date AS DATE)) FROM orders"
    ).fetchone()
    if lo is None:
        raise InputError("orders: table is empty")
    start, end = np.datetime64(lo, "D"), np.datetime64(hi, "D")
    if traffic is not None and len(traffic):
        tdate = traffic["date"].to_numpy("datetime64[D]")
        start, end = min(start, tdate.min()), max(end, tdate.max())
    return start, int((end - start).astype(np.int64)) + 1


def kpis_daily_columnar(ds: DataSet) -> pd.DataFrame:
    """``kpis_daily`` of a loaded DataSet, aggregated by DuckDB over its frames."""
    t = ds.tables
    traffic = t.get("website_traffic")
    with_items = "order_items" in t and "products" in t
    with_customers = "customers" in t
    with _connect() as con:
        con.register(
            "orders",
            t["orders"][
                [
                    "order_id",
                    "order_date",
                    "customer_id",
                    "channel",
                    "country",
                    "status",
                    "net_revenue",
                    "units",
                ]
            ],
        )
        if with_items:
            con.register(
                "order_items",
                t["order_items"][
                    ["order_id", "product_id", "quantity", "unit_price", "discount_pct"]
                ],
            )
            con.register("products", t["products"][["product_id", "category"]])
        if with_customers:
            con.register("customers", t["customers"][["customer_id", "signup_date"]])
        start, n_days = _date_range(con, traffic)
        frames, seg_codes = _count_blocks(con, start, n_days, with_customers, with_items)
    _revenue_in_row_order(ds, frames, start, n_days)
    return finish_kpis(frames, traffic, start, n_days, seg_codes)


def _revenue_in_row_order(ds: DataSet, frames: list[pd.DataFrame], start: np.datetime64,
                          n_days: int) -> None:
    """Replace each block's revenue by the pandas path's sums: per (day, slice) in the rows' order
    (``np.bincount``), over the same per-row values (``kpis.item_lines`` per category)."""
    orders = ds.tables["orders"]
    day = (orders["order_date"].to_numpy("datetime64[D]") - start).astype(np.int64)
    valid = (orders["status"] != "cancelled").to_numpy()
    revenue = np.where(valid, orders["net_revenue"].to_numpy(dtype=float), 0.0)
    for f in frames:
        dim = f["dimension"].iloc[0]
        S = len(f) // n_days
        labels = pd.Index(f["segment"].to_numpy()[:S])
        if dim == "overall":
            key, weights = day, revenue
        elif dim == "category":
            row, prow, weights = item_lines(ds, revenue)
            cat = labels.get_indexer(ds.tables["products"]["category"].astype(str).to_numpy())
            key = day[row] * S + cat[prow]
        else:
            key = day * S + labels.get_indexer(orders[dim].astype(str).to_numpy())
        f["revenue"] = np.bincount(key, weights=weights, minlength=n_days * S)


def _reader(path: Path) -> str:
    p = str(path).replace("'", "''")
    return (
        f"read_parquet('{p}')" if path.suffix == ".parquet" else f"read_csv('{p}', header = true)"
    )


def kpis_daily_from_files(data_dir: str | Path) -> pd.DataFrame:
    """``kpis_daily`` of a data directory, streamed from its files (orders and order lines are
    never loaded into pandas; only the small traffic table is)."""
    from .loading import SCHEMAS, coerce, find_table, read_table

    base = Path(data_dir)
    if not base.is_dir():
        raise InputError(f"{base}: data directory not found")
    files = {name: find_table(base, name)
             for name in ("orders", "order_items", "products", "customers", "website_traffic")}
    if files["orders"] is None:
        raise InputError(f"{base}: missing file orders.csv (or orders.parquet)")
    for p in files.values():   # DuckDB read a gzipped orders.csv as text
        if p is not None and p.suffix != ".parquet":
            refuse_data_binary(p)
    traffic = None
    if files["website_traffic"] is not None:
        p = files["website_traffic"]
        traffic = coerce(
            read_table(p, SCHEMAS["website_traffic"]), SCHEMAS["website_traffic"], str(p)
        )
    with_items = files["order_items"] is not None and files["products"] is not None
    with_customers = files["customers"] is not None
    with _connect() as con:
        for name in ("orders", "order_items", "products", "customers"):
            if files[name] is not None:
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM {_reader(files[name])}")
        start, n_days = _date_range(con, traffic)
        frames, seg_codes = _count_blocks(con, start, n_days, with_customers, with_items)
    return finish_kpis(frames, traffic, start, n_days, seg_codes)
