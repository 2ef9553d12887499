"""Planned marketing-calendar days in the insights' comparisons.

The summary's week- and month-over-month changes and the channels' window are compared with
other days; a Black Friday or a Christmas rush among those makes an ordinary week look like a
slump. Here: which planned days a window holds (for a slice, by the calendar's scope rule,
``detectors.calendar.calendar_mask``), and the channels' trailing baseline (the median of the
weeks' totals) with them left out.
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
    """A window's baseline total per segment: the median of its totals in the ``weeks`` weeks
    before it (each window day at its same weekday ``k`` weeks earlier,
    ``drivers.trailing_lags``), with the planned days that concern the segment left out.

    Whole-week totals, not the sum of each day's same-weekday median: on a slice of a few orders
    a day, a day's sum is mostly zero or one order's skewed value and its median falls below its
    mean. On a shock-free random world of ~30 orders a day (seed 12), channels of 1.5-2 orders a
    day read +18 to +19 % revenue against that sum in a median week, +1 to +3 % against the
    weeks' totals. A week's total holds tens of orders, so its median is close to its mean; one
    shocked week of the four still leaves the median, as one shocked day did each weekday's.

    A baseline day that is planned for the segment (or missing) counts at its weekday's median
    over the weeks' unplanned days; a weekday that kept fewer than ``(weeks + 1) // 2`` of them
    reaches back week by week (up to ``2 * weeks`` weeks) for unplanned ones, and with none there
    takes its plain median (planned days in). A week reaching before the data counts only when
    no week is whole. NaN for a segment without a baseline on every day.
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
    between = panel.between_rows()
    if between is not None:  # a weekly file's days between its rows hold no period: 0, not NaN
        vals = np.where(inside & between[pos][..., None], 0.0, vals)
    planned = inside & plan[pos]
    usable = np.isfinite(vals) & ~planned
    near = np.arange(2 * weeks)[:, None, None] < weeks
    dropped = (planned & np.isfinite(vals) & near).any(axis=0)
    keep = usable & (near | ((np.cumsum(usable, axis=0) <= (weeks + 1) // 2) & dropped))
    per_day = np.where(keep.any(axis=0), dr.nanmedian0(np.where(keep, vals, np.nan)),
                       dr.nanmedian0(vals[:weeks]))  # (n, segments)
    totals = np.where(usable[:weeks], vals[:weeks], per_day[None]).sum(axis=1)  # (K, segments)
    whole = inside[:weeks].all(axis=1)  # (K, 1): the week lies inside the data
    base = (dr.nanmedian0(np.where(whole, totals, np.nan)) if whole.any()
            else per_day.sum(axis=0))
    out[have] = np.where(np.isfinite(per_day).all(axis=0), base, np.nan)
    return out
