"""Extra slices the detectors may watch beyond ``kpis_daily``'s dimensions.

``channel_country`` (segment ``"<channel>|<country>"``, as ``drivers.pair_daily`` and the truth
baseline name it): sessions, orders, revenue, conversion_rate and aov of every channel x country
cell, on the same daily grid as ``kpis_daily`` (a cell-day without traffic or orders is 0, its
ratios NaN). Cells whose share of the store's orders is below ``min_share`` are left out: a cell
with a handful of orders a day can show nothing but the largest shocks, and every watched series
costs false alerts at the knob's rate.

``product`` (segment = the product_id as text): ``orders`` (orders that are not cancelled and
contain the product, as a category counts them) and ``price`` (list unit price per unit sold:
Σ unit_price·quantity / Σ quantity over those orders' lines of the product; NaN on a day without
units) of every product (``watched_products``: those with at least ``product_min_orders``
orders a day on average); with them, the orders of the product's category each day
(``parent_orders``: the exposure the product's share is judged against,
detectors/product_watch.py). Needs the ``order_items`` and ``products``
tables (a data directory in the store layout); None without them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from shocklab.catalogue import PAIR_DIMENSION, PRODUCT_DIMENSION

from .drivers import pair_daily
from .kpis import positions


def pair_kpis(
    tables: dict[str, pd.DataFrame], dates: pd.DatetimeIndex, min_share: float = 0.0
) -> pd.DataFrame | None:
    """Wide rows in the ``kpis_daily`` shape (date, dimension, segment, sessions, orders, revenue,
    aov, conversion_rate) for every channel x country cell with at least ``min_share`` of the
    orders; None when the tables have no channel and country."""
    p = pair_daily(tables)
    if p is None or p.empty:
        return None
    tot = p.groupby("segment")["orders"].sum()
    keep = tot.index[tot >= min_share * max(float(tot.sum()), 1.0)]
    p = p[p["segment"].isin(keep)]
    if p.empty:
        return None
    cols = [c for c in ("sessions", "orders", "revenue") if c in p.columns]
    wide = p.set_index(["date", "segment"])[cols]
    full = pd.MultiIndex.from_product([pd.DatetimeIndex(dates), sorted(keep)],
                                      names=["date", "segment"])
    no_traffic = "sessions" in cols and not p["sessions"].notna().any()
    wide = wide.reindex(full).fillna(0.0).reset_index()
    if no_traffic:  # a transactions file: sessions unknown, not zero (as in kpis_daily)
        wide["sessions"] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        wide["aov"] = np.where(wide["orders"] > 0, wide["revenue"] / wide["orders"], np.nan)
        if "sessions" in wide:
            wide["conversion_rate"] = np.where(
                wide["sessions"] > 0, wide["orders"] / wide["sessions"], np.nan
            )
    wide.insert(1, "dimension", PAIR_DIMENSION)
    return wide.sort_values(["segment", "date"], kind="stable").reset_index(drop=True)


def _distinct(codes: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an int64 array (sort-based: faster than ``np.unique``'s hash
    path on millions of order-line codes)."""
    s = np.sort(codes, kind="stable")
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if len(s) else s


def _grid_sum(t: np.ndarray, j: np.ndarray, n_t: int, n_j: int,
              w: np.ndarray | None = None) -> np.ndarray:
    """[n_t, n_j] sums of ``w`` (counts without it) at (t, j)."""
    flat = np.bincount(t.astype(np.int64) * n_j + j, weights=w, minlength=n_t * n_j)
    return flat.astype(float).reshape(n_t, n_j)


@dataclasses.dataclass(frozen=True)
class ProductGrid:
    """Every product's daily series as [date x product] matrices (products in the order of their
    id as text): ``orders``, ``price`` (NaN on a day without units) and ``parent_orders`` (the
    orders of the product's category, ``parent``). The long frames (``frames``) are built only for
    the products the analysis watches: on a catalogue of thousands, most are not, and their rows
    as text columns were most of a run's peak memory."""

    dates: np.ndarray           # datetime64 [n_t]
    segment: np.ndarray         # product id as text [n_k]
    parent: np.ndarray          # category label (object) [n_k]
    orders: np.ndarray          # [n_t, n_k]
    price: np.ndarray           # [n_t, n_k]
    parent_orders: np.ndarray   # [n_t, n_k]

    def take(self, cols: np.ndarray) -> ProductGrid:
        """The products at ``cols`` (positions or a mask), in their order."""
        return ProductGrid(self.dates, self.segment[cols], self.parent[cols],
                           self.orders[:, cols], self.price[:, cols], self.parent_orders[:, cols])

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(wide rows in the ``kpis_daily`` shape: date, dimension ``product``, segment, orders,
        price; exposure rows: date, dimension, segment, parent, parent_orders), product by
        product, each over every date."""
        n_t, n_k = len(self.dates), len(self.segment)
        date_col = np.tile(self.dates, n_k)
        seg_col = np.repeat(self.segment, n_t)
        wide = pd.DataFrame({
            "date": date_col,
            "dimension": PRODUCT_DIMENSION,
            "segment": seg_col,
            "orders": self.orders.T.reshape(-1),
            "price": self.price.T.reshape(-1),
        })
        expo = pd.DataFrame({
            "date": date_col,
            "dimension": PRODUCT_DIMENSION,
            "segment": seg_col,
            "parent": np.repeat(self.parent, n_t),
            "parent_orders": self.parent_orders.T.reshape(-1),
        })
        return wide, expo


def product_grid(tables: dict[str, pd.DataFrame], dates: pd.DatetimeIndex) -> ProductGrid | None:
    """Every product of the catalogue as a ``ProductGrid`` (``watched_products`` keeps the ones
    the analysis watches); None without order lines and products."""
    items, products = tables.get("order_items"), tables.get("products")
    orders = tables.get("orders")
    if items is None or products is None or orders is None or not len(items) or not len(dates):
        return None
    grid = pd.DatetimeIndex(dates).normalize()
    o_pos = positions(orders["order_id"], items["order_id"])
    p_pos = positions(products["product_id"], items["product_id"])
    ok = (o_pos >= 0) & (p_pos >= 0)
    kept = (orders["status"] != "cancelled").to_numpy()
    ok[ok] &= kept[o_pos[ok]]
    o_day = grid.get_indexer(pd.DatetimeIndex(orders["order_date"]).normalize())
    ok[ok] &= o_day[o_pos[ok]] >= 0
    o_pos, p_pos = o_pos[ok], p_pos[ok]
    qty = items["quantity"].to_numpy(float)[ok]
    listed = qty * items["unit_price"].to_numpy(float)[ok]
    day = o_day[o_pos]
    n_t, n_p = len(grid), len(products)
    cat_codes, cat_labels = pd.factorize(products["category"].astype(str), sort=True)
    # one count per (order, product) and per (order, category): an order counts once in each
    pair = _distinct(o_pos.astype(np.int64) * n_p + p_pos)
    p_of, o_of = pair % n_p, pair // n_p
    cnt = _grid_sum(o_day[o_of], p_of, n_t, n_p)
    n_c = len(cat_labels)
    c_pair = _distinct(o_of * n_c + cat_codes[p_of])
    c_cnt = _grid_sum(o_day[c_pair // n_c], c_pair % n_c, n_t, n_c)
    del pair, p_of, o_of, c_pair
    seg = products["product_id"].astype(str).to_numpy()
    keep = np.argsort(seg, kind="stable")
    seg = seg[keep]
    units = _grid_sum(day, p_pos, n_t, n_p, qty)[:, keep]
    value = _grid_sum(day, p_pos, n_t, n_p, listed)[:, keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(units > 0, value / units, np.nan)
    del units, value
    parent = np.asarray(cat_labels, dtype=object)[cat_codes[keep]]
    return ProductGrid(grid.to_numpy(), seg, parent, cnt[:, keep], price,
                       c_cnt[:, cat_codes[keep]])


def product_kpis(
    tables: dict[str, pd.DataFrame], dates: pd.DatetimeIndex
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """``product_grid``'s frames (``ProductGrid.frames``) for every product of the catalogue;
    None without order lines and products."""
    g = product_grid(tables, dates)
    return None if g is None else g.frames()


def _row_medians(dev: np.ndarray, min_products: int) -> tuple[np.ndarray, bool]:
    """(median over each row's non-NaN values, NaN where fewer than ``min_products``; whether any
    value is not NaN). The median of an even count is the mean of its two middle values, as
    pandas' groupby median takes it."""
    n = (~np.isnan(dev)).sum(axis=1)
    s = np.sort(dev, axis=1)   # NaN last
    rows = np.arange(len(s))
    lo = s[rows, np.maximum(n - 1, 0) // 2]
    hi = s[rows, np.minimum(n // 2, s.shape[1] - 1)]
    with np.errstate(invalid="ignore", over="ignore"):
        med = np.where(n % 2 == 0, (lo + hi) / 2, lo)
    return np.where(n >= max(min_products, 1), med, np.nan), bool(n.any())


def price_index(products: pd.DataFrame, grid: ProductGrid | None,
                min_products: int = 3) -> pd.DataFrame | None:
    """Wide rows (date, dimension ``category`` | ``overall``, segment, price) of the list-price
    index of each category and of the store, from every product's series (``grid``:
    ``product_grid``): 1 + the median over its products sold that day of (list price per unit
    sold / the product's catalogue price − 1), where at least ``min_products`` products sold (NaN
    otherwise). Exactly 1 while no price moves; a pricing error of the whole category (or store)
    moves it by the cut, one product's alone does not (a median). None without a catalogue price
    (``products.unit_price``) or without products."""
    if grid is None or not len(grid.segment) or "unit_price" not in products.columns:
        return None
    cat_price = pd.Series(pd.to_numeric(products["unit_price"], errors="coerce").to_numpy(float),
                          index=products["product_id"].astype(str).to_numpy())
    order = np.argsort(grid.dates, kind="stable")   # the index's dates ascending
    dev = grid.price[order] / cat_price.reindex(grid.segment).to_numpy(float)[None, :] - 1
    dates = grid.dates[order]
    out = []
    for label in sorted(set(grid.parent.tolist())):
        med, any_sold = _row_medians(dev[:, grid.parent == label], min_products)
        if any_sold:
            out.append(pd.DataFrame({"date": dates, "dimension": "category", "segment": label,
                                     "price": 1.0 + med}))
    med, any_sold = _row_medians(dev, min_products)
    if any_sold:
        out.append(pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                                 "price": 1.0 + med}))
    return pd.concat(out, ignore_index=True) if out else None


def watched_products(grid: ProductGrid | None, min_orders: float,
                     n_days: int) -> ProductGrid | None:
    """``product_grid``'s products with at least ``min_orders`` orders a day on average
    (``product_min_orders``); None when none qualifies."""
    if grid is None:
        return None
    keep = grid.orders.sum(axis=0) >= min_orders * n_days
    if not keep.any():
        return None
    return grid.take(keep)


def product_categories(products: pd.DataFrame | None) -> dict[str, str]:
    """product id (as text) -> category, from the data's products table ({} without one): the
    map insights name a product's episode by and scoring puts a product inside its category
    with."""
    if products is None or not {"product_id", "category"} <= set(products.columns):
        return {}
    return dict(zip(products["product_id"].astype(str), products["category"].astype(str),
                    strict=True))
