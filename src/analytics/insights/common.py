"""Helpers shared by the insights modules: number cleaning, the config accessor, slice labels and
thin wrappers over ``analytics.drivers``. Imports only models and drivers (no loops)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from shocklab.catalogue import PAIR_DIMENSION, PAIR_SEP, PRODUCT_DIMENSION

from .. import drivers as dr
from ..context import RunContext
from ..external import averaged_columns
from ..insights_config import InsightsConfig
from .models import Driver, DriverSet

SIG_DIGITS = 6


SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _f(x: Any) -> float | None:
    """A finite float or None."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _pct(a: float | None, e: float | None) -> float | None:
    if a is None or e is None or not e:
        return None
    return _f((a - e) / abs(e) * 100.0)


def noise_text(v: float) -> str:
    """A count noise as the texts print it: two significant digits (0.0041, 5.7, 21), a
    whole number to 999, then '>999' (a fraction of an order a week)."""
    if v >= 999.5:
        return ">999"
    return f"{v:.0f}" if v >= 9.95 else f"{v:.2g}"


def one_decimal(v: float) -> float:
    """``v`` rounded to the one decimal the texts print, without a negative zero: -0.04 % is
    printed '+0.0%', not '-0.0%' (which reads as a fall)."""
    return round(v, 1) + 0.0  # -0.0 + 0.0 == +0.0


def _sig(v: float) -> float:
    """A float as insights.json stores it (text renders from this, so it matches the field):
    ``SIG_DIGITS`` significant digits, and at least every digit of its integer part (a total of
    20,264,353 sessions is not stored as 20,264,400, which insights.md would print as exact)."""
    if not math.isfinite(v):
        return v
    return float(f"{v:.{max(SIG_DIGITS, len(f'{abs(v):.0f}'))}g}")


def _round(obj: Any) -> Any:
    """Round floats as ``_sig`` does, recursively (stable bytes, readable JSON)."""
    if isinstance(obj, float):
        return _sig(obj)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def config_of(ctx: RunContext) -> InsightsConfig:
    """The run's insights section (the context's config is a validated ``AnalysisConfig``)."""
    return ctx.config.insights


def _seed(ctx: RunContext) -> int:
    return ctx.config.seed


def _day(ts: Any) -> date:
    return pd.Timestamp(ts).date()


def _slice_label(dimension: str, value: str) -> str:
    if dimension == "overall":
        return "overall"
    if dimension == PAIR_DIMENSION:
        return f"channel x country {value.replace(PAIR_SEP, ' / ')}"
    return f"{dimension} {value}"


def build_panel(ctx: RunContext, cfg: InsightsConfig) -> dr.SlicePanel:
    """The slice panel of the run's KPIs and detections, built once per run (``ctx.panel``):
    the insights and insight scoring's event windows read the same one (its look-ups are
    memoized by their arguments and treated as read-only, so a shared panel answers as a fresh
    one would)."""
    pairs = bool(cfg.drivers.pairs and ctx.data.tables)
    cached = ctx.panel
    if (cached is not None and cached[0] is ctx.kpis_daily and cached[1] is ctx.detections
            and cached[2] is ctx.data.tables and cached[3] == pairs):
        return cached[4]
    extra = dr.pair_daily(ctx.data.tables) if pairs else None
    # a --kpis file's missing periods are gaps (never zero): not read as a fall; its gauges'
    # days and windows are means (a 5-minute CPU % is ~40 a day, not ~40 x 288)
    panel = dr.SlicePanel(ctx.kpis_daily, ctx.detections, extra,
                          gaps=ctx.data.source == "kpis", means=averaged_columns(ctx.data))
    ctx.panel = (ctx.kpis_daily, ctx.detections, ctx.data.tables, pairs, panel)
    return panel


def _driver_model(d: dict[str, Any]) -> Driver:
    rel = d.get("relative_change")
    return Driver(dimension=d["dimension"], value=d["value"], actual=_f(d["actual"]) or 0.0,
                  expected=_f(d["expected"]) or 0.0, change=_f(d["change"]) or 0.0,
                  share_of_change=_f(d["share_of_change"]) or 0.0,
                  share_of_expected=_f(d["share_of_expected"]) or 0.0,
                  concentration=_f(d["concentration"]) or 0.0,
                  relative_change_pct=_f(rel * 100) if rel is not None else None,
                  n_folded=int(d.get("n_folded", 0)))


def _driver_set(res: dr.DriverResult, breakdown: bool = True,
                dimension: str | None = None) -> DriverSet:
    """The drivers of ``res``; none for an incident on one product (``dimension`` product): the
    store's drivers of the KPI are not what moved it."""
    if dimension == PRODUCT_DIMENSION:
        return DriverSet(scope="unknown", drivers=[], breakdown={}, expected_source="none")
    model = _driver_model

    return DriverSet(
        scope=res.scope,
        top=model(res.top) if res.top else None,
        drivers=[model(d) for d in res.drivers],
        breakdown={k: [model(d) for d in v] for k, v in res.breakdown.items()} if breakdown else {},
        expected_source=res.source,
        focus=_f(res.focus),
    )


def _explain(panel: dr.SlicePanel, cfg: InsightsConfig, kpi: str, start, end, expected: str,
             shift_days: int | None = None) -> dr.DriverResult:
    c = cfg.drivers
    return dr.explain(panel, kpi, pd.Timestamp(start), pd.Timestamp(end), expected=expected,
                      baseline_weeks=c.baseline_weeks, shift_days=shift_days, top_k=c.top_k,
                      min_share=c.min_share, focus_min=c.focus_min, pairs=c.pairs)


def _slice_sums(panel: dr.SlicePanel, comps: Sequence[str], dimension: str, segment: str,
                start, end, source: str, baseline_weeks: int = 4,
                shift_days: int | None = None) -> dict[str, float]:
    """Window sums of components for one slice (NaN where absent)."""
    out = {}
    for c in comps:
        col = panel.column(c, dimension, segment) if c in panel.values else None
        out[c] = math.nan if col is None else float(panel.window_array(
            c, pd.Timestamp(start), pd.Timestamp(end), source, baseline_weeks, shift_days)[col])
    return out
