"""Response models of the HTTP API. Insights, episodes and the forecast reuse the models that
validate ``insights.json`` (``analytics.insights``), so the OpenAPI docs and the file's JSON Schema
cannot drift apart."""

from __future__ import annotations

import datetime as _dt
import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from analytics.insights.models import Episode, Forecast, IncidentInsight, Insights  # noqa: F401 (re-exported)


def _iso_day(value: Any) -> Any:
    """A day parameter as written, YYYY-MM-DD: pydantic's lax date also took a number as Unix
    seconds (``start=0`` was 1970-01-01, ``start=20250101`` a confusing "should have zero
    time")."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"expected a day as YYYY-MM-DD, got {value[:40]!r}")
    return value


Day = Annotated[date, BeforeValidator(_iso_day)]


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    runs: int = Field(description="run directories under the reports root")
    experiments: int = Field(description="experiment directories under the runs root")
    analysis_enabled: bool = Field(description="whether POST /runs is enabled (--allow-analysis)")


class RunSummary(BaseModel):
    id: str
    source: str = Field(description="simulated | transactions | kpis | unknown")
    scenario: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    data_hash: str | None = None
    has_scorecard: bool = Field(
        description="a readable scorecard.json (false when it is missing or unreadable)")
    recall: float | None = Field(None, description="consensus recall (headline scoring mode)")
    precision: float | None = None
    f1: float | None = None
    incidents: int | None = Field(None, description="consensus incidents")
    modified: str | None = Field(None, description="directory modification time, UTC")
    missing: list[str] = Field(description="expected files this run directory does not have")
    unreadable: dict[str, str] = Field(
        default_factory=dict,
        description="files present but not parseable (truncated, edited) -> the reason; run.json, "
        "insights.json and scorecard.json are always read, another file once a route has read it")


class RunDetail(RunSummary):
    files: dict[str, bool] = Field(description="each known file and whether it is present")
    config: dict[str, Any] | None = Field(
        None, description="the effective analysis config (run.json)"
    )
    versions: dict[str, str] | None = None
    timings_seconds: dict[str, float] | None = None
    detector_status: dict[str, Any] | None = None
    links: dict[str, str] = Field(default_factory=dict)


class Scorecard(BaseModel):
    """``scorecard.json`` as written by the analysis (strict and lenient blocks, per-event
    detail)."""

    model_config = ConfigDict(extra="allow")
    schema_: str | None = Field(None, alias="schema")
    headline: dict[str, Any]
    strict: dict[str, Any] | None = None
    lenient: dict[str, Any] | None = None
    event_detail: list[dict[str, Any]] = Field(default_factory=list)


class Incident(BaseModel):
    """One incident of ``incidents.json`` (consensus or a single detector's)."""

    model_config = ConfigDict(extra="allow")
    incident_id: str
    kpi: str
    dimension: str
    segment: str
    start: _dt.datetime | _dt.date = Field(description="a day, or a timestamp on sub-daily data")
    end: _dt.datetime | _dt.date = Field(description="a day, or a timestamp on sub-daily data")
    confirmed: _dt.datetime | _dt.date | None = Field(
        None, description="when the incident was raised (the rule first held); start is earlier "
        "when consensus.onset_back moved the onset back along the voters' flags. Runs written "
        "before 2026-12-06 lack it (null)")
    direction: str
    level: str | None = None
    detectors: list[str] = Field(default_factory=list)
    severity: str | None = None
    confidence: float | None = None
    magnitude_pct: float | None = None
    actual: float | None = None
    expected: float | None = None
    peak_score: float | None = None
    matched_event_id: str | None = None


class IncidentPage(BaseModel):
    total: int = Field(description="incidents matching the filters")
    offset: int
    limit: int
    source: str = Field(description="'consensus' or a detector name")
    items: list[Incident]


class KpiPoint(BaseModel):
    date: _dt.datetime | _dt.date = Field(
        description="the period: a day, or a timestamp on sub-daily data (a --kpis run)"
    )
    value: float | None


class KpiSeries(BaseModel):
    kpi: str
    dimension: str
    segment: str
    points: list[KpiPoint]


class SegmentCount(BaseModel):
    segment: str
    customers: int
    share: float


class CustomerSegments(BaseModel):
    customers: int
    segments: list[SegmentCount]
    clusters: dict[str, int] = Field(default_factory=dict)
    actions: dict[str, int] = Field(default_factory=dict)
    monitor_alerts: list[dict[str, Any]] = Field(default_factory=list)


class CustomerAction(BaseModel):
    model_config = ConfigDict(extra="allow")
    customer_id: str
    action: str | None = None
    reason: str | None = None
    segment: str | None = None
    churn_risk: float | None = None
    clv: float | None = None
    value_pct: float | None = None
    value_tier: str | None = None


class ActionPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[CustomerAction]


class ExperimentSummary(BaseModel):
    id: str
    kind: str
    name: str | None = None
    cells: int | None = None
    failed: int | None = None
    gate_passed: bool | None = Field(
        None, description="the gate verdict; null without gate checks, or when gate.json cannot "
        "be read (it is then under unreadable)")
    modified: str | None = None
    missing: list[str] = Field(description="expected files this experiment does not have")
    unreadable: dict[str, str] = Field(
        default_factory=dict,
        description="files present but not parseable (truncated, edited) -> the reason")


class AnalysisRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: str = Field(
        min_length=1,
        description="data directory, relative to a configured data root or "
        "an absolute path inside one",
    )
    detectors: list[str] | None = Field(
        None, min_length=1,
        description="run only these configured detectors (leave out for the configured set)",
    )
    overrides: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="analysis config overrides, dotted KEY=VALUE (like --set)",
    )


class JobStatus(BaseModel):
    run_id: str
    state: Literal["running", "succeeded", "failed"]
    data: str = Field(description="the data path as the request named it")
    status_url: str
    run_url: str
    started: str
    finished: str | None = None
    exit_code: int | None = Field(None, description="run_analysis.py's exit code (0 ok, 2 bad "
                                  "input, 3 internal error); negative: killed by that signal")
    error: str | None = Field(None, description="the analysis's one-line error, when it failed")
