"""Root cause: which channel, country or category slice (or channel x country pair) carries a
change, and what kind of change it is (traffic, conversion, basket).

A change is always "actual versus expected" over a window of days. For each slice the window sums
of the KPI's components are compared, the slice's contribution to the overall change is computed
(it adds up to the dimension's total change), and slices are ranked by *concentration*: the share
of the change a slice carries minus its share of the expected volume. A drop confined to one
channel gives that channel a concentration near ``1 - its share``, while in the other dimensions
every slice carries roughly its own share of the change (concentration near 0). Whether the
change is confined at all is judged by the first driver's ``focus`` (see ``focus``).

Expected values come from a same-weekday baseline built from ``kpis_daily``: the median of the
same weekday in the ``baseline_weeks`` weeks before the window and as many after it (never inside
it, so the window cannot contaminate its own baseline; centered, so trend and seasonal slope
cancel), or — ``expected="auto"`` / ``"detector"`` — from the detectors' baselines (``expected``
in detections) where they cover every slice of a dimension over the window ("auto" on a
sub-daily file: the same-weekday baseline first, see ``window_table``).

``window_table``, ``attribute`` and ``rank`` are the readable pandas statement of the algorithm
(and its reference in the tests); ``explain`` and ``slice_driver`` run the same computation on
arrays (``analytics.driver_arrays``: the same floats bit for bit, ~50x faster per window).

Size (~850 lines, one module on purpose): panel, window table, attribution, ranking and signature
are one algorithm over one data model (``SlicePanel``), read top to bottom.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shocklab.catalogue import PAIR_DIMENSION, PAIR_SEP, RATIO_KPIS, SLICE_DIMENSIONS

from . import driver_arrays

PAIR_MARGIN = 0.02  # a pair must beat its channel's and its country's concentration by this much
SIGNATURES = ("traffic-driven", "conversion-driven", "basket-driven", "mix", "undetermined")


def components(kpi: str) -> tuple[str, ...]:
    """The additive series a KPI is built from (window sums of these are comparable)."""
    return RATIO_KPIS.get(kpi, (kpi,))


def kpi_value(kpi: str, sums: dict[str, float]) -> float:
    """The KPI from window sums of its components (NaN when undefined)."""
    if kpi in RATIO_KPIS:
        num, den = RATIO_KPIS[kpi]
        d = sums.get(den, math.nan)
        return sums.get(num, math.nan) / d if d and np.isfinite(d) else math.nan
    return sums.get(kpi, math.nan)


def pair_daily(tables: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """channel x country daily sessions / orders / revenue from the raw tables, in the long shape of
    ``kpis_daily`` (dimension ``channel_country``, segment ``"<channel>|<country>"``); None when the
    tables do not carry both keys."""
    orders = tables.get("orders")
    traffic = tables.get("website_traffic")
    need = {"order_date", "channel", "country", "status", "net_revenue"}
    if orders is None or not need <= set(orders.columns) or orders.empty:
        return None
    o = orders.loc[
        orders["status"].astype(str) != "cancelled",
        ["order_date", "channel", "country", "net_revenue"],
    ]
    o = o.assign(date=pd.to_datetime(o["order_date"]).dt.normalize())
    g = o.groupby(["date", "channel", "country"], observed=True)["net_revenue"].agg(["size", "sum"])
    out = g.rename(columns={"size": "orders", "sum": "revenue"})
    if traffic is not None and {"date", "channel", "country", "sessions"} <= set(traffic.columns):
        t = traffic.assign(date=pd.to_datetime(traffic["date"]).dt.normalize())
        s = t.groupby(["date", "channel", "country"], observed=True)["sessions"].sum()
        out = out.join(s, how="outer")
        out[["orders", "revenue"]] = out[["orders", "revenue"]].fillna(0.0)
    out = out.reset_index()
    out["segment"] = out["channel"].astype(str) + PAIR_SEP + out["country"].astype(str)
    out["dimension"] = PAIR_DIMENSION
    out["orders"] = out["orders"].astype(float)
    return out.drop(columns=["channel", "country"])


class SlicePanel:
    """Daily component series of every slice, wide (date x (dimension, segment)), plus the
    detectors' expected values in the same shape; built once per run, queried per window.

    Parameters
    ----------
    kpis_daily : the contract's wide KPI table (see analytics.context)
    detections : the contract's long detections table, or None
    extra : more rows in the kpis_daily shape (e.g. ``pair_daily``), or None
    gaps : a missing value is a gap, not a zero (a ``--kpis`` file: its missing periods stay NaN).
        A day's value is then its observed periods' mean times a whole day's periods (the most
        any day has: a first or last day the file covers in part counts as a day), and an actual
        or shifted window's sum its observed days' mean times its grid days (the days the file's
        grid has a row on: every day of a daily file, one a week of a weekly one), so a day or a
        week with gaps is not read as a fall. Store data (False) keeps plain sums: a slice with no
        order that day has no row there.
    means : components that are gauges (a --kpis file's own columns not declared counts:
        ``external.averaged_columns``): a day's value is its observed periods' mean and a
        window's its observed days' mean (a baseline's: the mean of its days' medians), so a
        5-minute CPU % reads ~40, not ~40 x 288. Every other component is summed as above.
    """

    def __init__(self, kpis_daily: pd.DataFrame, detections: pd.DataFrame | None = None,
                 extra: pd.DataFrame | None = None, gaps: bool = False,
                 means: Collection[str] = ()):
        self.gaps = gaps
        self.means = frozenset(means)
        k = kpis_daily.copy()
        k["date"] = pd.to_datetime(k["date"]).dt.normalize()
        k["dimension"] = k["dimension"].astype(str)
        k["segment"] = k["segment"].astype(str)
        if "cancellation_rate" in k.columns and "orders" in k.columns:
            # cancellation rate = cancelled / placed (kpis.py), orders = placed - cancelled: the
            # placed orders are orders / (1 - rate); a day whose every order was cancelled
            # (rate 1, no valid order) does not say how many were: left out (NaN)
            rate = k["cancellation_rate"].to_numpy(dtype=float, na_value=np.nan)
            valid = k["orders"].to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(divide="ignore", invalid="ignore"):
                placed = np.where(np.isnan(rate) & (valid == 0), 0.0,
                                  np.where(rate < 1, valid / (1 - rate), np.nan))
            k["placed_orders"] = placed
            k["cancelled_orders"] = placed - valid
        if extra is not None and not extra.empty:
            k = pd.concat([k, extra], ignore_index=True)
        # one contiguous daily index for every series, so a date is a row number (fast look-ups)
        self.dates = (
            pd.date_range(k["date"].min(), k["date"].max(), freq="D")
            if len(k)
            else pd.DatetimeIndex([])
        )
        # the grid's days (a row, observed or not, on that day): what a window's gaps count against
        self._grid = self.dates.isin(k["date"]) if gaps else None
        self.values: dict[str, pd.DataFrame] = {}
        ppd = 1   # a --kpis file's periods in a whole day (1: daily or coarser)
        comps = [c for c in k.columns.difference(["date", "dimension", "segment"])
                 if pd.api.types.is_numeric_dtype(k[c])]
        if comps:
            # one grouping for every component (its keys are factorized once); each column is
            # still summed on its own. min_count=1: a KPI that does not exist for a slice
            # (sessions by category) stays NaN
            g = k.groupby(["date", "dimension", "segment"], observed=True)
            sums = pd.concat({c: g[c].sum(min_count=1) for c in comps}, axis=1)
            if gaps:  # a day with missing periods: its observed mean times a day's periods
                seen = pd.concat({c: g[c].count() for c in comps}, axis=1)
                per_day = ppd = int(g.size().max())  # the grid's periods in a whole day
                part = (seen > 0) & (seen < per_day)
                sums = sums.where(~part, sums * per_day / seen.where(part))
            avg = [c for c in comps if c in self.means]
            if avg:  # gauges: a day is the mean of its observed periods (NaN: none observed)
                sums[avg] = pd.concat({c: g[c].mean() for c in avg}, axis=1)
            # sorted: unstack orders the columns by first appearance, so a slice that first
            # trades after the first day (a country on a real transactions file) came after
            # "overall" and its dimension was no longer one run (driver_arrays needs runs)
            wide_all = sums.unstack(["dimension", "segment"]).sort_index(axis=1)
            for comp in comps:
                wide = wide_all[comp]
                self.values[comp] = wide.dropna(axis=1, how="all").astype(float).reindex(
                    self.dates)
        self.expected: dict[str, pd.DataFrame] = {}
        if detections is not None and not detections.empty and "expected" in detections.columns:
            d = detections[["kpi", "date", "dimension", "segment", "expected"]]
            d = d.loc[np.isfinite(pd.to_numeric(d["expected"], errors="coerce"))]
            if not d.empty:
                stamp = pd.to_datetime(d["date"])
                d = d.assign(date=stamp if gaps else stamp.dt.normalize(),
                             dimension=d["dimension"].astype(str), segment=d["segment"].astype(str),
                             expected=d["expected"].astype(float))
                # several detectors judge the same point: their median is the consensus baseline
                med = d.groupby(["kpi", "date", "dimension", "segment"], observed=True)[
                    "expected"
                ].median()
                if gaps:  # a --kpis file's periods: a day of them as its values are read
                    med = self._expected_days(med, ppd)
                for kpi, part in med.groupby(level="kpi", observed=True):
                    if str(kpi) in self.values:
                        self.expected[str(kpi)] = (
                            part.droplevel("kpi")
                            .unstack(["dimension", "segment"])
                            .reindex(index=self.dates, columns=self.values[str(kpi)].columns)
                        )
        self.periods_per_day = ppd
        self._arr = {c: w.to_numpy() for c, w in self.values.items()}
        self._exp = {c: w.to_numpy() for c, w in self.expected.items()}
        # incidents and episodes share windows: results are memoized (treat them as read-only)
        self._sums: dict[tuple, np.ndarray] = {}
        self._cols: dict[str, dict[tuple[str, str], int]] = {}
        self.explained: dict[tuple, DriverResult] = {}

    @property
    def subdaily(self) -> bool:
        """A --kpis file with several periods a day: its detectors' expected values follow a
        sustained move within hours (their rolling windows count periods, 24 of them two hours
        of a 5-minute file), so over a day they absorb an incident; ``expected="auto"`` prefers
        the same-weekday baseline there (``window_table``)."""
        return self.periods_per_day > 1

    def _expected_days(self, med: pd.Series, ppd: int) -> pd.Series:
        """The detectors' expected values of a --kpis file's periods as days, each read like the
        actual day beside it (its periods' mean; a count's times a whole day's periods): the
        median over the periods of a 5-minute count's day was its scale over 288, and a slice
        driver of such a file read +27,894 % against it."""
        idx = med.index
        keys = [idx.get_level_values("kpi"), idx.get_level_values("date").normalize(),
                idx.get_level_values("dimension"), idx.get_level_values("segment")]
        day = med.groupby(keys, observed=True).mean()
        day.index.names = ["kpi", "date", "dimension", "segment"]
        counts = ~day.index.get_level_values("kpi").isin(list(self.means))
        return day.where(~counts, day * ppd)

    def _gather(self, arr: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Rows ``days`` (day numbers from the first date, any shape) of ``arr``; NaN outside."""
        n = arr.shape[0]
        out = (
            arr[np.clip(days, 0, max(n - 1, 0))]
            if n
            else np.full((*days.shape, arr.shape[1]), np.nan)
        )
        out[(days < 0) | (days >= n)] = np.nan
        return out

    def segments(self, dimension: str) -> list[str]:
        cols = self.values.get("revenue", next(iter(self.values.values()))).columns
        return sorted(str(s) for d, s in cols if d == dimension)

    def window_sums(self, comp: str, start: pd.Timestamp, end: pd.Timestamp, source: str,
                    baseline_weeks: int = 4, shift_days: int | None = None) -> pd.Series:
        """Window sum per (dimension, segment) of one component (a gauge's, ``means``: the mean
        of its days).

        source: "actual" · "detector" (detections' expected; NaN where missing) · "baseline"
        (median of the same weekday in the ``baseline_weeks`` weeks before ``start`` and the
        ``baseline_weeks`` weeks after ``end``; only those before near the data's end) ·
        "trailing" (the weeks before only, for judging the latest days) · "shift"
        (the values ``shift_days`` earlier, for week-over-week style comparisons).
        """
        wide = self.values.get(comp)
        if wide is None:
            return pd.Series(dtype=float)
        return pd.Series(self.window_array(comp, start, end, source, baseline_weeks, shift_days),
                         index=wide.columns)

    def window_array(self, comp: str, start: pd.Timestamp, end: pd.Timestamp, source: str,
                     baseline_weeks: int = 4, shift_days: int | None = None) -> np.ndarray:
        """``window_sums`` as an array over the columns of ``values[comp]`` (empty when the
        component is unknown); memoized (treat it as read-only)."""
        key = (comp, pd.Timestamp(start), pd.Timestamp(end), source,
               baseline_weeks if source in ("baseline", "trailing") else 0,
               shift_days if source == "shift" else None)
        if key not in self._sums:
            if comp not in self.values:
                self._sums[key] = np.empty(0)
            else:
                per_day, min_count = self.per_day(comp, start, end, source, baseline_weeks,
                                                  shift_days)
                if comp in self.means:  # a gauge's window: the mean of its (observed) days
                    self._sums[key] = _mean(per_day, min_count)
                    return self._sums[key]
                total = _sum(per_day, min_count)
                if self._grid is not None and source in ("actual", "shift"):
                    # grid days missing: the observed days' mean over the window's grid days
                    n = self._grid_days(start, end,
                                        int(shift_days or 7) if source == "shift" else 0)
                    seen = (~np.isnan(per_day)).sum(axis=0)
                    total = np.where((seen > 0) & (seen < n), total * n / np.maximum(seen, 1),
                                     total)
                self._sums[key] = total
        return self._sums[key]

    def step_days(self) -> int:
        """Days between the rows of a --kpis file's grid (7 for a weekly file; 1 for a daily or
        sub-daily one, and for store data): the days its last row stands for."""
        if self._grid is None:
            return 1
        rows = np.flatnonzero(self._grid)
        return max(1, int(np.median(np.diff(rows)))) if len(rows) > 1 else 1

    def between_rows(self, days: np.ndarray | None = None) -> np.ndarray | None:
        """Which ``days`` (day numbers from the first date; default: every date, and any number,
        before or past the data) fall between a coarser-than-daily --kpis file's rows (a weekly
        file's six other days of each week): no period lies there, so nothing is missing (a
        grid day without a value is). None for daily and sub-daily files and for store data."""
        step = self.step_days()
        if self._grid is None or step <= 1:
            return None
        first = int(np.flatnonzero(self._grid)[0])
        at = np.arange(len(self.dates)) if days is None else np.asarray(days)
        return (at - first) % step != 0

    def _grid_days(self, start: pd.Timestamp, end: pd.Timestamp, lag: int) -> int:
        """Grid days in the window ``lag`` days before [start, end]."""
        lo = (pd.Timestamp(start) - self.dates[0]).days - lag if len(self.dates) else 0
        hi = lo + (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
        return int(self._grid[max(lo, 0):max(hi, 0)].sum()) if self._grid is not None else 0

    def per_day(self, comp: str, start: pd.Timestamp, end: pd.Timestamp, source: str,
                baseline_weeks: int = 4, shift_days: int | None = None) -> tuple[np.ndarray, int]:
        """Daily values (days x slices, columns as ``values[comp]``) of one source over the
        window, and how many days a window sum needs (1, or all of them for baselines)."""
        n_days = (pd.Timestamp(end) - pd.Timestamp(start)).days + 1
        days = (pd.Timestamp(start) - self.dates[0]).days + np.arange(n_days) if len(self.dates) \
            else np.arange(n_days) - n_days
        arr = self._arr[comp]
        if source == "actual":
            return self._gather(arr, days), 1
        # a baseline needs every day of the window, but a weekly file's days between its rows
        # hold no period (its baselines and kpi_changes were all null)
        between = self.between_rows(days)
        need = n_days if between is None else n_days - int(between.sum())
        if source == "detector":
            if comp not in self._exp:
                return np.full((n_days, arr.shape[1]), np.nan), need
            return self._gather(
                self._exp[comp], days
            ), need  # NaN unless every day has a baseline
        if source == "shift":
            return self._gather(arr, days - int(shift_days or 7)), 1
        # same-weekday baseline: day j of the window looks back 7*(j//7 + k) days, k = 1..K, and
        # ("baseline", centered) as far forward past the window's end; a centered median cancels
        # a linear trend or seasonal slope that a trailing one would book as part of the change
        lags = -trailing_lags(n_days, baseline_weeks)
        if source == "baseline":
            fwd = 7 * ((n_days - 1 - np.arange(n_days)) // 7 + 1)
            lags = np.concatenate([lags, np.stack([fwd + 7 * k for k in range(baseline_weeks)])])
        # (K or 2K, days, slices); NaN past the data's ends
        stack = self._gather(arr, days[None, :] + lags)
        return nanmedian0(stack), need

    def column(self, comp: str, dimension: str, segment: str) -> int | None:
        """Position of a slice among the columns of ``values[comp]``."""
        if comp not in self._cols:
            self._cols[comp] = {(str(d), str(s)): k
                                for k, (d, s) in enumerate(self.values[comp].columns)}
        return self._cols[comp].get((dimension, segment))


def trailing_lags(n_days: int, weeks: int) -> np.ndarray:
    """(weeks, n_days) days back from each day of a window to its same weekday in the ``weeks``
    weeks before the window: day j looks back 7 (j // 7 + k) days, k = 1..weeks."""
    back = 7 * (np.arange(n_days) // 7 + 1)
    return np.stack([back + 7 * k for k in range(weeks)])


def nanmedian0(stack: np.ndarray) -> np.ndarray:
    """``np.nanmedian(stack, axis=0)`` bit for bit, without numpy's masked-array path for short
    columns (a few weeks of a weekday here, the calibrator's 182-day windows): the mean of the
    two middle finite values (NaN where none is)."""
    if not stack.shape[0]:
        return np.full(stack.shape[1:], np.nan)
    srt = np.sort(stack, axis=0)  # NaN sorts last
    n = stack.shape[0] - np.isnan(stack).sum(axis=0)
    hi = n // 2
    lo = np.where(n % 2 == 1, hi, hi - 1)
    top = stack.shape[0] - 1
    pick = np.stack([np.clip(lo, 0, top), np.clip(hi, 0, top)])
    low, high = np.take_along_axis(srt, pick, axis=0)
    with np.errstate(invalid="ignore", over="ignore"):
        med = (low + high) / 2.0
    return np.where(n > 0, med, np.nan)


def _relative(kpi: str, a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    """Day by day, ``kpi`` from the component series ``a`` relative to ``b``, minus 1."""
    with np.errstate(all="ignore"):
        if kpi in RATIO_KPIS:
            num, den = RATIO_KPIS[kpi]
            return (a[num] / a[den]) / (b[num] / b[den]) - 1.0
        return a[kpi] / b[kpi] - 1.0


def daily_deviation(panel: SlicePanel, kpi: str, baseline_weeks: int = 4,
                    where: tuple[str, str] = ("overall", "all")) -> np.ndarray | None:
    """Relative deviation of ``kpi`` in one slice (``where``: dimension, segment; overall by
    default) on every day of the panel from the median of the same weekday ``baseline_weeks``
    weeks either side (the day itself excluded); memoized. None when the slice lacks the KPI."""
    key = ("daily_dev", kpi, baseline_weeks, where)
    if key in panel.explained:
        return panel.explained[key]
    comps = components(kpi)
    cols = [panel.column(c, *where) if c in panel.values else None for c in comps]
    if any(c is None for c in cols) or not len(panel.dates):
        return None
    days = np.arange(len(panel.dates))
    lags = np.array([7 * k * sgn for k in range(1, baseline_weeks + 1) for sgn in (-1, 1)])
    a, b = {}, {}
    for c, col in zip(comps, cols, strict=True):
        arr = panel._arr[c][:, [col]]
        a[c] = arr[:, 0]
        b[c] = nanmedian0(panel._gather(arr, days[None, :] + lags[:, None])[..., 0])
    dev = _relative(kpi, a, b)
    panel.explained[key] = dev
    return dev


def _rows_as_weeks(panel: SlicePanel, dev: np.ndarray, first_day: int) -> np.ndarray:
    """``dev`` (one value a day from panel day ``first_day`` on) with a weekly file's days
    between rows taking their row's value, so a run of rows is a run of days (peak_span and
    onset walk day by day: a change over three weekly rows was measured on one). A missing row's
    days stay NaN; daily data is returned as it is."""
    days = first_day + np.arange(len(dev))
    between = panel.between_rows(days)
    if between is None:
        return dev
    step = panel.step_days()
    return pd.Series(np.where(between, np.nan, dev)).ffill(limit=step - 1).to_numpy()


LATE_FLAG_DAYS = 7   # the detectors' longest window: how late a shock's first flag may come


def peak_span(panel: SlicePanel, kpi: str, start: pd.Timestamp, end: pd.Timestamp,
              baseline_weeks: int = 4, z: float = 2.0, z_extend: float = 1.0,
              share: float = 0.0, sign: int = 0, where: tuple[str, str] = ("overall", "all"),
              back: int = LATE_FLAG_DAYS, planned: Collection[pd.Timestamp] = ()
              ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Where ``kpi`` (overall, or in the slice ``where``) really deviated around [start, end]:
    its largest daily deviation in [start, end], if at least ``z`` robust standard deviations of
    the KPI's daily deviations, and the contiguous days around it deviating the same way by at
    least ``z_extend`` of them and ``share`` of the peak's deviation (hysteresis; whatever the
    incidents' edges were: detectors that smooth flag late, slice incidents trail on) — up to
    ``back`` days before ``start`` (a shock flagged a few days in was measured from the flag:
    an electronics stockout of 08-10 to 08-15 read 08-13 to 08-15), never over a ``planned``
    calendar day (Black Friday's lift joined the default world's fraud after it), and not past
    ``end``.
    None when nothing stands out (or the KPI is unknown). ``sign`` (+1 / -1) looks only at
    deviations that way (the direction the incidents flagged); 0 at both."""
    dev_all = daily_deviation(panel, kpi, baseline_weeks, where)
    if dev_all is None:
        return None
    finite = dev_all[np.isfinite(dev_all)]
    if len(finite) < 14:
        return None
    sigma = 1.4826 * float(np.median(np.abs(finite - np.median(finite))))
    i0 = (pd.Timestamp(start) - panel.dates[0]).days
    i1 = (pd.Timestamp(end) - panel.dates[0]).days
    if i0 < 0 or i1 >= len(dev_all) or i1 < i0:
        return None
    ib = max(0, i0 - back)   # the days before start the run may reach back to
    dev = np.nan_to_num(_rows_as_weeks(panel, dev_all, 0)[ib:i1 + 1], nan=0.0)
    k0 = i0 - ib             # start's position in dev
    inside = dev[k0:]
    p = k0 + int(np.argmax(np.abs(inside) if not sign else np.clip(inside * sign, 0.0, None)))
    if abs(dev[p]) < z * sigma:
        return None
    keep = (np.sign(dev) == np.sign(dev[p])) & (
        np.abs(dev) >= max(z_extend * sigma, share * abs(dev[p]))
    )
    # before the incidents' start a day joins only as clearly as a peak would (z, not z_extend):
    # at 1 sigma a noise day of the same sign joined shocks flagged on time
    keep[:k0] &= np.abs(dev[:k0]) >= max(z * sigma, share * abs(dev[p]))
    if k0 and len(planned):
        before = pd.Timestamp(start) - pd.to_timedelta(np.arange(k0, 0, -1), unit="D")
        keep[:k0] &= ~before.isin(pd.DatetimeIndex(list(planned)))
    lo = p
    while lo > 0 and keep[lo - 1]:
        lo -= 1
    hi = p
    while hi < len(dev) - 1 and keep[hi + 1]:
        hi += 1
    first = pd.Timestamp(start) - pd.Timedelta(days=k0)
    return first + pd.Timedelta(days=lo), first + pd.Timedelta(days=hi)


def onset(panel: SlicePanel, kpi: str, lo: pd.Timestamp, start: pd.Timestamp, end: pd.Timestamp,
          sign: int, baseline_weeks: int = 4, share: float = 0.25,
          where: tuple[str, str] = ("overall", "all")) -> pd.Timestamp | None:
    """Where a change that stayed began: against the same weekdays of the weeks before ``lo``
    (a baseline the change cannot be in), the largest deviation the ``sign`` way in [start, end]
    and the first day (not before ``lo``) of the unbroken run of days up to it that deviate that
    way by at least ``share`` of it (a ramp's early days count once they reach that share).
    None when the KPI is unknown in the slice or nothing deviates that way."""
    comps = components(kpi)
    cols = [panel.column(c, *where) if c in panel.values else None for c in comps]
    if any(c is None for c in cols) or not len(panel.dates) or not sign:
        return None
    a, b = {}, {}
    for c, col in zip(comps, cols, strict=True):
        a[c] = panel.per_day(c, lo, end, "actual")[0][:, col]
        b[c] = panel.per_day(c, lo, end, "trailing", baseline_weeks)[0][:, col]
    rel = _rows_as_weeks(panel, np.asarray(_relative(kpi, a, b), dtype=float),
                         (pd.Timestamp(lo) - panel.dates[0]).days)
    dev = np.nan_to_num(rel * sign, nan=0.0)
    k0 = (pd.Timestamp(start) - pd.Timestamp(lo)).days
    if not 0 <= k0 < len(dev) or dev[k0:].max() <= 0:
        return None
    p = k0 + int(np.argmax(dev[k0:]))
    keep = dev >= share * dev[p]
    first = p
    while first > 0 and keep[first - 1]:
        first -= 1
    return pd.Timestamp(lo) + pd.Timedelta(days=first)


def _sum(vals: np.ndarray, min_count: int) -> np.ndarray:
    """Sum over axis 0 (days); NaN where fewer than ``min_count`` days have a value."""
    ok = (~np.isnan(vals)).sum(axis=0)
    return np.where(ok >= min_count, np.nansum(vals, axis=0), np.nan)


def _mean(vals: np.ndarray, min_count: int) -> np.ndarray:
    """Mean over axis 0 (days) of the days with a value; NaN where fewer than ``min_count``."""
    ok = (~np.isnan(vals)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok >= max(min_count, 1), np.nansum(vals, axis=0) / ok, np.nan)


def window_table(panel: SlicePanel, kpi: str, start: pd.Timestamp, end: pd.Timestamp,
                 expected: str = "auto", baseline_weeks: int = 4,
                 shift_days: int | None = None) -> pd.DataFrame:
    """Actual and expected window sums of the KPI's components per slice.

    Returns one row per (dimension, segment) with columns ``a_<comp>``, ``e_<comp>`` and
    ``source``. ``expected``: "auto" (detectors where they cover a whole dimension, else baseline),
    "baseline", "detector" or "shift".

    "auto" on a sub-daily file (``panel.subdaily``) is the other way round: the same-weekday
    baseline where it covers a whole dimension, else the detectors. A detector's expected value
    there tracks the series period by period and catches up with a sustained outage within about
    an hour, so a day's expected sum absorbs the incident it should measure (a host down to 5 %
    for 5 hours of a 5-minute count read +1.3 % against it, against -31 % against the baseline);
    the baseline's days lie outside the window (a window cannot contaminate its own baseline). The
    detectors remain the fallback for a file too short for a baseline. Daily files and store data
    (one period a day) keep the detectors first: their expected value is a day's own forecast.
    """
    comps = components(kpi)
    if any(c not in panel.values for c in comps):
        return pd.DataFrame()
    act = pd.DataFrame({f"a_{c}": panel.window_sums(c, start, end, "actual") for c in comps})
    if expected == "shift":
        exp = pd.DataFrame(
            {
                f"e_{c}": panel.window_sums(c, start, end, "shift", shift_days=shift_days)
                for c in comps
            }
        )
        src = pd.Series("shift", index=exp.index)
    else:
        base = pd.DataFrame({f"e_{c}": panel.window_sums(c, start, end, "baseline", baseline_weeks)
                             for c in comps})
        exp, src = base, pd.Series("baseline", index=base.index)
        if expected in ("auto", "detector"):
            det = pd.DataFrame(
                {f"e_{c}": panel.window_sums(c, start, end, "detector") for c in comps}
            )
            # a dimension uses the detectors only if they cover all its slices (consistent sums)
            covered = det.notna().all(axis=1).groupby(level="dimension").transform("all")
            if expected == "detector":
                covered = pd.Series(True, index=det.index)
            elif panel.subdaily:  # the baseline first (docstring): detectors where it is missing
                based = base.notna().all(axis=1).groupby(level="dimension").transform("all")
                covered = covered & ~based
            exp = base.copy()
            exp.loc[covered] = det.loc[covered]
            src = src.where(~covered, "detector")
    out = act.join(exp, how="outer")
    out["source"] = src.reindex(out.index).fillna("baseline")
    out.index = out.index.set_names(["dimension", "segment"])
    return out.reset_index()


def attribute(table: pd.DataFrame, kpi: str) -> pd.DataFrame:
    """Contribution of every slice to its dimension's change of ``kpi``.

    Additive KPI: contribution = actual - expected. Ratio KPI R = N/D: contribution of slice i =
    ((N_a,i - R_e D_a,i) - (N_e,i - R_e D_e,i)) / sum D_a, which adds up to R_a - R_e of the
    dimension. ``share_of_expected`` is the slice's part of the expected numerator, so a uniform
    change gives every slice share_of_change == share_of_expected (concentration 0).
    """
    if table.empty:
        return table.assign(actual=[], expected=[], change=[], share_of_change=[],
                            share_of_expected=[], concentration=[], relative_change=[])
    t = table.copy()
    if kpi in RATIO_KPIS:
        num, den = RATIO_KPIS[kpi]
        t = t.dropna(subset=[f"a_{num}", f"a_{den}", f"e_{num}", f"e_{den}"])
        g = t.groupby("dimension", sort=False)
        r_e = g[f"e_{num}"].transform("sum") / g[f"e_{den}"].transform("sum")
        d_a_tot = g[f"a_{den}"].transform("sum")
        t["change"] = (
            (t[f"a_{num}"] - r_e * t[f"a_{den}"]) - (t[f"e_{num}"] - r_e * t[f"e_{den}"])
        ) / d_a_tot
        with np.errstate(all="ignore"):
            t["actual"] = t[f"a_{num}"] / t[f"a_{den}"]
            t["expected"] = t[f"e_{num}"] / t[f"e_{den}"]
        weight = t[f"e_{num}"]
    else:
        t = t.dropna(subset=[f"a_{kpi}", f"e_{kpi}"])
        t["actual"], t["expected"] = t[f"a_{kpi}"], t[f"e_{kpi}"]
        t["change"] = t["actual"] - t["expected"]
        weight = t["expected"]
    g = t.groupby("dimension", sort=False)
    total = g["change"].transform("sum")
    gross = t["change"].abs().groupby(t["dimension"]).transform("sum")
    # when slices cancel each other out, shares of a near-zero total would explode
    denom = np.where(
        total.abs() >= 0.5 * gross, total, np.sign(total.where(total != 0, 1.0)) * gross
    )
    with np.errstate(all="ignore"):
        t["share_of_change"] = np.where(denom != 0, t["change"] / denom, 0.0)
        t["share_of_expected"] = weight / weight.groupby(t["dimension"]).transform("sum")
        t["relative_change"] = np.where(
            t["expected"] != 0, t["actual"] / t["expected"] - 1.0, np.nan
        )
    t["concentration"] = t["share_of_change"] - t["share_of_expected"]
    keep = ["dimension", "segment", "actual", "expected", "change", "share_of_change",
            "share_of_expected", "concentration", "relative_change", "source"]
    return t[[c for c in keep if c in t.columns]].reset_index(drop=True)


@dataclass
class DriverResult:
    """Ranked drivers of one change (plain data; the insights package turns it into models)."""

    drivers: list[dict[str, Any]]  # ranked across dimensions (see ``rank``)
    breakdown: dict[
        str, list[dict[str, Any]]
    ]  # per dimension, ranked, small ones folded into "other"
    scope: str                             # "concentrated" | "broad" | "unknown"
    top: dict[str, Any] | None             # the first driver when concentrated
    focus: float | None = None  # see ``focus``, of the first driver
    source: str = "baseline"  # where "expected" came from: baseline | detector | shift | mixed


def rank(attr: pd.DataFrame, top_k: int = 5, min_share: float = 0.05,
         focus_min: float = 0.5) -> DriverResult:
    """Rank slices by concentration (ties: dimension order, then name) and fold small ones.

    The change is "concentrated" when the first driver carries at least half of it and its
    ``focus`` reaches ``focus_min`` (the rest of its dimension moved much less); else "broad".
    """
    if attr.empty:
        return DriverResult([], {}, "unknown", None, None, "none")
    order = {d: i for i, d in enumerate((*SLICE_DIMENSIONS, PAIR_DIMENSION))}
    a = attr.loc[attr["dimension"] != "overall"]
    # a dimension with one value (one channel, one country) says nothing the total does not
    a = a.loc[a.groupby("dimension", sort=False)["segment"].transform("nunique") > 1]
    pairs = a.loc[a["dimension"] == PAIR_DIMENSION, "segment"].str.split(PAIR_SEP, n=1, expand=True)
    if len(pairs) and (pairs[0].nunique() < 2 or pairs[1].nunique() < 2):
        a = a.loc[
            a["dimension"] != PAIR_DIMENSION
        ]  # one channel (or country): a pair is its other part
    if a.empty:  # overall series only (e.g. an external KPI file): nothing to attribute to
        return DriverResult([], {}, "unknown", None, None, "none")
    a = a.assign(_dim=a["dimension"].map(order).fillna(len(order)))
    a = a.sort_values(
        ["concentration", "_dim", "segment"], ascending=[False, True, True], kind="mergesort"
    )
    # a listed driver must carry more of the change than its size explains, and a pair only
    # when it explains more than its parts: its concentration beats both its channel's and its
    # country's (a channel-wide change puts the channel first, not its busiest country pair)
    cand = a.loc[(a["share_of_change"].abs() >= min_share) & (a["concentration"] >= 0.05)]
    conc = {
        (d, v): c for d, v, c in zip(a["dimension"], a["segment"], a["concentration"], strict=True)
    }
    drivers: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in _records(cand.head(4 * top_k)):
        if len(drivers) == top_k:
            break
        if r["dimension"] == PAIR_DIMENSION:
            parts = r["value"].split(PAIR_SEP)
            best_part = max(
                (
                    conc.get((dim, p), -math.inf)
                    for dim, p in zip(("channel", "country"), parts, strict=False)
                ),
                default=-math.inf,
            )
            if any(p in seen for p in parts) or r["concentration"] <= best_part + PAIR_MARGIN:
                continue
        seen.add(r["value"])
        drivers.append(r)
    # per dimension: ranked by share of the change; beyond top_k or below min_share -> "other"
    b = a.sort_values(
        ["dimension", "share_of_change", "segment"], ascending=[True, False, True], kind="mergesort"
    )
    big = (b["share_of_change"].abs() >= min_share) & (
        b.groupby("dimension", sort=False).cumcount() < top_k
    )
    breakdown: dict[str, list[dict[str, Any]]] = {}
    for r in _records(b.loc[big]):
        breakdown.setdefault(r["dimension"], []).append(r)
    small = b.loc[~big]
    if len(small):
        g = small.groupby("dimension", sort=True)
        folded = g[
            [
                "actual",
                "expected",
                "change",
                "share_of_change",
                "share_of_expected",
                "concentration",
            ]
        ].sum()
        folded["n_folded"] = g.size()
        for dim, r in zip(folded.index, folded.to_dict(orient="records"), strict=True):
            breakdown.setdefault(str(dim), []).append(
                {
                    "dimension": str(dim),
                    "value": "other",
                    **{k: float(v) for k, v in r.items() if k != "n_folded"},
                    "relative_change": None,
                    "n_folded": int(r["n_folded"]),
                }
            )
    breakdown = dict(sorted(breakdown.items()))
    top_row = drivers[0] if drivers else None
    f = focus(top_row["share_of_change"], top_row["share_of_expected"]) if top_row else None
    scope = (
        "concentrated"
        if f is not None and f >= focus_min and top_row["share_of_change"] >= 0.5
        else "broad"
    )
    srcs = set(a["source"].astype(str)) if "source" in a.columns else {"baseline"}
    source = srcs.pop() if len(srcs) == 1 else "mixed"
    return DriverResult(
        drivers, breakdown, scope, top_row if scope == "concentrated" else None, f, source
    )


PAIR_KPIS = ("sessions", "orders")  # counts: additive over pairs, no heavy-tailed baskets
PAIR_MIN_CHANGE = 0.15  # the slice itself moved at least this much (relative) on that KPI …
PAIR_SHARE = 0.6        # … one of its pairs carries at least this share of the move …
PAIR_FOCUS = 0.6        # … and the rest of the slice moved at most 40 % as much (relatively)
COUNT_Z = 2.0  # a count's move within this many Poisson sigmas (sqrt of its baseline) is chance


def count_moved(actual: float, baseline: float) -> bool:
    """A count moved beyond chance: |actual - baseline| >= ``COUNT_Z`` * sqrt(baseline) (a
    baseline below 1 counts as 1: 2 orders expected and 0 seen is no evidence of a change)."""
    return (math.isfinite(actual) and math.isfinite(baseline)
            and abs(actual - baseline) >= COUNT_Z * math.sqrt(max(baseline, 1.0)))


def pair_within(panel: SlicePanel, start: pd.Timestamp, end: pd.Timestamp, dimension: str,
                segment: str, baseline_weeks: int = 4) -> str | None:
    """The channel x country pair inside a channel or a country that carries its change over
    [start, end], or None when the change is the whole slice's.

    Read inside the slice, against the same-weekday baseline of its pairs (which add up to it):
    on the count KPI that moved the slice most (``PAIR_KPIS``, at least ``PAIR_MIN_CHANGE``),
    the pair carrying the largest part of the move, kept when that part is at least
    ``PAIR_SHARE``, its own count moved beyond chance (``count_moved``) and the rest of the
    slice moved little (its focus, as in ``focus``, at least ``PAIR_FOCUS``). Ranking across
    dimensions cannot make this call: a pair's share of the change of ~80 noisy pairs is
    diluted, while its parent's is not. Without the count test a pair of a few orders was named:
    random world 7's revenue incident in country CA (2025-02-15; the truth a country-wide
    level shift) became 'sessions in channel x country email / CA down -30.6 %: channel
    outage', picked on the country's orders, 16 against 22 expected, 7 of them email's
    against 12.5 (within 2 Poisson sigmas)."""
    if dimension not in ("channel", "country"):
        return None
    side = 0 if dimension == "channel" else 1
    best: tuple[float, str, float] | None = None  # (|relative move|, pair, focus) of the best KPI
    for kpi in PAIR_KPIS:
        if kpi not in panel.values:
            continue
        rows, pos = driver_arrays.rows_of(panel, (kpi,))
        idx = [i for i, (d, s) in enumerate(rows)
               if d == PAIR_DIMENSION and s.split(PAIR_SEP)[side:side + 1] == [segment]]
        a = driver_arrays.aligned(panel, kpi, pos[kpi], start, end, "actual")[idx]
        e = driver_arrays.aligned(panel, kpi, pos[kpi], start, end, "baseline",
                                  baseline_weeks)[idx]
        ok = np.isfinite(a) & np.isfinite(e)
        if ok.sum() < 2:
            continue
        a, e, names = a[ok], e[ok], [rows[i][1] for i, k in zip(idx, ok, strict=True) if k]
        tot_a, tot_e = float(a.sum()), float(e.sum())
        if tot_e <= 0 or tot_a == tot_e:
            continue
        rel = tot_a / tot_e - 1.0
        if abs(rel) < PAIR_MIN_CHANGE or (best is not None and abs(rel) <= best[0]):
            continue
        share = (a - e) / (tot_a - tot_e)
        k = int(np.argmax(share))
        rest_e = tot_e - e[k]
        if e[k] <= 0 or rest_e <= 0 or a[k] == e[k] or not count_moved(a[k], e[k]):
            best = (abs(rel), "", -math.inf)
            continue
        f = 1.0 - ((tot_a - a[k]) / rest_e - 1.0) / (a[k] / e[k] - 1.0)
        best = (abs(rel), names[k] if share[k] >= PAIR_SHARE else "", f)
    if best is None or not best[1] or best[2] < PAIR_FOCUS:
        return None
    return best[1]


def slice_driver(panel: SlicePanel, kpi: str, start: pd.Timestamp, end: pd.Timestamp,
                 dimension: str, segment: str, expected: str = "auto",
                 baseline_weeks: int = 4) -> dict[str, Any] | None:
    """The attribution record (as in ``DriverResult.drivers``) of one named slice for the change
    of ``kpi`` over [start, end]; None when the slice has no such KPI."""
    attr = driver_arrays.attribute(panel, kpi, start, end, expected, baseline_weeks)
    if attr is None:
        return None
    # attribution is per dimension, so the slice's row of the whole table is its row
    hit = [i for i, (d, s) in enumerate(zip(attr.dims, attr.segs, strict=True))
           if d == dimension and s == segment]
    return attr.record(hit[0]) if hit else None


def focus(share_of_change: float, share_of_expected: float) -> float | None:
    """1 - (relative change of the rest of the dimension) / (relative change of the slice).

    Near 1 when the rest did not move (a confined change, whatever the slice's size), near 0 when
    everything moved alike, negative when the rest moved more. From shares alone: a slice's
    relative change is proportional to share_of_change / share_of_expected.
    """
    sc, se = float(share_of_change), float(share_of_expected)
    if not (0 < se < 1) or sc == 0:
        return None
    return 1.0 - ((1.0 - sc) / (1.0 - se)) / (sc / se)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Driver dicts from attribution rows (plain floats; relative change None when undefined)."""
    out = []
    for r in df.to_dict(orient="records"):
        rel = float(r["relative_change"])
        out.append(
            {
                "dimension": str(r["dimension"]),
                "value": str(r["segment"]),
                "actual": float(r["actual"]),
                "expected": float(r["expected"]),
                "change": float(r["change"]),
                "share_of_change": float(r["share_of_change"]),
                "share_of_expected": float(r["share_of_expected"]),
                "concentration": float(r["concentration"]),
                "relative_change": rel if np.isfinite(rel) else None,
                "n_folded": 0,
            }
        )
    return out


def explain(panel: SlicePanel, kpi: str, start: pd.Timestamp, end: pd.Timestamp, *,
            expected: str = "auto", baseline_weeks: int = 4, shift_days: int | None = None,
            top_k: int = 5, min_share: float = 0.05, focus_min: float = 0.5,
            pairs: bool = True) -> DriverResult:
    """Drivers of the change of ``kpi`` over [start, end] (see module docstring): the same
    result as ``rank(attribute(window_table(...)))``, computed on arrays
    (``analytics.driver_arrays``)."""
    key = (kpi, pd.Timestamp(start), pd.Timestamp(end), expected, baseline_weeks, shift_days, top_k,
           min_share, focus_min, pairs)
    if key not in panel.explained:
        attr = driver_arrays.attribute(panel, kpi, start, end, expected, baseline_weeks,
                                       shift_days)
        if not pairs:
            attr = driver_arrays.without_pairs(attr)
        panel.explained[key] = driver_arrays.rank(attr, top_k, min_share, focus_min)
    return panel.explained[key]


# --- signature: revenue = sessions x conversion x AOV --------------------------------------------

def log_components(actual: dict[str, float], expected: dict[str, float]) -> dict[str, float] | None:
    """Log-changes of traffic, conversion and basket whose sum is the log-change of revenue.

    ``actual`` / ``expected``: window sums of sessions, orders, revenue. None when any is missing
    or not positive.
    """
    for k in ("sessions", "orders", "revenue"):
        a, e = actual.get(k), expected.get(k)
        if a is None or e is None or not (np.isfinite(a) and np.isfinite(e) and a > 0 and e > 0):
            return None
    s = math.log(actual["sessions"] / expected["sessions"])
    o = math.log(actual["orders"] / expected["orders"])
    r = math.log(actual["revenue"] / expected["revenue"])
    return {"traffic": s, "conversion": o - s, "basket": r - o}


def classify_signature(comp: dict[str, float] | None, min_share: float = 0.6,
                       negligible: float = 0.005) -> str:
    """'traffic-driven' | 'conversion-driven' | 'basket-driven' | 'mix' from log components
    ('undetermined' without them: no sessions / orders / revenue to decompose).

    A component carrying ``min_share`` of the summed absolute log-changes names the signature.
    """
    if not comp:
        return "undetermined"
    mags = {k: abs(v) for k, v in comp.items()}
    tot = sum(mags.values())
    if tot < negligible:
        return "mix"
    name, big = max(mags.items(), key=lambda kv: (kv[1], kv[0]))
    return f"{name}-driven" if big / tot >= min_share else "mix"


def signature_from_effects(effects: dict[str, float], min_share: float = 0.6) -> str:
    """The same classification applied to realized relative effects (truth/events.json)."""
    try:
        comp = {"traffic": math.log1p(effects["sessions"]),
                "conversion": math.log1p(effects["conversion_rate"]),
                "basket": math.log1p(effects["aov"])}
    except (KeyError, TypeError, ValueError):
        return "undetermined"
    return classify_signature(comp, min_share)
