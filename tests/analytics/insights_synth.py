"""Hand-made KPI data with known answers for the insights / drivers / report tests.

A date x channel x country x category cube: sessions live on channel x country, orders split over
categories, revenue = orders x category AOV. Shocks multiply one factor (sessions, conversion or
AOV) inside one slice over a window, so the right driver and signature are known exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tests.configs import make_config

from analytics.context import DataSet, Incident, RunContext

CHANNELS = {"organic": 4000.0, "paid_search": 2500.0, "paid_social": 1500.0, "email": 800.0}
CONV = {"organic": 0.030, "paid_search": 0.025, "paid_social": 0.015, "email": 0.045}
COUNTRIES = {"US": 0.5, "DE": 0.3, "FR": 0.2}
CATEGORIES = {"apparel": (0.5, 60.0), "electronics": (0.2, 250.0), "home": (0.3, 90.0)}
WEEKDAY = np.array([1.0, 0.97, 0.95, 0.98, 1.05, 1.2, 1.15])


@dataclass
class Shock:
    start: str
    end: str
    factor: str                  # "sessions" | "conversion" | "aov"
    mult: float                  # e.g. 0.5 = -50 %
    scope: dict[str, str] = field(default_factory=dict)  # {} = everywhere


def make_cube(shocks: list[Shock] = (), start: str = "2025-01-01", days: int = 182,
              noise: float = 0.02, seed: int = 0, trend: float = 0.0) -> pd.DataFrame:
    """Long cube: date, channel, country, category, sessions (on the category 'apparel' rows only
    so they sum once), orders, revenue. ``trend``: the sessions' log change per day (a season)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=days, freq="D")
    idx = pd.MultiIndex.from_product([dates, list(CHANNELS), list(COUNTRIES), list(CATEGORIES)],
                                     names=["date", "channel", "country", "category"])
    c = idx.to_frame(index=False)
    wd = WEEKDAY[c["date"].dt.day_of_week.to_numpy()]
    c["sess_cc"] = (
        c["channel"].map(CHANNELS).astype(float) * c["country"].map(COUNTRIES).astype(float) * wd
        * np.exp(trend * (c["date"] - dates[0]).dt.days.to_numpy())
    )
    c["conv"] = c["channel"].map(CONV).astype(float)
    c["cat_share"] = c["category"].map({k: v[0] for k, v in CATEGORIES.items()}).astype(float)
    c["aov"] = c["category"].map({k: v[1] for k, v in CATEGORIES.items()}).astype(float)
    n = len(c)
    c["sess_cc"] *= 1 + noise * rng.standard_normal(n)
    c["conv"] *= 1 + noise * rng.standard_normal(n)
    c["aov"] *= 1 + noise * rng.standard_normal(n)
    col = {"sessions": "sess_cc", "conversion": "conv", "aov": "aov"}
    for s in shocks:
        m = (c["date"] >= s.start) & (c["date"] <= s.end)
        for k, v in s.scope.items():
            m &= c[k] == v
        c.loc[m, col[s.factor]] *= s.mult
    # sessions are per channel x country; one category row carries them so sums count them once
    c["sessions"] = np.where(c["category"] == "apparel", c["sess_cc"], 0.0)
    c["orders"] = c["sess_cc"] * c["conv"] * c["cat_share"]
    c["revenue"] = c["orders"] * c["aov"]
    return c[["date", "channel", "country", "category", "sessions", "orders", "revenue"]]


def kpis_from_cube(cube: pd.DataFrame) -> pd.DataFrame:
    """The contract's wide kpis_daily (overall / channel / country / category)."""
    parts = []
    for dim in ("overall", "channel", "country", "category"):
        keys = ["date"] if dim == "overall" else ["date", dim]
        g = cube.groupby(keys)[["sessions", "orders", "revenue"]].sum().reset_index()
        g["dimension"] = dim
        g["segment"] = "all" if dim == "overall" else g[dim].astype(str)
        if dim == "category":
            g["sessions"] = np.nan
        parts.append(g[["date", "dimension", "segment", "sessions", "orders", "revenue"]])
    k = pd.concat(parts, ignore_index=True)
    k["aov"] = k["revenue"] / k["orders"]
    k["conversion_rate"] = k["orders"] / k["sessions"]
    k["units"] = k["orders"] * 1.5
    return k.sort_values(["date", "dimension", "segment"], kind="mergesort").reset_index(drop=True)


def raw_tables(cube: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Minimal raw tables (one synthetic order row per cube cell, revenue carried in it) so that
    channel x country pairs can be built."""
    o = cube.loc[cube["orders"] > 0].reset_index(drop=True)
    orders = pd.DataFrame(
        {
            "order_id": np.arange(len(o)),
            "order_date": o["date"],
            "channel": o["channel"],
            "country": o["country"],
            "status": "completed",
            "net_revenue": o["revenue"],
        }
    )
    traffic = cube.groupby(["date", "channel", "country"])["sessions"].sum().reset_index()
    return {"orders": orders, "website_traffic": traffic}


def detections_for(kpis: pd.DataFrame, kpi: str, start: str, end: str, direction: str,
                   detectors=("zscore", "stl", "prophet")) -> pd.DataFrame:
    """Overall detections of ``kpi``: every detector flags [start, end]; expected = the day 7 days
    earlier (a plain seasonal-naive baseline)."""
    o = kpis.loc[kpis["dimension"] == "overall", ["date", kpi]].set_index("date")[kpi]
    exp = o.shift(7)
    rows = []
    for det in detectors:
        flag = (o.index >= start) & (o.index <= end)
        rows.append(
            pd.DataFrame(
                {
                    "date": o.index,
                    "kpi": kpi,
                    "dimension": "overall",
                    "segment": "all",
                    "detector": det,
                    "score": np.where(flag, -5.0 if direction == "down" else 5.0, 0.3),
                    "flag": flag,
                    "direction": np.where((o - exp).fillna(0) < 0, "down", "up"),
                    "expected": exp.to_numpy(),
                    "actual": o.to_numpy(),
                    "mode": "causal",
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def incident(kpi: str, start: str, end: str, direction: str, kpis: pd.DataFrame,
             detectors=("zscore", "stl", "prophet"), matched: str | None = None) -> Incident:
    o = kpis.loc[kpis["dimension"] == "overall"].set_index("date")
    w = o.loc[start:end, kpi]
    e = o[kpi].shift(7).loc[start:end]
    agg = "mean" if kpi in ("aov", "conversion_rate") else "sum"
    a, x = float(getattr(w, agg)()), float(getattr(e, agg)())
    return Incident(
        incident_id=f"I-{kpi}-overall-all-{start}-{direction}",
        kpi=kpi,
        dimension="overall",
        segment="all",
        start=pd.Timestamp(start),
        end=pd.Timestamp(end),
        direction=direction,
        detectors=list(detectors),
        level="triple",
        confidence=0.9,
        severity="high",
        peak_score=5.0,
        actual=a,
        expected=x,
        magnitude_pct=(a - x) / x * 100,
        matched_event_id=matched,
    )


def make_ctx(
    tmp_path, shocks, incidents_spec, truth_events=None, calendar=None, seed=0, trend=0.0
) -> RunContext:
    """A RunContext with kpis, detections and consensus incidents for the given shocks.

    incidents_spec: list of (kpi, start, end, direction, matched_event_id)."""
    cube = make_cube(shocks, seed=seed, trend=trend)
    kpis = kpis_from_cube(cube)
    tables = raw_tables(cube)
    if calendar is not None:
        tables["marketing_calendar"] = calendar
    dets = pd.concat(
        [detections_for(kpis, k, s, e, d) for k, s, e, d, _ in incidents_spec] or [pd.DataFrame()],
        ignore_index=True,
    )
    incs = [incident(k, s, e, d, kpis, matched=m) for k, s, e, d, m in incidents_spec]
    data = DataSet(
        path=None,
        tables=tables,
        manifest={"seed": seed, "scenario": "synthetic", "files": {}},
    )
    ctx = RunContext(config=make_config(), data=data, out_dir=tmp_path)
    if truth_events is not None:  # handed to the evaluation stages, as the entry points do
        from evaluation.truth import Truth, attach

        attach(ctx, Truth(events=truth_events))
    ctx.kpis_daily, ctx.detections, ctx.incidents = kpis, dets, incs
    ctx.detector_status = {
        d: {"ok": True, "error": None, "seconds": 0.1} for d in ("zscore", "stl", "prophet")
    }
    return ctx
