"""Output models of ``insights.json`` (pydantic; the committed JSON Schema is generated from
``Insights``). No behaviour here: the builders live in ``sections``, ``episodes`` and
``narrative``. Size (~530 lines): the whole output contract, declarations and their field
descriptions only, kept in one module so it reads as the schema does."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "2.1"


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
    manifest_sha256: str | None = Field(
        None, description="sha256 of the data manifest (canonical JSON)"
    )
    config_sha256: str | None = Field(
        None, description="sha256 of the analysis config (canonical JSON)"
    )
    period_start: date | None = None
    period_end: date | None = None
    days: int = Field(0, ge=0)
    versions: dict[str, str] = Field(default_factory=dict)
    detectors: list[DetectorRun] = Field(
        default_factory=list, description="the detectors that ran (ok, or failed with the error)")
    detectors_failed: list[str] = Field(default_factory=list)
    detectors_not_run: list[DetectorRun] = Field(default_factory=list, description=(
        "enabled detectors that did not run by design, with the reason in error (the oracle "
        "without truth: --kpis, --transactions); not in detectors"))


class Driver(_M):
    dimension: str = Field(description="channel | country | category | channel_country")
    value: str = Field(description="slice value; 'other' for folded small slices")
    actual: float = Field(description="the slice's KPI over the window: a sum of its days (a "
                          "ratio: pooled); a --kpis file's gauge (a column not named by "
                          "--sum-columns): the mean of its days, each its periods' mean")
    expected: float = Field(description="the same from the expected source")
    change: float = Field(description="contribution to the dimension's change, in KPI units")
    share_of_change: float = Field(
        description="fraction of the dimension's change this slice carries"
    )
    share_of_expected: float = Field(description="fraction of the expected volume this slice holds")
    concentration: float = Field(description="share_of_change - share_of_expected; ranks drivers")
    relative_change_pct: float | None = Field(
        None, description="the slice's own change vs its expected, %"
    )
    n_folded: int = Field(0, ge=0, description="slices folded into 'other'")


class DriverSet(_M):
    scope: Literal["concentrated", "broad", "unknown"]
    top: Driver | None = Field(None, description="the driver, when the change is concentrated")
    named_by: Literal["drivers", "incidents"] = Field(
        "drivers",
        description="who named top: the ranking of the slices (drivers) or, for an episode "
        "without an overall incident, the slice its incidents are on (incidents)",
    )
    focus: float | None = Field(
        None,
        description="1 - relative change of the rest of the top driver's "
        "dimension / its own (1: confined, 0: uniform)",
    )
    drivers: list[Driver] = Field(
        default_factory=list,
        description="ranked across dimensions (episodes and summary: in the details file)",
    )
    breakdown: dict[str, list[Driver]] = Field(
        default_factory=dict,
        description="per dimension, small slices folded into 'other'; "
        "in insights.json always empty: the breakdowns are in "
        "the details file",
    )
    expected_source: str = Field(
        description="what 'expected' is: baseline (same weekday, weeks around the "
        "window) | detector (the detectors' median) | shift (the "
        "previous period) | mixed (by dimension) | none"
    )


class KpiTotal(_M):
    kpi: str
    total: float | None = Field(None, description=(
        "sum over the period (ratio KPIs: ratio of sums); a --kpis file's missing periods, and "
        "the periods of a first or last day it covers in part, count at their day's observed "
        "mean (a missing day: the period's), not as zero"))
    daily_mean: float | None = None


class CalendarOverlap(_M):
    date: date
    name: str
    kind: str
    scope: str | None = None


class PlannedDay(_M):
    """A planned marketing-calendar day (its kind and scope: the calendar, or the episodes')."""

    date: date
    name: str


class KpiChange(_M):
    kpi: str
    current: float | None
    previous: float | None
    change_pct: float | None = Field(
        description="current vs previous, % (a relative change; for conversion_rate not points)")
    current_start: date
    current_end: date
    previous_start: date
    previous_end: date
    drivers: DriverSet | None = None
    planned_current: list[PlannedDay] = Field(
        default_factory=list, description="planned marketing-calendar days in the current window")
    planned_previous: list[PlannedDay] = Field(
        default_factory=list,
        description="planned marketing-calendar days in the previous window (the one compared "
        "against: a Black Friday there makes an ordinary week look like a fall)")


class Summary(_M):
    period_start: date | None = None
    period_end: date | None = None
    totals: list[KpiTotal] = Field(default_factory=list)
    week_over_week: list[KpiChange] = Field(default_factory=list)
    month_over_month: list[KpiChange] = Field(
        default_factory=list, description="last 28 days vs the 28 before (weekday-aligned)"
    )
    headline: str = ""


class Channel(_M):
    channel: str
    revenue: float
    revenue_share: float = Field(
        description="fraction (0..1) of the window's revenue this channel holds, not a percent")
    sessions: float | None = None
    orders: float | None = None
    conversion_rate: float | None = Field(
        None, description="orders / sessions over the window, a fraction (0.0152 is 1.52 %)")
    aov: float | None = None
    baseline_revenue: float | None = None
    revenue_vs_baseline_pct: float | None = Field(
        None, description="revenue vs baseline_revenue, % (-29.0 is 29 % below)")
    conversion_vs_baseline_pct: float | None = Field(
        None, description="conversion_rate vs its baseline, % (a relative change, not points)")
    revenue_noise_pct: float | None = Field(
        None, description="one standard deviation, in %, of the revenue change a quiet week of "
        "this channel shows from its order count alone (Poisson on the baseline's orders, the "
        "baseline a median of `baseline_weeks` windows): order values' spread adds to it, so it "
        "is a floor; null where the change is. A change within twice it may be noise; the "
        "reason then says so")
    conversion_noise_pct: float | None = Field(
        None, description="the same for conversion_vs_baseline_pct (Poisson on the orders the "
        "baseline conversion expects from the window's sessions)")
    underperforming: bool = False
    reasons: list[str] = Field(default_factory=list)
    planned: list[CalendarOverlap] = Field(
        default_factory=list,
        description="planned marketing-calendar days in the window that concern this channel "
        "(by the calendar's scope: all, this channel or another dimension's slice): its figures "
        "include them, its baseline does not")


class Channels(_M):
    window_start: date
    window_end: date
    baseline: str = Field(description="how each channel's own baseline is built")
    channels: list[Channel] = Field(default_factory=list)
    underperformers: list[str] = Field(default_factory=list)
    planned_window: list[CalendarOverlap] = Field(
        default_factory=list, description="planned marketing-calendar days in the window")
    planned_baseline: list[CalendarOverlap] = Field(
        default_factory=list,
        description="planned marketing-calendar days in the baseline weeks, left out of the "
        "baseline of the channels they concern")
    note: str | None = Field(
        None, description="what the planned days mean for this comparison (null without any)")


Signature = Literal["traffic-driven", "conversion-driven", "basket-driven", "mix", "undetermined"]


class SignatureInfo(_M):
    label: Signature
    slice: str = Field(description="where the decomposition was computed, e.g. 'overall'")
    traffic_pct: float | None = Field(None, description="sessions change, % (log-additive part)")
    conversion_pct: float | None = None
    basket_pct: float | None = Field(None, description="AOV change, %")
    revenue_pct: float | None = None


class IncidentInsight(_M):
    incident_id: str
    kpi: str
    dimension: str
    segment: str
    start: date
    end: date
    start_time: str | None = Field(
        None, description="sub-daily input: the first period's start, YYYY-MM-DDTHH:MM (start "
        "and end hold only its day); absent for daily data")
    end_time: str | None = Field(
        None, description="sub-daily input: the last period's start, YYYY-MM-DDTHH:MM; absent "
        "for daily data")
    confirmed: date | None = Field(
        None, description="the day the incident was raised (its rule first held); start is "
        "earlier when the consensus dated the move's onset back along its voters' flags "
        "(consensus.onset_back)")
    days: int = Field(ge=1)
    direction: Literal["up", "down"]
    actual: float | None = Field(None, description="absent from insights.json: in the details file")
    expected: float | None = Field(
        None, description="absent from insights.json: in the details file"
    )
    magnitude_pct: float | None = Field(
        description="the detectors' magnitude (actual vs their baseline), %; a ratio KPI's "
        "periods are pooled by its denominator (AOV: revenue over orders of the window)"
    )
    baseline_expected: float | None = Field(
        None,
        description="the KPI over the window's whole days from the median of the "
        "same weekday in the weeks before and after it: a sum of days (a ratio: pooled); a "
        "--kpis file's gauge (a column not named by --sum-columns): the mean of its days, each "
        "its periods' mean (absent from insights.json: in the details file)",
    )
    baseline_magnitude_pct: float | None = Field(None, description="actual vs baseline_expected, %")
    measured_start: date | None = Field(
        None, description="daily data: first of the days inside the incident where its KPI "
        "itself deviated in its direction on its slice (the episodes' rule; a product's orders: "
        "the run of days, from up to 7 before the incident, with the largest Poisson likelihood "
        "ratio of a change against the watcher's expected orders); absent when that is the "
        "whole incident or nothing stands out (the 3- and 7-day windows keep flagging for days "
        "after a short shock)")
    measured_end: date | None = Field(None, description="last of those days")
    measured_change_pct: float | None = Field(
        None, description="the KPI over measured_start..measured_end vs the same weekdays "
        "around it (as baseline_magnitude_pct; a product's orders: vs the watcher's expected "
        "orders, as magnitude_pct), %")
    detectors: list[str]
    n_detectors: int | None = Field(
        None, ge=0, description="len(detectors); absent from insights.json: in the details file"
    )
    level: str
    confidence: float = Field(
        description="detection confidence 0..1: half the share of detector families that "
        "flagged it, half its peak score's strength (not the diagnosis' confidence)")
    severity: str
    peak_score: float | None = Field(
        None, description="absent from insights.json: in the details file"
    )
    drivers: DriverSet | None = Field(
        None, description="absent from insights.json: in the details file"
    )
    signature: SignatureInfo | None = Field(
        None, description="absent from insights.json: in the details file"
    )
    planned: bool = Field(description="overlaps a planned marketing-calendar day")
    calendar: list[CalendarOverlap] = Field(default_factory=list)
    narrative: str
    recommended_action: str | None = Field(
        None,
        description="by the incident's own signature; absent from insights.json: in the "
        "details file (act on the episode's)",
    )
    matched_event_id: str | None = None


ShockType = Literal[
    "site_outage",
    "channel_outage",
    "level_shift",
    "bot_traffic",
    "tracking_fault",
    "payment_failure",
    "churn_wave",
    "stockout",
    "pricing_error",
    "flash_sale",
    "fraud_orders",
    "planned_event",
    "undetermined",
]


class Evidence(_M):
    kpi: str = Field(description="the KPI that moved")
    slice: str = Field(description="where: 'overall', 'channel email', …")
    change_pct: float = Field(description="change vs the same-weekday baseline, %")
    direction: Literal["up", "down"]


class Diagnosis(_M):
    """The likely kind of shock, from funnel arithmetic (sessions x conversion x AOV) and slices."""

    type: ShockType
    label: str = Field(description="the type in words")
    confidence: float = Field(ge=0, le=1)
    evidence: list[Evidence] = Field(default_factory=list)
    scope: str = Field(description="the drivers' verdict: concentrated | broad | unknown")
    persistence: float | None = Field(
        None,
        description="share of the change still present 1-5 weeks after "
        "the episode (1: it stayed; None: not measurable)",
    )
    persistence_z: float | None = Field(
        None,
        description="that step in robust sigmas of the series' own "
        "4-week steps (|z| >= 3 and share >= 0.5: it stayed)",
    )
    persistence_kpi: str | None = None


class IncidentChange(_M):
    """One incident's own change (its flagged periods vs the detectors' expectation)."""

    why: Literal["sub_daily", "product_price", "product_orders", "direction"] = Field(
        description="sub_daily: the episode's figures are whole days (sub-daily input); "
        "product_price: a product's list price beside its category's AOV; product_orders: a "
        "product's orders beside its category's revenue; direction: the "
        "episode's figure on the KPI moved against every incident on it")
    incident_id: str
    kpi: str
    slice: str = Field(description="'overall', or the incident's slice, e.g. 'channel email'")
    change_pct: float = Field(description="the incident's magnitude_pct (product_orders: its "
                              "measured_change_pct over its measured days, where it has them)")
    start: date
    end: date
    start_time: str | None = Field(None, description="the incident's start_time (absent when "
                                   "both ends fall on midnight)")
    end_time: str | None = None


class Episode(_M):
    """Consensus incidents whose windows overlap or touch, read together as one happening."""

    episode_id: str
    start: date
    end: date
    days: int = Field(ge=1)
    direction: Literal["up", "down", "mixed"] = Field(
        description="the direction of its incidents (mixed when they differ), each on its own KPI "
        "and slice: not the sign of the title's change (primary_kpi in kpi_changes or "
        "scope_changes), which may differ (an aov-up incident in a category whose revenue fell)")
    incident_ids: list[str]
    kpis: list[str] = Field(description="KPIs with an incident in the episode")
    slices: list[str] = Field(
        description="slices with an incident, e.g. 'overall', 'channel email'"
    )
    primary_kpi: str = Field(
        description="where the change starts: sessions if traffic-driven, conversion_rate "
        "if conversion-driven, revenue or aov (the bigger move) if basket-driven, "
        "else the biggest mover"
    )
    measured_start: date = Field(
        description="span of the episode's overall incidents (all its incidents if "
        "none is overall): where kpi_changes, signature and drivers are measured"
    )
    measured_end: date
    baseline: Literal["centered", "trailing"] = Field(
        "centered",
        description="centered: the same weekday in the weeks before and after the measured span; "
        "trailing: the weeks before only (a change that stayed after the episode)",
    )
    trailing_trend_pct: float | None = Field(
        None,
        description="trailing baselines only: the primary KPI's own move (overall) over the four "
        "weeks before the measured span, % (same-weekday medians of the weeks before the span "
        "against those four weeks earlier). The trailing baseline does not remove such a trend: "
        "a season falling 8 % a month makes a lasting drop read larger; the narrative names it "
        "from 2 % up. null for centered baselines or a short history",
    )
    kpi_changes: dict[str, float | None] = Field(
        description="overall change of each main KPI over the measured "
        "span vs its same-weekday baseline, %; when the primary KPI is a series outside the "
        "store's KPIs (a --kpis file's own column), its change too"
    )
    scope_changes: dict[str, float | None] | None = Field(
        None,
        description="change of each main KPI inside the slice the drivers name (drivers.top) "
        "over the measured span vs the same baseline as kpi_changes, %; null when the change is "
        "not concentrated",
    )
    incident_change: IncidentChange | None = Field(
        None,
        description="the incident change the title quotes instead of kpi_changes or "
        "scope_changes. Sub-daily input: the episode's largest incident on its primary KPI (in "
        "the slice the title names), with its hours: kpi_changes and scope_changes are whole "
        "days, in which an hours-long shock is diluted or even reversed (a 3-hour outage read "
        "as a day at -7 %). A product-only episode with list-price incidents: the largest "
        "product price move (its category's AOV, the primary KPI, barely moves and may move "
        "the other way). Any episode whose figure on its primary KPI (the one the title would "
        "quote) moved against every incident on that KPI: the largest of them (an episode of "
        "up incidents titled 'revenue down -6.2%' because its slice had no baseline revenue). "
        "Left out otherwise")
    severity: str
    confidence: float = Field(
        description="the highest detection confidence (0..1) of its incidents; the narrative's "
        "'confidence' is the diagnosis' (diagnosis.confidence)")
    signature: SignatureInfo
    drivers: DriverSet = Field(description="drivers of the primary KPI over the episode")
    diagnosis: Diagnosis
    planned: bool
    calendar: list[CalendarOverlap] = Field(default_factory=list)
    title: str = Field(description="one line rendered from primary_kpi, kpi_changes and diagnosis; "
                       "its dates are the measured span the change is over, then the flagged "
                       "span (start to end) where they differ")
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


class BriefEpisode(_M):
    episode_id: str
    title: str = Field(description="the episode's title")
    severity: str
    diagnosis: str = Field(description="the episode's diagnosis.type")
    recommended_action: str = Field(description="the episode's action")


class Brief(_M):
    """What an analyst or an LLM reads first (<= ~1,500 tokens): the latest week and month, the
    most severe episodes, what to do. Text is copied from the cited fields, never recomputed."""

    as_of: date | None = None
    headline: str = Field("", description="summary.headline (week over week revenue)")
    last_28_days: list[str] = Field(
        default_factory=list,
        description="episodes on any of the last 28 days (started earlier or not)",
    )
    top_episodes: list[BriefEpisode] = Field(
        default_factory=list, description="the 5 most severe episodes (severity, then size)"
    )


class Insights(_M):
    schema_version: Literal["2.1"] = SCHEMA_VERSION
    run: RunInfo
    summary: Summary
    channels: Channels | None = None
    incidents_total: int = Field(0, ge=0)
    episodes: list[Episode] = Field(default_factory=list)
    incidents: list[IncidentInsight] = Field(default_factory=list)
    forecast: Forecast
    seasonality: Seasonality
    customers: dict[str, Any] | None = Field(None, description="customer intelligence (free-form)")
    brief: Brief = Field(default_factory=Brief)
    details_file: str | None = Field(
        None,
        description="side file in the run directory with the full per-slice "
        "breakdowns (episodes, summary) and incident driver lists",
    )
