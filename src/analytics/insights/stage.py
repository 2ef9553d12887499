"""Build the Insights model of a run and write insights.json + insights.md (the pipeline stage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from shocklab.atomic import atomic_write_text
from shocklab.errors import InputError
from shocklab.hashing import canonical_json

from ..context import RunContext
from ..insights_config import InsightsConfig
from .common import SEVERITY_RANK, _f, _plain, _round, build_panel, config_of
from .episodes import _episodes, _incident
from .markdown import render_markdown
from .models import Insights
from .schema import validate_json
from .sections import _calendar, _channels, _forecast, _run_info, _seasonality, _summary


def build(ctx: RunContext, cfg: InsightsConfig | None = None) -> Insights:
    """The Insights model of a run (pure: writes nothing)."""
    cfg = cfg or config_of(ctx)
    kpis = ctx.kpis_daily
    if kpis is None or kpis.empty:
        raise InputError("insights: no KPIs to explain (kpis_daily is empty)")
    panel = build_panel(ctx, cfg)
    cal = _calendar(ctx)
    chosen = sorted(ctx.incidents, key=lambda i: (-SEVERITY_RANK.get(i.severity, 0),
                                                  -(_f(i.peak_score) or 0.0), i.incident_id))[: cfg.max_incidents]
    chosen.sort(key=lambda i: (pd.Timestamp(i.start), i.kpi, i.incident_id))
    items = [_incident(i, panel, cfg, cal) for i in chosen]
    return Insights(run=_run_info(ctx, kpis), summary=_summary(panel, cfg, kpis), channels=_channels(panel, cfg),
                    incidents_total=len(ctx.incidents), episodes=_episodes(items, panel, cfg, cal),
                    incidents=items,
                    forecast=_forecast(ctx, cfg), seasonality=_seasonality(kpis),
                    customers=_plain(ctx.customers) if ctx.customers is not None else None)


def to_json_dict(ins: Insights) -> dict[str, Any]:
    return _round(ins.model_dump(mode="json"))


def run(ctx: RunContext) -> None:
    """Pipeline stage: set ``ctx.insights`` and write insights.json + insights.md into ctx.out_dir."""
    cfg = config_of(ctx)
    if not cfg.enabled:
        return
    doc = to_json_dict(build(ctx, cfg))
    validate_json(doc)
    ctx.insights = doc
    out = Path(ctx.out_dir)
    atomic_write_text(out / "insights.json", canonical_json(doc))
    atomic_write_text(out / "insights.md", render_markdown(doc))
