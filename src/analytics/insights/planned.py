"""Planned marketing-calendar days in the insights' comparisons.

The summary's week- and month-over-month changes and the channels' window are compared with
other days; a Black Friday or a Christmas rush among those makes an ordinary week look like a
slump. Here: which planned days a window holds (for a slice, by the calendar's scope rule,
``detectors.base.calendar_mask``), and the channels' same-weekday baseline with them left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import drivers as dr
from ..detectors.base import calendar_mask
from .common import _day
from .models import CalendarOverlap, PlannedDay


def planned_days(cal: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp,
                 dimension: str = "overall", segment: str = "all") -> list[CalendarOverlap]:
    """The calendar's rows from ``start`` to ``end`` that concern the slice, in calendar order
    (date, then name: ``sections._calendar``)."""
    if cal is None:
        return []
    rows = cal.loc[(cal["date"] >= start) & (cal["date"] <= end)]
    out = []
    for i in range(len(rows)):  # row by row: another row's scope on the same day says nothing
        row = rows.iloc[[i]]
        one = pd.DataFrame({"date": row["date"].to_numpy(), "dimension": [dimension],
                            "segment": [segment]})
        if calendar_mask(one, row)[0]:
            r = row.iloc[0]
            scope = r.get("scope")
            out.append(CalendarOverlap(date=_day(r["date"]), name=str(r.get("name", "")),
                                       kind=str(r.get("kind", "")),
                                       scope=None if pd.isna(scope) else str(scope)))
    return out


def describe(days: Sequence[CalendarOverlap | PlannedDay]) -> str:
    """``black_friday (2025-11-28 to 2025-11-30) and christmas_rush (2025-12-13)``: each name
    with its first and last day (dates and names copied from the fields, so grounded); unnamed
    days (the calendar's default name ``planned``) read ``days (2025-06-18)``."""
    spans: dict[str, list] = {}
    for d in days:  # an unnamed calendar row is named "planned": "planned days (…)", not twice
        spans.setdefault("days" if d.name in ("", "planned") else d.name, []).append(d.date)
    parts = [f"{n} ({min(ds)})" if min(ds) == max(ds) else f"{n} ({min(ds)} to {max(ds)})"
             for n, ds in sorted(spans.items(), key=lambda kv: (min(kv[1]), kv[0]))]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def baseline_dates(start: pd.Timestamp, end: pd.Timestamp, weeks: int) -> pd.DatetimeIndex:
    """The days a window's trailing same-weekday baseline reads."""
    n = (end - start).days + 1
    offs = np.unique((np.arange(n)[None, :] - dr.trailing_lags(n, weeks)).ravel())
    return pd.DatetimeIndex(start + pd.to_timedelta(offs, unit="D"))


def unplanned_trailing(panel: dr.SlicePanel, comp: str, dimension: str, segments: list[str],
                       start: pd.Timestamp, end: pd.Timestamp, weeks: int,
                       cal: pd.DataFrame | None) -> np.ndarray:
    """Window sums of the same-weekday median over the ``weeks`` weeks before the window, one
    per segment, with the planned days that concern the segment left out.

    A day whose baseline lost planned days and kept fewer than ``(weeks + 1) // 2`` reaches back
    week by week (up to ``2 * weeks`` weeks) for unplanned ones; with none there, its plain
    median (planned days in). Without planned days in its weeks, a day's baseline is the
    "trailing" one bit for bit. NaN for a segment without a baseline on every day.
    """
    wide = panel.values.get(comp)
    cols = [panel.column(comp, dimension, s) if wide is not None else None for s in segments]
    out = np.full(len(segments), np.nan)
    have = [k for k, c in enumerate(cols) if c is not None]
    if not have or not len(panel.dates):
        return out
    arr = wide.to_numpy()[:, [cols[k] for k in have]]  # (days, segments)
    grid = pd.DataFrame({"date": np.repeat(panel.dates, len(have)), "dimension": dimension,
                         "segment": np.tile([segments[k] for k in have], len(panel.dates))})
    plan = calendar_mask(grid, cal).reshape(len(panel.dates), len(have))
    n = (end - start).days + 1
    idx = (start - panel.dates[0]).days + np.arange(n) - dr.trailing_lags(n, 2 * weeks)  # (2K, n)
    inside = ((idx >= 0) & (idx < len(arr)))[..., None]
    pos = np.clip(idx, 0, len(arr) - 1)
    vals = np.where(inside, arr[pos], np.nan)  # (2K, n, segments)
    planned = inside & plan[pos]
    usable = np.isfinite(vals) & ~planned
    near = np.arange(2 * weeks)[:, None, None] < weeks
    dropped = (planned & np.isfinite(vals) & near).any(axis=0)
    keep = usable & (near | ((np.cumsum(usable, axis=0) <= (weeks + 1) // 2) & dropped))
    per_day = np.where(keep.any(axis=0), dr.nanmedian0(np.where(keep, vals, np.nan)),
                       dr.nanmedian0(vals[:weeks]))
    out[have] = np.where(np.isfinite(per_day).all(axis=0), np.nansum(per_day, axis=0), np.nan)
    return out
