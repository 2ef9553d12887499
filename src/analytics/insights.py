"""Insights: an LLM-ready ``insights.json`` (validated against ``schemas/insights.schema.json``)
and ``insights.md`` (the same content as a compact brief) explaining a run.

Sections: run · summary (totals, week-over-week and month-over-month changes with drivers) ·
channels (underperformers against their own trailing baseline) · incidents (one per consensus
incident: drivers, signature, planned-event overlap, narrative, action, matched event) · forecast ·
seasonality · customers (free-form, filled by the customers package).

Identical inputs give identical bytes: no wall-clock fields, sorted keys, floats rounded to
``SIG_DIGITS`` significant digits. Insights never read ``truth/`` (``matched_event_id`` is set by
scoring on the incident).

Regenerate the committed schema after changing a model::

    python -m analytics.insights --write-schema
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Sequence
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shocklab.atomic import atomic_write_text
from shocklab.errors import InputError
from shocklab.hashing import canonical_json, sha256_json

from . import drivers as dr
from .context import Incident, RunContext
from .forecasting import forecast_revenue, overall_series
from .insights_config import InsightsConfig

SCHEMA_VERSION = "1.0"
SIG_DIGITS = 7
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "insights.schema.json"
MAIN_KPIS = ("revenue", "orders", "sessions", "conversion_rate", "aov")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
CORE_SHARE = 0.75  # episode core: days covered by >= this share of the busiest day's incidents
PEAK_Z = 2.0       # measured days: a peak day deviating >= this many robust sigmas …
PEAK_Z_EXTEND = 1.0  # … and the days around it deviating the same way >= this many
PEAK_SHARE = 0.25  # … and >= this share of the peak's deviation
log = logging.getLogger("shocklab.insights")


# --- models ---------------------------------------------------------------------------------------

class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DetectorRun(_M):
    name: str
    ok: bool
    error: str | None = None


class RunInfo(_M):
    source: str = Field(description="simulated | transactions | kpis")
    scenario: str | None = None
    seed: int | None = None
    manifest_sha256: str | None = Field(None, description="sha256 of the data manifest (canonical JSON)")
    config_sha256: str | None = Field(None, description="sha256 of the analysis config (canonical JSON)")
    period_start: date | None = None
    period_end: date | None = None
    days: int = Field(0, ge=0)
    versions: dict[str, str] = Field(default_factory=dict)
    detectors: list[DetectorRun] = Field(default_factory=list)
    detectors_failed: list[str] = Field(default_factory=list)


class Driver(_M):
    dimension: str = Field(description="channel | country | category | channel_country")
    value: str = Field(description="slice value; 'other' for folded small slices")
    actual: float
    expected: float
    change: float = Field(description="contribution to the dimension's change, in KPI units")
    share_of_change: float = Field(description="fraction of the dimension's change this slice carries")
    share_of_expected: float = Field(description="fraction of the expected volume this slice holds")
    concentration: float = Field(description="share_of_change - share_of_expected; ranks drivers")
    relative_change_pct: float | None = Field(None, description="the slice's own change vs its expected, %")
    n_folded: int = Field(0, ge=0, description="slices folded into 'other'")


class DriverSet(_M):
    scope: Literal["concentrated", "broad", "unknown"]
    top: Driver | None = Field(None, description="the driver, when the change is concentrated")
    focus: float | None = Field(None, description="1 - relative change of the rest of the top driver's "
                                                  "dimension / its own (1: confined, 0: uniform)")
    drivers: list[Driver] = Field(default_factory=list, description="ranked across dimensions")
    breakdown: dict[str, list[Driver]] = Field(default_factory=dict,
                                               description="per dimension, small slices folded into 'other' "
                                                           "(episodes and summary; empty on incidents)")
    expected_source: str = Field(description="what 'expected' is: baseline (same weekday, weeks around the "
                                             "window) | detector (the detectors' median) | shift (the "
                                             "previous period) | mixed (by dimension) | none")


class KpiTotal(_M):
    kpi: str
    total: float | None = Field(None, description="sum over the period (ratio KPIs: ratio of sums)")
    daily_mean: float | None = None


class KpiChange(_M):
    kpi: str
    current: float | None
    previous: float | None
    change_pct: float | None
    current_start: date
    current_end: date
    previous_start: date
    previous_end: date
    drivers: DriverSet | None = None


class Summary(_M):
    period_start: date | None = None
    period_end: date | None = None
    totals: list[KpiTotal] = Field(default_factory=list)
    week_over_week: list[KpiChange] = Field(default_factory=list)
    month_over_month: list[KpiChange] = Field(default_factory=list,
                                              description="last 28 days vs the 28 before (weekday-aligned)")
    headline: str = ""


class Channel(_M):
    channel: str
    revenue: float
    revenue_share: float
    sessions: float | None = None
    orders: float | None = None
    conversion_rate: float | None = None
    aov: float | None = None
    baseline_revenue: float | None = None
    revenue_vs_baseline_pct: float | None = None
    conversion_vs_baseline_pct: float | None = None
    underperforming: bool = False
    reasons: list[str] = Field(default_factory=list)


class Channels(_M):
    window_start: date
    window_end: date
    baseline: str = Field(description="how each channel's own baseline is built")
    channels: list[Channel] = Field(default_factory=list)
    underperformers: list[str] = Field(default_factory=list)


Signature = Literal["traffic-driven", "conversion-driven", "basket-driven", "mix", "undetermined"]


class SignatureInfo(_M):
    label: Signature
    slice: str = Field(description="where the decomposition was computed, e.g. 'overall'")
    traffic_pct: float | None = Field(None, description="sessions change, % (log-additive part)")
    conversion_pct: float | None = None
    basket_pct: float | None = Field(None, description="AOV change, %")
    revenue_pct: float | None = None


class CalendarOverlap(_M):
    date: date
    name: str
    kind: str
    scope: str | None = None


class IncidentInsight(_M):
    incident_id: str
    kpi: str
    dimension: str
    segment: str
    start: date
    end: date
    days: int = Field(ge=1)
    direction: Literal["up", "down"]
    actual: float | None
    expected: float | None
    magnitude_pct: float | None = Field(description="the detectors' magnitude (actual vs their baseline), %")
    baseline_expected: float | None = Field(None, description="the KPI over the window from the median of the "
                                                              "same weekday in the weeks before and after it")
    baseline_magnitude_pct: float | None = Field(None, description="actual vs baseline_expected, %")
    detectors: list[str]
    n_detectors: int = Field(ge=0)
    level: str
    confidence: float
    severity: str
    peak_score: float | None = None
    drivers: DriverSet
    signature: SignatureInfo
    planned: bool = Field(description="overlaps a planned marketing-calendar day")
    calendar: list[CalendarOverlap] = Field(default_factory=list)
    narrative: str
    recommended_action: str
    matched_event_id: str | None = None


class Episode(_M):
    """Consensus incidents whose windows overlap or touch, read together as one happening."""

    episode_id: str
    start: date
    end: date
    days: int = Field(ge=1)
    direction: Literal["up", "down", "mixed"]
    incident_ids: list[str]
    kpis: list[str] = Field(description="KPIs with an incident in the episode")
    slices: list[str] = Field(description="slices with an incident, e.g. 'overall', 'channel email'")
    primary_kpi: str = Field(description="where the change starts: sessions if traffic-driven, conversion_rate "
                                         "if conversion-driven, revenue or aov (the bigger move) if basket-driven, "
                                         "else the biggest mover")
    measured_start: date = Field(description="span of the episode's overall incidents (all its incidents if "
                                             "none is overall): where kpi_changes, signature and drivers are measured")
    measured_end: date
    kpi_changes: dict[str, float | None] = Field(description="overall change of each main KPI over the measured "
                                                             "span vs its same-weekday baseline, %")
    severity: str
    confidence: float
    signature: SignatureInfo
    drivers: DriverSet = Field(description="drivers of the primary KPI over the episode")
    planned: bool
    calendar: list[CalendarOverlap] = Field(default_factory=list)
    narrative: str
    recommended_action: str
    matched_event_ids: list[str] = Field(default_factory=list)


class ForecastPoint(_M):
    date: date
    yhat: float
    lower: float
    upper: float


class MonthTotal(_M):
    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    yhat: float
    lower: float
    upper: float
    days: int = Field(ge=1, le=31)
    partial: bool


class RecentWeek(_M):
    start: date
    end: date
    actual: float
    forecast: float
    deviation_pct: float | None
    outside_interval: bool


class Recent(_M):
    forecast_made: date
    actual: float
    forecast: float
    deviation_pct: float | None
    weeks: list[RecentWeek]


class Forecast(_M):
    status: Literal["ok", "skipped", "failed"]
    reason: str | None = None
    kpi: str = "revenue"
    method: str | None = None
    interval: float | None = None
    horizon_days: int | None = None
    trained_from: date | None = None
    trained_to: date | None = None
    residual_sigma: float | None = None
    daily: list[ForecastPoint] = Field(default_factory=list)
    monthly: list[MonthTotal] = Field(default_factory=list)
    recent: Recent | None = None


class ProfilePoint(_M):
    label: str
    mean: float
    index: float = Field(description="mean / overall mean (1.0 = average)")


class Profile(_M):
    points: list[ProfilePoint]
    peak: str
    trough: str
    amplitude_pct: float = Field(description="(peak - trough) / overall mean, %")


class Seasonality(_M):
    kpi: str = "revenue"
    weekday: Profile | None = None
    monthly: Profile | None = None


class Insights(_M):
    schema_version: Literal["1.0"] = SCHEMA_VERSION
    run: RunInfo
    summary: Summary
    channels: Channels | None = None
    incidents_total: int = Field(0, ge=0)
    episodes: list[Episode] = Field(default_factory=list)
    incidents: list[IncidentInsight] = Field(default_factory=list)
    forecast: Forecast
    seasonality: Seasonality
    customers: dict[str, Any] | None = Field(None, description="customer intelligence (free-form)")


# --- schema ---------------------------------------------------------------------------------------

def schema_text() -> str:
    """The JSON Schema of ``Insights`` as committed in schemas/insights.schema.json."""
    schema = Insights.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://shocklab.dev/schemas/insights.schema.json"
    return canonical_json(schema)


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    atomic_write_text(path, schema_text())
    return Path(path)


def validate_json(doc: dict[str, Any]) -> None:
    """Validate against the committed schema (the model's own when the file is absent)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) if SCHEMA_PATH.exists() \
        else json.loads(schema_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    err = next(iter(sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))), None)
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "<root>"
        raise InputError(f"insights.json does not match schemas/insights.schema.json at {where}: {err.message}")


# --- helpers --------------------------------------------------------------------------------------

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


def _round(obj: Any) -> Any:
    """Round floats to SIG_DIGITS significant digits, recursively (stable bytes, readable JSON)."""
    if isinstance(obj, float):
        return float(f"{obj:.{SIG_DIGITS}g}")
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def _plain(obj: Any) -> Any:
    """JSON-safe copy of free-form data (numpy scalars, timestamps, NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return _plain(obj.to_dict(orient="records"))
    if isinstance(obj, (pd.Timestamp, date)):
        return obj.isoformat()[:10] if getattr(obj, "hour", 0) == 0 and getattr(obj, "minute", 0) == 0 \
            else obj.isoformat()
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _f(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def config_of(ctx: RunContext) -> InsightsConfig:
    cfg = getattr(ctx.config, "insights", None)
    if isinstance(ctx.config, dict):
        cfg = ctx.config.get("insights")
    if isinstance(cfg, InsightsConfig):
        return cfg
    return InsightsConfig.model_validate(cfg or {})


def _seed(ctx: RunContext) -> int:
    seed = getattr(ctx.config, "seed", None)
    if seed is None:
        seed = ctx.data.manifest.get("seed") if ctx.data.manifest else None
    try:
        return int(seed) if seed is not None else 0
    except (TypeError, ValueError):
        return 0


def _day(ts: Any) -> date:
    return pd.Timestamp(ts).date()


def _slice_label(dimension: str, value: str) -> str:
    if dimension == "overall":
        return "overall"
    if dimension == dr.PAIR_DIMENSION:
        return f"channel x country {value.replace(dr.PAIR_SEP, ' / ')}"
    return f"{dimension} {value}"


def build_panel(ctx: RunContext, cfg: InsightsConfig) -> dr.SlicePanel:
    extra = dr.pair_daily(ctx.data.tables) if cfg.drivers.pairs and ctx.data.tables else None
    return dr.SlicePanel(ctx.kpis_daily, ctx.detections, extra)


def _driver_set(res: dr.DriverResult, breakdown: bool = True) -> DriverSet:
    def model(d: dict[str, Any]) -> Driver:
        rel = d.get("relative_change")
        return Driver(dimension=d["dimension"], value=d["value"], actual=_f(d["actual"]) or 0.0,
                      expected=_f(d["expected"]) or 0.0, change=_f(d["change"]) or 0.0,
                      share_of_change=_f(d["share_of_change"]) or 0.0,
                      share_of_expected=_f(d["share_of_expected"]) or 0.0,
                      concentration=_f(d["concentration"]) or 0.0,
                      relative_change_pct=_f(rel * 100) if rel is not None else None,
                      n_folded=int(d.get("n_folded", 0)))

    return DriverSet(scope=res.scope, top=model(res.top) if res.top else None,
                     drivers=[model(d) for d in res.drivers],
                     breakdown={k: [model(d) for d in v] for k, v in res.breakdown.items()} if breakdown else {},
                     expected_source=res.source, focus=_f(res.focus))


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
        s = panel.window_sums(c, pd.Timestamp(start), pd.Timestamp(end), source, baseline_weeks, shift_days)
        out[c] = float(s.get((dimension, segment), math.nan)) if len(s) else math.nan
    return out


# --- sections -------------------------------------------------------------------------------------

def _run_info(ctx: RunContext, kpis: pd.DataFrame) -> RunInfo:
    manifest = ctx.data.manifest or {}
    cfg_dump = None
    if hasattr(ctx.config, "model_dump"):
        cfg_dump = ctx.config.model_dump(mode="json")
    elif isinstance(ctx.config, dict):
        cfg_dump = _plain(ctx.config)
    versions = {}
    for pkg in ("shocklab", "numpy", "pandas", "prophet", "pydantic", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    dets = [DetectorRun(name=str(n), ok=bool(s.get("ok", False)),
                        error=None if s.get("error") is None else str(s.get("error")))
            for n, s in sorted(ctx.detector_status.items())]
    dates = pd.to_datetime(kpis["date"]) if len(kpis) else pd.Series(dtype="datetime64[ns]")
    start, end = (dates.min(), dates.max()) if len(dates) else (None, None)
    scenario = manifest.get("scenario") or manifest.get("scenario_name")
    seed = manifest.get("seed", getattr(ctx.config, "seed", None))
    return RunInfo(source=ctx.data.source, scenario=None if scenario is None else str(scenario),
                   seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
                   manifest_sha256=sha256_json(_plain(manifest)) if manifest else None,
                   config_sha256=sha256_json(cfg_dump) if cfg_dump is not None else None,
                   period_start=_day(start) if start is not None else None,
                   period_end=_day(end) if end is not None else None,
                   days=int((end - start).days + 1) if start is not None else 0,
                   versions=versions, detectors=dets,
                   detectors_failed=[d.name for d in dets if not d.ok])


def _summary(panel: dr.SlicePanel, cfg: InsightsConfig, kpis: pd.DataFrame) -> Summary:
    if not len(panel.dates):
        return Summary()
    first, last = panel.dates.min(), panel.dates.max()
    kpi_list = [k for k in MAIN_KPIS if all(c in panel.values for c in dr.components(k))]
    n_days = (last - first).days + 1
    totals = []
    for k in kpi_list:
        sums = _slice_sums(panel, dr.components(k), "overall", "all", first, last, "actual")
        v = dr.kpi_value(k, sums)
        totals.append(KpiTotal(kpi=k, total=_f(v),
                               daily_mean=_f(v / n_days) if k not in dr.RATIO_KPIS else _f(v)))
    changes: dict[int, list[KpiChange]] = {}
    for span in (7, 28):
        out = []
        if n_days >= 2 * span:
            cur_start = last - pd.Timedelta(days=span - 1)
            for k in kpi_list:
                comps = dr.components(k)
                a = dr.kpi_value(k, _slice_sums(panel, comps, "overall", "all", cur_start, last, "actual"))
                e = dr.kpi_value(k, _slice_sums(panel, comps, "overall", "all", cur_start, last, "shift",
                                                shift_days=span))
                res = _explain(panel, cfg, k, cur_start, last, "shift", shift_days=span)
                out.append(KpiChange(kpi=k, current=_f(a), previous=_f(e), change_pct=_pct(_f(a), _f(e)),
                                     current_start=_day(cur_start), current_end=_day(last),
                                     previous_start=_day(cur_start - pd.Timedelta(days=span)),
                                     previous_end=_day(last - pd.Timedelta(days=span)),
                                     drivers=_driver_set(res)))
        changes[span] = out
    return Summary(period_start=_day(first), period_end=_day(last), totals=totals,
                   week_over_week=changes[7], month_over_month=changes[28],
                   headline=_headline(changes[7]))


def _headline(wow: list[KpiChange]) -> str:
    rev = next((c for c in wow if c.kpi == "revenue"), None)
    if rev is None or rev.change_pct is None:
        return "Not enough history for a week-over-week comparison."
    text = (f"Revenue {'rose' if rev.change_pct >= 0 else 'fell'} {abs(rev.change_pct):.1f}% week over week "
            f"({rev.current:,.0f} vs {rev.previous:,.0f}, {rev.current_start} to {rev.current_end}).")
    if rev.drivers and rev.drivers.top:
        t = rev.drivers.top
        text += f" Mostly {_slice_label(t.dimension, t.value)} ({t.share_of_change * 100:.0f}% of the change)."
    elif rev.drivers and rev.drivers.scope == "broad":
        text += " The change is broad-based across channels, countries and categories."
    return text


def _channels(panel: dr.SlicePanel, cfg: InsightsConfig) -> Channels | None:
    c = cfg.channels
    segs = panel.segments("channel") if panel.values else []
    if not segs or "revenue" not in panel.values:
        return None
    last = panel.dates.max()
    start = last - pd.Timedelta(days=c.window_days - 1)
    comps = [x for x in ("revenue", "orders", "sessions") if x in panel.values]
    act = {x: panel.window_sums(x, start, last, "actual") for x in comps}
    base = {x: panel.window_sums(x, start, last, "trailing", c.baseline_weeks) for x in comps}
    tot_rev = float(sum(_f(act["revenue"].get(("channel", s))) or 0.0 for s in segs))
    rows, under = [], []
    for s in segs:
        key = ("channel", s)
        a = {x: _f(act[x].get(key)) for x in comps}
        b = {x: _f(base[x].get(key)) for x in comps}
        conv = a["orders"] / a["sessions"] if a.get("orders") is not None and a.get("sessions") else None
        bconv = b["orders"] / b["sessions"] if b.get("orders") is not None and b.get("sessions") else None
        aov = a["revenue"] / a["orders"] if a.get("revenue") is not None and a.get("orders") else None
        rev_pct, conv_pct = _pct(a["revenue"], b["revenue"]), _pct(conv, bconv)
        reasons = []
        if rev_pct is not None and rev_pct <= -c.underperform_pct:
            reasons.append(f"revenue {rev_pct:.1f}% vs its baseline")
        if conv_pct is not None and conv_pct <= -c.underperform_pct:
            reasons.append(f"conversion {conv_pct:.1f}% vs its baseline")
        if reasons:
            under.append(s)
        rows.append(Channel(channel=s, revenue=a["revenue"] or 0.0,
                            revenue_share=(a["revenue"] or 0.0) / tot_rev if tot_rev else 0.0,
                            sessions=a.get("sessions"), orders=a.get("orders"), conversion_rate=_f(conv),
                            aov=_f(aov), baseline_revenue=b["revenue"], revenue_vs_baseline_pct=rev_pct,
                            conversion_vs_baseline_pct=conv_pct, underperforming=bool(reasons),
                            reasons=reasons))
    rows.sort(key=lambda r: (-r.revenue, r.channel))
    return Channels(window_start=_day(start), window_end=_day(last),
                    baseline=f"median of the same weekday over the {c.baseline_weeks} weeks before the window",
                    channels=rows, underperformers=under)


def _calendar(ctx: RunContext) -> pd.DataFrame | None:
    cal = ctx.data.tables.get("marketing_calendar") if ctx.data.tables else None
    if cal is None or cal.empty or "date" not in cal.columns:
        return None
    cal = cal.assign(date=pd.to_datetime(cal["date"]).dt.normalize())
    return cal.sort_values(["date", *[c for c in ("name",) if c in cal.columns]], kind="mergesort")


def _incident(inc: Incident, panel: dr.SlicePanel, cfg: InsightsConfig,
              cal: pd.DataFrame | None) -> IncidentInsight:
    start, end = pd.Timestamp(inc.start).normalize(), pd.Timestamp(inc.end).normalize()
    res = _explain(panel, cfg, inc.kpi, start, end, "auto")
    # magnitude against a baseline the incident cannot contaminate (same weekdays around it)
    bw = cfg.drivers.baseline_weeks
    comps = dr.components(inc.kpi)
    a_s = _slice_sums(panel, comps, inc.dimension, inc.segment, start, end, "actual")
    b_s = _slice_sums(panel, comps, inc.dimension, inc.segment, start, end, "baseline", bw)
    days = (end - start).days + 1
    b_val, a_val = dr.kpi_value(inc.kpi, b_s), dr.kpi_value(inc.kpi, a_s)
    sig = _signature(panel, cfg, inc.dimension, inc.segment, start, end)
    overlaps: list[CalendarOverlap] = []
    if cal is not None:
        hit = cal.loc[(cal["date"] >= start) & (cal["date"] <= end)]
        overlaps = [CalendarOverlap(date=_day(r["date"]), name=str(r.get("name", "")),
                                    kind=str(r.get("kind", "")),
                                    scope=None if pd.isna(r.get("scope")) else str(r.get("scope")))
                    for r in hit.to_dict(orient="records")]
    dset = _driver_set(res, breakdown=False)  # the full breakdown lives on the incident's episode
    item = IncidentInsight(
        incident_id=inc.incident_id, kpi=inc.kpi, dimension=inc.dimension, segment=str(inc.segment),
        start=_day(start), end=_day(end), days=days, direction=inc.direction,
        actual=_f(inc.actual), expected=_f(inc.expected), magnitude_pct=_f(inc.magnitude_pct),
        baseline_expected=_f(b_val), baseline_magnitude_pct=_pct(_f(a_val), _f(b_val)),
        detectors=sorted(str(d) for d in inc.detectors), n_detectors=len(inc.detectors), level=inc.level,
        confidence=_f(inc.confidence) or 0.0, severity=inc.severity, peak_score=_f(inc.peak_score),
        drivers=dset, signature=sig, planned=bool(overlaps), calendar=overlaps,
        narrative="", recommended_action="", matched_event_id=inc.matched_event_id)
    item.narrative = _narrative(item)
    item.recommended_action = _action(item.direction, sig.label, dset.top, overlaps)
    return item


def _signature(panel: dr.SlicePanel, cfg: InsightsConfig, dimension: str, segment: str,
               start, end) -> SignatureInfo:
    """revenue = sessions x conversion x AOV on the incident's slice (overall when the slice has
    no sessions, e.g. a category)."""
    comps = ("sessions", "orders", "revenue")
    bw = cfg.drivers.baseline_weeks
    where = (dimension, segment)
    a = _slice_sums(panel, comps, *where, start, end, "actual")
    if not (a.get("sessions") or 0) > 0:
        where = ("overall", "all")
        a = _slice_sums(panel, comps, *where, start, end, "actual")
    e = _slice_sums(panel, comps, *where, start, end, "baseline", bw)
    lc = dr.log_components(a, e)
    label = dr.classify_signature(lc, cfg.signature_min_share)

    def pct(v: float | None) -> float | None:
        return _f(math.expm1(v) * 100) if v is not None else None

    return SignatureInfo(label=label, slice=_slice_label(*where),
                         traffic_pct=pct(lc["traffic"]) if lc else None,
                         conversion_pct=pct(lc["conversion"]) if lc else None,
                         basket_pct=pct(lc["basket"]) if lc else None,
                         revenue_pct=pct(sum(lc.values())) if lc else None)


_KPI_LABEL = {"revenue": "Revenue", "orders": "Orders", "sessions": "Sessions", "aov": "Average order value",
              "conversion_rate": "Conversion rate", "units": "Units", "new_customers": "New customers",
              "returning_customers": "Returning customers", "cancellation_rate": "Cancellation rate"}


def _fmt(v: float | None, kpi: str) -> str:
    if v is None:
        return "n/a"
    if kpi in ("conversion_rate", "cancellation_rate"):
        return f"{v * 100:.2f}%"
    return f"{v:,.2f}" if kpi == "aov" else f"{v:,.0f}"


def _narrative(it: IncidentInsight) -> str:
    name = _KPI_LABEL.get(it.kpi, it.kpi)
    mag = it.magnitude_pct if it.magnitude_pct is not None else it.baseline_magnitude_pct
    where = "" if it.dimension == "overall" else f" in {_slice_label(it.dimension, it.segment)}"
    span = f"on {it.start}" if it.days == 1 else f"from {it.start} to {it.end} ({it.days} days)"
    size = f" {abs(mag):.1f}%" if mag is not None else ""
    text = (f"{name}{where} was{size} {'above' if it.direction == 'up' else 'below'} expected "
            f"({_fmt(it.actual, it.kpi)} vs {_fmt(it.expected, it.kpi)}) {span}. "
            f"{it.n_detectors} detector{'s' if it.n_detectors != 1 else ''} agree ({', '.join(it.detectors)}; "
            f"{it.level}, confidence {it.confidence:.2f}, severity {it.severity}).")
    s = it.signature
    if s.traffic_pct is not None:
        text += (f" {s.label.capitalize()} ({s.slice}): sessions {s.traffic_pct:+.1f}%, conversion "
                 f"{s.conversion_pct:+.1f}%, AOV {s.basket_pct:+.1f}%.")
    t = it.drivers.top
    if t is not None:
        rel = f", {t.relative_change_pct:+.1f}% vs its own expected" if t.relative_change_pct is not None else ""
        text += f" Concentrated in {_slice_label(t.dimension, t.value)} ({t.share_of_change * 100:.0f}% of the change{rel})."
    elif it.drivers.scope == "broad":
        text += " Broad-based: no single channel, country or category stands out."
    else:
        text += " No channel, country or category breakdown is available."
    if it.planned:
        names = sorted({c.name for c in it.calendar})
        text += f" Overlaps planned: {', '.join(names)}."
    return text


def _action(direction: str, sig: str, top: Driver | None, calendar: list[CalendarOverlap]) -> str:
    """A recommended next step from direction, signature, top driver and planned-event overlap."""
    where = f" for {_slice_label(top.dimension, top.value)}" if top is not None else ""
    if calendar:
        names = ", ".join(sorted({c.name for c in calendar}))
        if direction == "up":
            return f"Planned ({names}): compare the uplift with the campaign target; no incident response needed."
        return f"Drop during planned {names}: check the campaign setup (offer, landing pages, tracking)."
    if direction == "down":
        return {
            "traffic-driven": f"Check acquisition{where}: campaign status and budget, tracking tags, referral "
                              "links and site availability.",
            "conversion-driven": f"Check the checkout and payment funnel{where}: payment-provider errors, site "
                                 "errors, stock-outs, shipping options.",
            "basket-driven": f"Check prices, discounts and product availability{where}: basket value fell.",
        }.get(sig, f"Investigate the whole funnel{where}: traffic, conversion and basket value all moved."
               if sig == "mix" else f"Find what pulled the KPI down{where}: releases, tracking, outages, data feeds.")
    return {
        "traffic-driven": f"Verify the traffic spike{where} is real (bots, duplicated tracking) and that stock "
                          "and site capacity hold.",
        "conversion-driven": f"Check for a pricing error or an unannounced promotion{where}; keep what worked.",
        "basket-driven": f"Check for pricing errors or unusually large orders{where}.",
    }.get(sig, f"Confirm the rise{where} is genuine and find what caused it (campaign, press, pricing).")


_PRIMARY_BY_SIGNATURE = {"traffic-driven": "sessions", "conversion-driven": "conversion_rate",
                         "basket-driven": "revenue"}
_KPI_PREFERENCE = ("orders", "revenue", "sessions", "conversion_rate", "aov")


def _episodes(items: list[IncidentInsight], panel: dr.SlicePanel, cfg: InsightsConfig,
              cal: pd.DataFrame | None) -> list[Episode]:
    """Group incidents whose windows overlap or touch — planned-calendar ones apart from the others,
    so a planned campaign does not swallow an anomaly next to it — and explain each group once,
    overall, over the days where its primary KPI actually deviates (``drivers.peak_span``)."""
    groups: list[list[IncidentInsight]] = []
    for planned in (False, True):
        mine: list[list[IncidentInsight]] = []
        for it in sorted((i for i in items if i.planned == planned), key=lambda i: (i.start, i.end, i.incident_id)):
            if mine and (pd.Timestamp(it.start) - pd.Timestamp(max(g.end for g in mine[-1]))).days <= 1:
                mine[-1].append(it)
            else:
                mine.append([it])
        groups += mine
    groups.sort(key=lambda g: (min(i.start for i in g), g[0].planned))
    out = []
    bw = cfg.drivers.baseline_weeks
    for g in groups:
        start, end = min(i.start for i in g), max(i.end for i in g)
        # first guess: the days most of the incidents cover (slice incidents trail on, smoothing
        # detectors flag late); then where the primary KPI itself deviates (drivers.peak_span)
        days = pd.date_range(start, end, freq="D")
        cover = np.zeros(len(days))
        for i in g:
            cover[(days >= pd.Timestamp(i.start)) & (days <= pd.Timestamp(i.end))] += 1
        core = days[cover >= CORE_SHARE * cover.max()]
        changes, sig, primary = _measure(panel, cfg, core.min(), core.max(), g[0].kpi)
        # the primary KPI's peak, else that of the KPIs the incidents flagged (most flagged first)
        flagged = sorted({i.kpi for i in g}, key=lambda k: (-sum(i.kpi == k for i in g), k))
        span = None
        for k in dict.fromkeys([primary, *flagged]):
            span = dr.peak_span(panel, k, pd.Timestamp(start), pd.Timestamp(end), bw, PEAK_Z,
                                PEAK_Z_EXTEND, PEAK_SHARE)
            if span is not None:
                break
        ts, te = span or (pd.Timestamp(start), pd.Timestamp(end))
        changes, sig, primary = _measure(panel, cfg, ts, te, primary)
        res = _explain(panel, cfg, primary, ts, te, "auto")
        dirs = {i.direction for i in g}
        ov = sorted({(c.date, c.name, c.kind, c.scope) for i in g for c in i.calendar},
                    key=lambda c: (c[0], c[1], c[2], c[3] or ""))
        ep = Episode(
            episode_id=f"EP-{start}-{end}" + ("-planned" if g[0].planned else ""), start=start, end=end,
            days=(end - start).days + 1,
            measured_start=ts.date(), measured_end=te.date(),
            direction=dirs.pop() if len(dirs) == 1 else "mixed",
            incident_ids=[i.incident_id for i in g], kpis=sorted({i.kpi for i in g}),
            slices=sorted({_slice_label(i.dimension, i.segment) for i in g}), primary_kpi=primary,
            kpi_changes=changes, severity=max((i.severity for i in g), key=lambda x: SEVERITY_RANK.get(x, 0)),
            confidence=max(i.confidence for i in g), signature=sig, drivers=_driver_set(res),
            planned=bool(ov), calendar=[CalendarOverlap(date=d, name=n, kind=k, scope=sc) for d, n, k, sc in ov],
            narrative="", recommended_action="",
            matched_event_ids=sorted({i.matched_event_id for i in g if i.matched_event_id}))
        ep.narrative = _episode_narrative(ep)
        ep.recommended_action = _action("up" if (changes.get(primary) or 0) > 0 else "down", sig.label,
                                        ep.drivers.top, ep.calendar)
        out.append(ep)
    return out


def _measure(panel: dr.SlicePanel, cfg: InsightsConfig, ts: pd.Timestamp, te: pd.Timestamp,
             fallback: str) -> tuple[dict[str, float | None], SignatureInfo, str]:
    """Overall KPI changes vs baseline, signature and primary KPI over [ts, te]."""
    bw = cfg.drivers.baseline_weeks
    changes: dict[str, float | None] = {}
    for k in MAIN_KPIS:
        comps = dr.components(k)
        if all(c in panel.values for c in comps):
            a = dr.kpi_value(k, _slice_sums(panel, comps, "overall", "all", ts, te, "actual"))
            b = dr.kpi_value(k, _slice_sums(panel, comps, "overall", "all", ts, te, "baseline", bw))
            changes[k] = _pct(_f(a), _f(b))
    sig = _signature(panel, cfg, "overall", "all", ts, te)
    primary = _PRIMARY_BY_SIGNATURE.get(sig.label)
    if sig.label == "basket-driven" and changes.get("aov") is not None and changes.get("revenue") is not None \
            and abs(changes["aov"]) > abs(changes["revenue"]):
        primary = "aov"  # a price change moves the basket more than revenue; a stock-out the reverse
    if primary is None or primary not in changes:
        moved = {k: abs(v) for k, v in changes.items() if v is not None}
        # biggest mover; within 5 % of it, the more aggregate KPI (orders, revenue) is named
        top = max(moved.values(), default=0.0)
        primary = next((k for k in _KPI_PREFERENCE if k in moved and moved[k] >= 0.95 * top), fallback)
    return changes, sig, primary


def _episode_narrative(ep: Episode) -> str:
    span = f"On {ep.start}" if ep.days == 1 else f"From {ep.start} to {ep.end} ({ep.days} days)"
    moves = ", ".join(f"{k} {v:+.1f}%" for k, v in ep.kpi_changes.items() if v is not None)
    where = "" if (ep.measured_start, ep.measured_end) == (ep.start, ep.end) else (
        f" on {ep.measured_start}" if ep.measured_start == ep.measured_end
        else f" over {ep.measured_start} to {ep.measured_end}")
    text = (f"{span}, {len(ep.incident_ids)} incident{'s' if len(ep.incident_ids) != 1 else ''} on "
            f"{', '.join(ep.kpis)} ({ep.severity}). Overall vs baseline{where}: {moves}. "
            f"Primary KPI: {ep.primary_kpi}; {ep.signature.label}.")
    t = ep.drivers.top
    if t is not None:
        text += f" Concentrated in {_slice_label(t.dimension, t.value)} ({t.share_of_change * 100:.0f}% of the change)."
    elif ep.drivers.scope == "broad":
        text += " Broad-based across channels, countries and categories."
    else:
        text += " No channel, country or category breakdown is available."
    if ep.planned:
        text += f" Overlaps planned: {', '.join(sorted({c.name for c in ep.calendar}))}."
    return text


def _forecast(ctx: RunContext, cfg: InsightsConfig) -> Forecast:
    f = cfg.forecast
    if not f.enabled:
        return Forecast(status="skipped", reason="forecast disabled in config")
    if "revenue" not in ctx.kpis_daily.columns:
        return Forecast(status="skipped", reason="no revenue KPI")
    try:
        res = forecast_revenue(ctx.kpis_daily, f, seed=_seed(ctx))
    except Exception as exc:  # Prophet/cmdstan failures must not sink the whole insights stage
        log.warning("forecast failed: %s: %s", type(exc).__name__, exc)
        return Forecast(status="failed", reason=f"{type(exc).__name__}: {exc}")
    if res is None:
        return Forecast(status="skipped", reason=f"less than {f.min_history_days} days of history")
    return Forecast(status="ok", **res)


def _profile(means: pd.Series, labels: Sequence[str]) -> Profile | None:
    means = means.dropna()
    if len(means) < 2:
        return None
    overall = float(means.mean())
    if not overall:
        return None
    pts = [ProfilePoint(label=labels[int(i)], mean=float(v), index=float(v) / overall) for i, v in means.items()]
    return Profile(points=pts, peak=labels[int(means.idxmax())], trough=labels[int(means.idxmin())],
                   amplitude_pct=(float(means.max()) - float(means.min())) / overall * 100)


def _seasonality(kpis: pd.DataFrame) -> Seasonality:
    y = overall_series(kpis, "revenue").dropna() if "revenue" in kpis.columns else pd.Series(dtype=float)
    if y.empty:
        return Seasonality()
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    wd = _profile(y.groupby(y.index.day_of_week).mean(), days) if len(y) >= 14 else None
    mo = _profile(y.groupby(y.index.month).mean(), months) if len(y) >= 56 else None
    return Seasonality(kpi="revenue", weekday=wd, monthly=mo)


# --- build / write --------------------------------------------------------------------------------

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


# --- markdown brief -------------------------------------------------------------------------------

def _n(v: Any, nd: int = 1, suffix: str = "") -> str:
    return "n/a" if v is None else f"{v:,.{nd}f}{suffix}"


def render_markdown(doc: dict[str, Any]) -> str:
    """A compact, prompt-ready brief with the same content as insights.json."""
    r, s = doc["run"], doc["summary"]
    lines = ["# ShockLab insights brief", "",
             f"Data: {r.get('scenario') or r['source']} · {r.get('period_start')} to {r.get('period_end')} "
             f"({r['days']} days) · seed {r.get('seed')} · schema {doc['schema_version']}",
             f"Detectors: {', '.join(d['name'] + ('' if d['ok'] else ' (FAILED)') for d in r['detectors']) or 'none'}",
             "", "## Summary", s.get("headline", ""), "",
             "| KPI | total | last 7d | WoW | last 28d | MoM |", "|---|---|---|---|---|---|"]
    wow = {c["kpi"]: c for c in s["week_over_week"]}
    mom = {c["kpi"]: c for c in s["month_over_month"]}
    for t in s["totals"]:
        k = t["kpi"]
        w, m = wow.get(k, {}), mom.get(k, {})
        nd = 4 if k in dr.RATIO_KPIS else 0
        lines.append(f"| {k} | {_n(t['total'], nd)} | {_n(w.get('current'), nd)} | {_n(w.get('change_pct'), 1, '%')} "
                     f"| {_n(m.get('current'), nd)} | {_n(m.get('change_pct'), 1, '%')} |")
    for label, ch in (("WoW", wow.get("revenue")), ("MoM", mom.get("revenue"))):
        if ch and ch.get("drivers"):
            lines.append(f"- Revenue {label} drivers ({ch['drivers']['scope']}): " + _drivers_md(ch["drivers"]))
    ch = doc.get("channels")
    if ch:
        lines += ["", f"## Channels ({ch['window_start']} to {ch['window_end']}; baseline: {ch['baseline']})",
                  "| channel | revenue | share | conversion | AOV | vs baseline | flag |", "|---|---|---|---|---|---|---|"]
        for c in ch["channels"]:
            conv = _n(c["conversion_rate"] * 100 if c["conversion_rate"] is not None else None, 2, "%")
            lines.append(f"| {c['channel']} | {_n(c['revenue'], 0)} | {_n(c['revenue_share'] * 100, 1, '%')} | {conv} "
                         f"| {_n(c['aov'], 2)} | {_n(c['revenue_vs_baseline_pct'], 1, '%')} "
                         f"| {'; '.join(c['reasons']) if c['underperforming'] else 'ok'} |")
    lines += ["", f"## Episodes ({len(doc['episodes'])}: overlapping incidents read together)"]
    for ep in doc["episodes"]:
        matched = f" · matched {', '.join(ep['matched_event_ids'])}" if ep["matched_event_ids"] else ""
        lines += [f"### {ep['episode_id']} — {ep['primary_kpi']} {ep['direction']} ({ep['severity']}, "
                  f"{ep['signature']['label']}){matched}",
                  ep["narrative"], f"- Drivers of {ep['primary_kpi']} ({ep['drivers']['scope']}): "
                  f"{_drivers_md(ep['drivers'])}", f"- Action: {ep['recommended_action']}"]
    lines += ["", f"## Incidents ({len(doc['incidents'])} shown of {doc['incidents_total']})"]
    for it in doc["incidents"]:
        matched = f" · matched {it['matched_event_id']}" if it.get("matched_event_id") else ""
        top = it["drivers"].get("top")
        lines.append(f"- {it['incident_id']}: {it['kpi']} {_slice_label(it['dimension'], it['segment'])} "
                     f"{it['direction']} {it['start']}..{it['end']}, {_n(it['magnitude_pct'], 1, '%')} vs expected, "
                     f"{it['level']} ({', '.join(it['detectors'])}), {it['severity']}, {it['signature']['label']}"
                     + (f", driver {_slice_label(top['dimension'], top['value'])}" if top else "") + matched)
    f = doc["forecast"]
    lines += ["", "## Forecast"]
    if f["status"] == "ok":
        lines.append(f"{f['kpi']}, next {f['horizon_days']} days, {f['interval'] * 100:.0f}% interval ({f['method']}).")
        lines += [f"- {m['month']}{' (partial)' if m['partial'] else ''}: {_n(m['yhat'], 0)} "
                  f"[{_n(m['lower'], 0)}, {_n(m['upper'], 0)}]" for m in f["monthly"]]
        rec = f.get("recent")
        if rec:
            lines.append(f"- Last {len(rec['weeks'])} weeks vs forecast made {rec['forecast_made']}: "
                         f"{_n(rec['deviation_pct'], 1, '%')} (" + ", ".join(
                             f"{w['start']}: {_n(w['deviation_pct'], 1, '%')}{' OUTSIDE' if w['outside_interval'] else ''}"
                             for w in rec["weeks"]) + ")")
    else:
        lines.append(f"{f['status']}: {f.get('reason')}")
    se = doc["seasonality"]
    lines += ["", "## Seasonality (revenue)"]
    for key in ("weekday", "monthly"):
        p = se.get(key)
        if p:
            lines.append(f"- {key}: peak {p['peak']}, trough {p['trough']}, amplitude {p['amplitude_pct']:.1f}% · "
                         + " ".join(f"{x['label']} {x['index']:.2f}" for x in p["points"]))
    if doc.get("customers") is not None:
        lines += ["", "## Customers", "```json", json.dumps(doc["customers"], sort_keys=True, indent=1)[:4000], "```"]
    return "\n".join(lines) + "\n"


def _drivers_md(ds: dict[str, Any]) -> str:
    items = ds.get("drivers") or []
    if not items:
        return "no breakdown available" if ds.get("scope") == "unknown" else \
            "no slice stands out (every slice moved in proportion to its size)"
    return "; ".join(f"{_slice_label(d['dimension'], d['value'])} {d['share_of_change'] * 100:.0f}% of change"
                     + (f" ({d['relative_change_pct']:+.1f}%)" if d.get("relative_change_pct") is not None else "")
                     for d in items)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="insights schema tools")
    p.add_argument("--write-schema", action="store_true", help=f"regenerate {SCHEMA_PATH}")
    args = p.parse_args(argv)
    if args.write_schema:
        print(write_schema())
    else:
        print(schema_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
