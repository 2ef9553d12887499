"""Build the Insights model of a run: the insights.json document, its details file and
insights.md (the pipeline stage; ``analytics.outputs`` writes them)."""

from __future__ import annotations

import json
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pandas as pd

from shocklab.errors import InputError
from shocklab.hashing import json_ready

from ..context import RunContext
from ..insights_config import InsightsConfig
from ..watch import product_categories
from .common import SEVERITY_RANK, _f, _round, build_panel, config_of
from .episodes import _episodes, _incident
from .markdown import _episode_rank, render_markdown
from .models import Forecast, Insights
from .product_span import measured_days
from .schema import validate_json
from .sections import _calendar, _channels, _forecast, _run_info, _seasonality, _summary


def build(ctx: RunContext, cfg: InsightsConfig | None = None) -> Insights:
    """The Insights model of a run (pure: writes nothing)."""
    cfg = cfg or config_of(ctx)
    kpis = ctx.kpis_daily
    if kpis is None or kpis.empty:
        raise InputError("insights: no KPIs to explain (kpis_daily is empty)")
    done = ctx.ahead.get("forecast")
    if done is not None:  # computed ahead (``forecast_ahead``: by the stage scheduler's worker)
        ready: Future[Forecast] = Future()
        ready.set_result(done)
        return _build(ctx, cfg, kpis, ready)
    # the forecast reads only kpis_daily and spends most of its time waiting for Prophet's
    # optimizer (a separate process): it runs in a thread beside the drivers work (same result)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="insights-forecast") as pool:
        forecast = pool.submit(_forecast, ctx, cfg)
        return _build(ctx, cfg, kpis, forecast)


def forecast_ahead(ctx: RunContext) -> None:
    """The revenue forecast of ``build``, computed ahead into ``ctx.ahead["forecast"]`` (it reads
    only ``kpis_daily``, the calendar and the seed, so it is the same whenever it runs): the stage
    scheduler's customers worker runs it once its branch is done, while the detection chain still
    runs (``stage_insights.ahead``); ``build`` then takes it instead of fitting Prophet again."""
    cfg = config_of(ctx)
    if cfg.enabled and ctx.kpis_daily is not None and not ctx.kpis_daily.empty:
        ctx.ahead["forecast"] = _forecast(ctx, cfg)


def _build(ctx: RunContext, cfg: InsightsConfig, kpis: pd.DataFrame,
           forecast: Future[Forecast]) -> Insights:
    panel = build_panel(ctx, cfg)
    cal = _calendar(ctx)
    chosen = sorted(
        ctx.incidents,
        key=lambda i: (
            -SEVERITY_RANK.get(i.severity, 0),
            -(_f(i.peak_score) or 0.0),
            i.incident_id,
        ),
    )[: cfg.max_incidents]
    chosen.sort(key=lambda i: (pd.Timestamp(i.start), i.kpi, i.incident_id))
    rows = cal.to_dict(orient="records") if cal is not None else None  # once, not per incident
    product_days = measured_days(ctx.detections, chosen)
    items = [_incident(i, panel, cfg, rows, product_days.get(i.incident_id)) for i in chosen]
    return Insights(
        run=_run_info(ctx, kpis),
        summary=_summary(panel, cfg, kpis, cal),
        channels=_channels(panel, cfg, cal),
        incidents_total=len(ctx.incidents),
        episodes=_episodes(items, panel, cfg, cal,
                           product_categories(ctx.data.tables.get("products")),
                           ctx.price_indexes(),
                           sub_daily=0 < float(ctx.data.ingest.get("step_seconds") or 0) < 86400),
        incidents=items,
        forecast=forecast.result(),
        seasonality=_seasonality(kpis),
        customers=json_ready(ctx.customers, str) if ctx.customers is not None else None,
    )


DETAILS_FILE = "insights_details.json"
# incident fields kept in the details file only (the narrative cites none of them)
INCIDENT_DETAILS = ("actual", "expected", "baseline_expected", "peak_score", "n_detectors",
                    "drivers", "signature", "recommended_action")
BRIEF_EPISODES = 5


def brief(doc: dict[str, Any]) -> dict[str, Any]:
    """The brief section of a document (copied fields only, so it is grounded by construction)."""
    eps = doc.get("episodes", [])
    end = doc["summary"].get("period_end")
    recent = []
    if end:
        # every episode on those days: one that began earlier and runs into them (or is still
        # going) is as recent as one that began inside them
        cut = (pd.Timestamp(end) - pd.Timedelta(days=27)).date().isoformat()
        recent = [e["episode_id"] for e in eps if str(e["end"]) >= cut]
    top: list[dict[str, Any]] = []
    for e in sorted(eps, key=_episode_rank):
        if len(top) < BRIEF_EPISODES and not any(_same_event(e, t) for t in top):
            top.append(e)
    return {
        "as_of": end,
        "headline": doc["summary"].get("headline", ""),
        "last_28_days": recent,
        "top_episodes": [
            {
                "episode_id": e["episode_id"],
                "title": e["title"],
                "severity": e["severity"],
                "diagnosis": e["diagnosis"]["type"],
                "recommended_action": e["recommended_action"],
            }
            for e in top
        ],
    }


def _same_event(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two episodes a reader would count as one problem: overlapping days, the same diagnosis and
    the same top slice (two stock codes' stockouts of one category in the same days), or the same
    title up to its flagged days (a store-wide pricing error's list-price episode beside its AOV
    one, neither with a top slice, were both in the brief as 'aov down -47.8%: pricing error
    (2024-10-28 to 2024-10-29…': the same change over the same measured days)."""
    ta, tb = a["drivers"].get("top"), b["drivers"].get("top")
    return (str(a["start"]) <= str(b["end"]) and str(b["start"]) <= str(a["end"])
            and a["diagnosis"]["type"] == b["diagnosis"]["type"]
            and (_measured_title(a["title"]) == _measured_title(b["title"])
                 or (ta is not None and tb is not None
                     and (ta["dimension"], ta["value"]) == (tb["dimension"], tb["value"]))))


def _measured_title(title: str) -> str:
    """A title without its flagged days: 'aov down -47.8%: pricing error (2024-10-28 to
    2024-10-29; flagged …)' → 'aov down -47.8%: pricing error (2024-10-28 to 2024-10-29'."""
    return re.split(r"[;)]", title, maxsplit=1)[0]


def split_details(full: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(insights.json document, details document): the per-slice breakdowns and ranked driver
    lists of episodes and summary changes (their ``top`` driver stays), and the drivers and
    signature, action, actual/expected values and peak score of every incident move to the
    details file (the keys are left out of insights.json, as is an incident's empty calendar);
    the brief is added."""
    doc = json.loads(json.dumps(full))  # a deep copy of plain JSON data
    details: dict[str, Any] = {"episodes": {}, "summary": {}, "incidents": {}}
    for ep in doc.get("episodes", []):
        details["episodes"][ep["episode_id"]] = {"breakdown": ep["drivers"].pop("breakdown", {}),
                                                 "drivers": ep["drivers"]["drivers"]}
        ep["drivers"]["breakdown"], ep["drivers"]["drivers"] = {}, []
        if ep.get("incident_change") is None:  # sub-daily input only
            ep.pop("incident_change", None)
    for span in ("week_over_week", "month_over_month"):
        for ch in doc["summary"].get(span, []):
            if ch.get("drivers"):
                details["summary"].setdefault(span, {})[ch["kpi"]] = {
                    "breakdown": ch["drivers"].pop("breakdown", {}),
                    "drivers": ch["drivers"]["drivers"],
                }
                ch["drivers"]["breakdown"], ch["drivers"]["drivers"] = {}, []
    for it in doc.get("incidents", []):
        details["incidents"][it["incident_id"]] = {k: it.pop(k) for k in INCIDENT_DETAILS}
        if not it.get("calendar"):  # optional: left out when empty
            it.pop("calendar", None)
        for k in ("start_time", "end_time"):  # sub-daily input only
            if it.get(k) is None:
                it.pop(k, None)
    doc["brief"] = brief(doc)
    doc["details_file"] = DETAILS_FILE
    return doc, details


def to_json_dict(ins: Insights) -> dict[str, Any]:
    """The full document (breakdowns included; ``split_details`` makes insights.json of it)."""
    return _round(ins.model_dump(mode="json"))


def run(ctx: RunContext) -> None:
    """Pipeline stage: set ``ctx.insights`` (the insights.json document), ``ctx.insights_details``
    and ``ctx.insights_markdown``; ``analytics.outputs`` writes the three files."""
    cfg = config_of(ctx)
    if not cfg.enabled:
        return
    doc, details = split_details(to_json_dict(build(ctx, cfg)))
    validate_json(doc)
    ctx.insights = doc
    ctx.insights_details = details
    ctx.insights_markdown = render_markdown(doc)
