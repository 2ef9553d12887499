"""Extra slices the detectors may watch beyond ``kpis_daily``'s dimensions.

``channel_country`` (segment ``"<channel>|<country>"``, as ``drivers.pair_daily`` and the truth
baseline name it): sessions, orders, revenue, conversion_rate and aov of every channel x country
cell, on the same daily grid as ``kpis_daily`` (a cell-day without traffic or orders is 0, its
ratios NaN). Cells whose share of the store's orders is below ``min_share`` are left out: a cell
with a handful of orders a day can show nothing but the largest shocks, and every watched series
costs false alerts at the knob's rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shocklab.catalogue import PAIR_DIMENSION

from .drivers import pair_daily


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
