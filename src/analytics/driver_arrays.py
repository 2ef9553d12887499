"""``drivers.explain`` on plain arrays: the window table, attribution and ranking of
``analytics.drivers`` (the pandas reference ``window_table`` -> ``attribute`` -> ``rank``) over the
few dozen slices of a panel, with the same floats bit for bit and the same ranking.

Why a second implementation: a run explains a few hundred windows (incidents, episodes, summary
spans) over ~70 slices each; the pandas path spent ~30 ms per window in DataFrame, groupby and
``to_dict`` overhead, this one well under 1 ms. Group sums follow pandas' grouped ``sum``
(``group_sum``), in the same row order, so every number equals the reference's (the tests compare
the two on many windows); slices are few, so any per-group loop is over slices, never data rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shocklab.catalogue import PAIR_DIMENSION, PAIR_SEP, RATIO_KPIS, SLICE_DIMENSIONS

if TYPE_CHECKING:  # drivers imports this module; the names below are only annotations
    from .drivers import DriverResult, SlicePanel

_DIM_ORDER = {d: i for i, d in enumerate((*SLICE_DIMENSIONS, PAIR_DIMENSION))}
FIELDS = ("actual", "expected", "change", "share_of_change", "share_of_expected",
          "concentration", "relative_change")


@dataclass
class Attribution:
    """``drivers.attribute``'s rows as arrays (one entry per slice, in the table's row order,
    rows with a missing component left out)."""

    dims: list[str]
    segs: list[str]
    source: list[str]
    cols: dict[str, np.ndarray]  # FIELDS -> float array

    def __len__(self) -> int:
        return len(self.dims)

    def take(self, idx: np.ndarray | list[int]) -> Attribution:
        idx = np.asarray(idx, dtype=int)
        return Attribution([self.dims[i] for i in idx], [self.segs[i] for i in idx],
                           [self.source[i] for i in idx], {k: v[idx] for k, v in self.cols.items()})

    def record(self, i: int) -> dict[str, Any]:
        """One row as a driver dict (``drivers._records``' shape)."""
        rel = float(self.cols["relative_change"][i])
        return {"dimension": self.dims[i], "value": self.segs[i],
                **{k: float(self.cols[k][i]) for k in FIELDS[:-1]},
                "relative_change": rel if np.isfinite(rel) else None, "n_folded": 0}


def group_sum(values: np.ndarray, bounds: list[tuple[int, int]]) -> np.ndarray:
    """Per contiguous group ``values[lo:hi]``, the sum exactly as pandas' grouped ``sum`` over
    sorted group codes computes it, broadcast back to the rows: ``np.add.reduceat`` when no value
    is NaN, else compensated (Kahan) summation skipping NaN (0.0 when all are NaN)."""
    out = np.empty(len(values))
    if not len(values):
        return out
    if not np.isnan(values).any():
        with np.errstate(invalid="ignore"):   # inf + -inf is NaN, as in pandas, without the
            # RuntimeWarning a small store's week of no order printed on a --quiet run's stderr
            sums = np.add.reduceat(values, [lo for lo, _ in bounds])
        for (lo, hi), v in zip(bounds, sums, strict=True):
            out[lo:hi] = v
        return out
    vals = values.tolist()
    for lo, hi in bounds:  # groups are slices of one dimension: a few dozen values at most
        s = c = 0.0
        for v in vals[lo:hi]:
            if v == v:  # not NaN
                y = v - c
                t = s + y
                c = t - s - y
                if c != c:  # an infinite value: keep the infinity, not NaN
                    c = 0.0
                s = t
        out[lo:hi] = s
    return out


def _bounds(dims: list[str]) -> list[tuple[int, int]]:
    """Runs of equal dimension names (the table is sorted by dimension, so each is one run)."""
    out, lo = [], 0
    for k in range(1, len(dims) + 1):
        if k == len(dims) or dims[k] != dims[lo]:
            out.append((lo, k))
            lo = k
    return out


def _grouped(dims: list[str]) -> list[tuple[int, int]]:
    """Group bounds; the rows must be contiguous per dimension (checked: ``SlicePanel`` sorts
    its columns, so they are)."""
    b = _bounds(dims)
    if len({dims[lo] for lo, _ in b}) != len(b):
        raise ValueError("driver_arrays: rows are not grouped by dimension")
    return b


def rows_of(panel: SlicePanel, comps: tuple[str, ...]) -> tuple[list[tuple[str, str]],
                                                                dict[str, np.ndarray]]:
    """The table's rows for these components (the union of their slices, as the pandas table
    aligns them) and, per component, each row's column in ``panel.values[comp]`` (-1: none)."""
    key = ("rows", comps)
    if key not in panel.explained:
        idx = pd.DataFrame(
            {c: pd.Series(0.0, index=panel.values[c].columns) for c in comps}
        ).index
        pos = {c: panel.values[c].columns.get_indexer(idx) for c in comps}
        panel.explained[key] = ([(str(d), str(s)) for d, s in idx], pos)
    return panel.explained[key]


def aligned(panel: SlicePanel, comp: str, pos: np.ndarray, start: pd.Timestamp,
            end: pd.Timestamp, source: str, baseline_weeks: int = 4,
            shift_days: int | None = None) -> np.ndarray:
    """Window sums of ``comp`` on the table's rows (``rows_of``' positions; NaN: no such slice)."""
    arr = panel.window_array(comp, start, end, source, baseline_weeks, shift_days)
    return np.where(pos >= 0, arr[np.maximum(pos, 0)], np.nan) if len(arr) else \
        np.full(len(pos), np.nan)


def table(panel: SlicePanel, kpi: str, start: pd.Timestamp, end: pd.Timestamp,
          expected: str = "auto", baseline_weeks: int = 4, shift_days: int | None = None
          ) -> tuple[list[tuple[str, str]], dict[str, np.ndarray], dict[str, np.ndarray],
                     list[str]] | None:
    """``drivers.window_table`` as (rows, actual sums, expected sums, source per row); None
    where that table is empty (a component the panel lacks)."""
    from .drivers import components

    comps = components(kpi)
    if any(c not in panel.values for c in comps):
        return None
    rows, pos = rows_of(panel, comps)
    args = (start, end)
    act = {c: aligned(panel, c, pos[c], *args, "actual", baseline_weeks, None) for c in comps}
    if expected == "shift":
        exp = {c: aligned(panel, c, pos[c], *args, "shift", baseline_weeks, shift_days)
               for c in comps}
        return rows, act, exp, ["shift"] * len(rows)
    exp = {c: aligned(panel, c, pos[c], *args, "baseline", baseline_weeks, None) for c in comps}
    src = ["baseline"] * len(rows)
    if expected in ("auto", "detector"):
        det = {c: aligned(panel, c, pos[c], *args, "detector", baseline_weeks, None)
               for c in comps}
        if expected == "detector":
            covered = np.ones(len(rows), dtype=bool)
        else:  # a dimension uses the detectors only if they cover all its slices
            ok = np.logical_and.reduce([~np.isnan(det[c]) for c in comps])
            # sub-daily: the baseline first, the detectors where it is missing (window_table)
            based = np.logical_and.reduce([~np.isnan(exp[c]) for c in comps])
            dims = [d for d, _ in rows]
            covered = np.zeros(len(rows), dtype=bool)
            for d in set(dims):
                m = np.array([x == d for x in dims])
                covered[m] = bool(ok[m].all()) and not (panel.subdaily and bool(based[m].all()))
        exp = {c: np.where(covered, det[c], exp[c]) for c in comps}
        src = ["detector" if cv else "baseline" for cv in covered]
    return rows, act, exp, src


def attribute(panel: SlicePanel, kpi: str, start: pd.Timestamp, end: pd.Timestamp,
              expected: str = "auto", baseline_weeks: int = 4,
              shift_days: int | None = None) -> Attribution | None:
    """``drivers.attribute(drivers.window_table(...))`` as arrays, memoized per window; None
    where the table is empty."""
    key = ("attr", kpi, pd.Timestamp(start), pd.Timestamp(end), expected, baseline_weeks,
           shift_days)
    if key in panel.explained:
        return panel.explained[key]
    tab = table(panel, kpi, start, end, expected, baseline_weeks, shift_days)
    out = None
    if tab is not None:
        rows, act, exp, src = tab
        if kpi in RATIO_KPIS:
            num, den = RATIO_KPIS[kpi]
            a_n, a_d, e_n, e_d = act[num], act[den], exp[num], exp[den]
            keep = ~(np.isnan(a_n) | np.isnan(a_d) | np.isnan(e_n) | np.isnan(e_d))
        else:
            a_n, e_n = act[kpi], exp[kpi]
            keep = ~(np.isnan(a_n) | np.isnan(e_n))
        k = np.flatnonzero(keep)
        dims = [rows[i][0] for i in k]
        b = _grouped(dims)
        with np.errstate(all="ignore"):
            if kpi in RATIO_KPIS:
                a_n, a_d, e_n, e_d = a_n[k], a_d[k], e_n[k], e_d[k]
                r_e = group_sum(e_n, b) / group_sum(e_d, b)
                change = ((a_n - r_e * a_d) - (e_n - r_e * e_d)) / group_sum(a_d, b)
                actual, exp_v = a_n / a_d, e_n / e_d
            else:
                actual, exp_v = a_n[k], e_n[k]
                change = actual - exp_v
            weight = e_n if kpi in RATIO_KPIS else exp_v
            total = group_sum(change, b)
            gross = group_sum(np.abs(change), b)
            # when slices cancel each other out, shares of a near-zero total would explode
            denom = np.where(np.abs(total) >= 0.5 * gross, total,
                             np.sign(np.where(total != 0, total, 1.0)) * gross)
            share = np.where(denom != 0, change / denom, 0.0)
            share_e = weight / group_sum(weight, b)
            rel = np.where(exp_v != 0, actual / exp_v - 1.0, np.nan)
        out = Attribution(dims, [rows[i][1] for i in k], [src[i] for i in k], {
            "actual": actual, "expected": exp_v, "change": change, "share_of_change": share,
            "share_of_expected": share_e, "concentration": share - share_e,
            "relative_change": rel})
    panel.explained[key] = out
    return out


def _codes(values: list[str]) -> np.ndarray:
    """Sort codes of strings (Python's order: by code point)."""
    order = {v: i for i, v in enumerate(sorted(set(values)))}
    return np.array([order[v] for v in values], dtype=int)


def rank(attr: Attribution | None, top_k: int = 5, min_share: float = 0.05,
         focus_min: float = 0.5) -> DriverResult:
    """``drivers.rank`` on an ``Attribution`` (same drivers, breakdown, scope, focus)."""
    from .drivers import PAIR_MARGIN, DriverResult, focus

    if attr is None or not len(attr):
        return DriverResult([], {}, "unknown", None, None, "none")
    n_seg: dict[str, int] = {}
    for d in attr.dims:
        n_seg[d] = n_seg.get(d, 0) + 1  # (dimension, segment) rows are unique
    keep = [i for i, d in enumerate(attr.dims) if d != "overall" and n_seg[d] > 1]
    pair_rows = [i for i in keep if attr.dims[i] == PAIR_DIMENSION]
    if pair_rows:
        parts = [attr.segs[i].split(PAIR_SEP, 1) for i in pair_rows]
        if len({p[0] for p in parts}) < 2 or len({p[1] for p in parts if len(p) > 1}) < 2:
            keep = [i for i in keep if attr.dims[i] != PAIR_DIMENSION]  # one channel or country
    if not keep:  # overall series only (e.g. an external KPI file): nothing to attribute to
        return DriverResult([], {}, "unknown", None, None, "none")
    a = attr.take(keep)
    conc, share = a.cols["concentration"], a.cols["share_of_change"]
    seg_codes = _codes(a.segs)
    dim_order = np.array([_DIM_ORDER.get(d, len(_DIM_ORDER)) for d in a.dims])
    order = np.lexsort((seg_codes, dim_order, -conc))  # stable; NaN concentration last
    with np.errstate(invalid="ignore"):
        is_cand = (np.abs(share) >= min_share) & (conc >= 0.05)
    cand = [i for i in order if is_cand[i]][: 4 * top_k]
    best = {(a.dims[i], a.segs[i]): float(conc[i]) for i in range(len(a))}
    drivers: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i in cand:
        if len(drivers) == top_k:
            break
        r = a.record(i)
        if r["dimension"] == PAIR_DIMENSION:
            parts = r["value"].split(PAIR_SEP)
            best_part = max((best.get((dim, p), -math.inf)
                             for dim, p in zip(("channel", "country"), parts, strict=False)),
                            default=-math.inf)
            if any(p in seen for p in parts) or r["concentration"] <= best_part + PAIR_MARGIN:
                continue
        seen.add(r["value"])
        drivers.append(r)
    # per dimension: ranked by share of the change; beyond top_k or below min_share -> "other"
    b_order = np.lexsort((seg_codes, -share, _codes(a.dims)))
    breakdown: dict[str, list[dict[str, Any]]] = {}
    small: dict[str, list[int]] = {}
    for i in b_order:
        d = a.dims[i]
        rows = breakdown.setdefault(d, [])
        if abs(share[i]) >= min_share and len(rows) + len(small.get(d, ())) < top_k:
            rows.append(a.record(i))
        else:
            small.setdefault(d, []).append(i)
    breakdown = {d: v for d, v in breakdown.items() if v}
    if small:  # the folded rows of every dimension summed as one column each (as pandas does:
        # a NaN anywhere in a column switches that column to the compensated sum)
        dims = sorted(small)
        idx = [i for d in dims for i in small[d]]
        bounds, lo = [], 0
        for d in dims:
            bounds.append((lo, lo + len(small[d])))
            lo += len(small[d])
        sums = {k: group_sum(a.cols[k][idx], bounds) for k in FIELDS[:-1]}
        for d, (lo, hi) in zip(dims, bounds, strict=True):
            breakdown.setdefault(d, []).append({"dimension": d, "value": "other",
                                                **{k: float(v[lo]) for k, v in sums.items()},
                                                "relative_change": None, "n_folded": hi - lo})
    breakdown = dict(sorted(breakdown.items()))
    top_row = drivers[0] if drivers else None
    f = focus(top_row["share_of_change"], top_row["share_of_expected"]) if top_row else None
    scope = ("concentrated" if f is not None and f >= focus_min
             and top_row["share_of_change"] >= 0.5 else "broad")
    srcs = set(a.source)
    return DriverResult(drivers, breakdown, scope, top_row if scope == "concentrated" else None,
                        f, srcs.pop() if len(srcs) == 1 else "mixed")


def without_pairs(attr: Attribution | None) -> Attribution | None:
    if attr is None:
        return None
    return attr.take([i for i, d in enumerate(attr.dims) if d != PAIR_DIMENSION])
