"""Configuration of the customer-intelligence part (section ``customers:`` of config/analysis.yaml).

Owned by the customers package; the analysis config embeds ``CustomersConfig``. Every section has
defaults, so an absent ``customers:`` section (or any absent sub-section) works. Size (~530
lines): one model per block of the YAML's ``customers:`` section, with its checks, read as one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shocklab.configio import first_repeat
from shocklab.textfile import control_character


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _printable(v: str | None) -> str | None:
    """A user-given name (a segment's, an action's, the monitor's namespace) holds no control
    character, as a channel's must not (``simulation.names``): names go into the customer CSVs,
    the monitor's SQLite and alerts, insights.json and insights.md, where a newline wrote a
    heading of its own, and into error lines, which it split in two."""
    if v is not None and (why := control_character(v)):
        raise ValueError(f"{v!r} {why}; choose another name")
    return v


class ScoreRange(_Strict):
    """Inclusive range of RFM scores, e.g. ``{min: 4, max: 5}``."""

    min: int = Field(1, ge=1, le=5)
    max: int = Field(5, ge=1, le=5)

    @model_validator(mode="after")
    def _ordered(self) -> ScoreRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class OverdueRange(_Strict):
    """Inclusive range of "overdue" = recency / the customer's mean days between purchase days
    (orders of one day are one purchase; a customer who bought on one day only has no cadence and
    never matches an overdue condition)."""

    min: float = Field(0.0, ge=0, le=1000)
    max: float = Field(1e9, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> OverdueRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class SegmentRule(_Strict):
    """Customers whose R, F, M scores (and, if given, overdue ratio) fall in the ranges.

    Rules are tried in order and the first match wins; several rules may share a name (a segment
    that is a union of cells).
    """

    name: str = Field(min_length=1, max_length=40)
    r: ScoreRange = ScoreRange()
    f: ScoreRange = ScoreRange()
    m: ScoreRange = ScoreRange()
    overdue: OverdueRange | None = None

    _name = field_validator("name")(_printable)


def _rule(name: str, r: tuple[int, int], f: tuple[int, int],
          overdue: tuple[float, float] | None = None) -> SegmentRule:
    return SegmentRule(
        name=name,
        r=ScoreRange(min=r[0], max=r[1]),
        f=ScoreRange(min=f[0], max=f[1]),
        overdue=None if overdue is None else OverdueRange(min=overdue[0], max=overdue[1]),
    )


# The classic R x F grid (every one of the 25 cells is covered), with one refinement: "At Risk"
# is a repeat buyer who is now 4-10x their own usual gap between purchase days overdue (a Poisson
# buyer who is still active waits that long only 2 % of the time). The classic
# "R 1-2, F 3-5" cell keeps every frequent customer who ever left, so it mostly counts the long
# gone and reacts to a churn wave only months later; the cadence-relative cell is where leavers
# show up first (and they move on to "Lost" when 10x overdue). "Lapsing" is the step before: a
# repeat buyer past their own usual gap (1-4x). An active Poisson buyer is there e^-1 - e^-4 = 35 %
# of the time, a steady share that a churn wave raises within about one gap: the early signal the
# monitor watches (At Risk only fills up ~4 gaps after a wave, months in this store).
# Beyond 10x a repeat buyer is "Lost" whatever their R quintile (outside the most recent fifth,
# R = 5, where a first gap of a day or two makes a few quiet days "10x"): R alone kept them
# Champions and Loyal wherever the quintiles reach far back (the default world's two years:
# 5,282 of its 28,335 Champions and Loyal were 10-339x past their own gap, median 296 days
# quiet, churn risk 0.95, and 277 got cross-sell offers).
DEFAULT_SEGMENTS = [
    _rule("At Risk", (1, 5), (3, 5), overdue=(4.0, 10.0)),
    _rule("Lapsing", (1, 5), (2, 5), overdue=(1.0, 4.0)),
    _rule("Lost", (1, 4), (1, 5), overdue=(10.0, 1e9)),
    _rule("Champions", (4, 5), (4, 5)),
    _rule("Loyal", (3, 5), (3, 5)),
    _rule("New", (5, 5), (1, 1)),
    _rule("Potential", (4, 5), (1, 2)),
    _rule("Need Attention", (3, 3), (1, 2)),
    _rule("Need Attention", (1, 2), (3, 5), overdue=(0.0, 4.0)),
    _rule("Hibernating", (2, 2), (1, 2)),
    _rule("Lost", (1, 2), (1, 5)),
]


class OverdueConfig(_Strict):
    """How "overdue" (recency / expected gap between purchase days) is measured.

    Defaults are the plain rule (calendar days, own gaps). Measured on the default two-year world
    (issue-15 note): the activity clock removed the December/January alerts but also hid the
    March churn wave (the sim's returning-order volume is traffic-driven, and the spring
    slowdown that the clock takes out is part of what made the wave visible); gap shrinkage
    with k = 1 found the wave 8 days sooner but doubled the alerts outside it."""

    clock: Literal["calendar", "activity"] = Field("calendar", description=(
        "activity: days weighted by the store's returning-order activity (seasonality-aware: the "
        "January lull does not make December buyers overdue); calendar: plain days"))
    gap_prior_strength: float = Field(
        0.0,
        ge=0,
        le=100,
        description=(
            "pseudo-gaps of the store's pooled gap added to each customer's own (empirical Bayes); "
            "0 = own gaps only"
        ),
    )


class RfmConfig(_Strict):
    overdue: OverdueConfig = Field(default_factory=OverdueConfig)
    segments: list[SegmentRule] = Field(
        default_factory=lambda: list(DEFAULT_SEGMENTS), min_length=1
    )
    default_segment: str = Field("Other", min_length=1, max_length=40)
    recency_min_span_days: int = Field(7, ge=1, le=3650, description=(
        "recency is scored only when the customers' last orders spread over at least this many "
        "days; else every customer gets the middle score R = 3 and the customers summary says so "
        "(a file of a day or a few: all recencies tie or differ by a few days, which says nothing "
        "about who is lost)"))

    _default_segment = field_validator("default_segment")(_printable)

    @property
    def names(self) -> list[str]:
        """Distinct segment names in rule order, then the default."""
        return list(dict.fromkeys([s.name for s in self.segments] + [self.default_segment]))

    @property
    def uses_monetary(self) -> bool:
        return any(s.m.min > 1 or s.m.max < 5 for s in self.segments)


class ClustersConfig(_Strict):
    enabled: bool = True
    k: int | None = Field(None, ge=2, le=20, description="fixed k; null = choose by silhouette")
    k_min: int = Field(2, ge=2, le=20)
    k_max: int = Field(8, ge=2, le=20)
    silhouette_sample: int = Field(3000, ge=100, le=100_000)
    n_init: int = Field(4, ge=1, le=50)
    fit_sample: int = Field(
        20_000,
        ge=100,
        le=10_000_000,
        description=(
            "customers the final KMeans is fitted on (every j-th in id order); every customer is "
            "labelled"
        ),
    )

    @model_validator(mode="after")
    def _range(self) -> ClustersConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must be <= k_max ({self.k_max})")
        return self


class ChurnConfig(_Strict):
    enabled: bool = True
    horizon_days: int = Field(
        60, ge=14, le=365, description="churned = no order in the next N days"
    )
    min_history_days: int = Field(
        60, ge=0, le=1000, description="history needed before the first cutoff"
    )
    rf_trees: int = Field(30, ge=10, le=2000)
    train_rows: int = Field(20_000, ge=100, le=10_000_000, description=(
        "customers the models train on (every k-th in id order; all are scored)"))
    rf_max_depth: int | None = Field(8, ge=1, le=64)
    rf_max_samples: float = Field(
        0.25, gt=0, le=1, description="share of rows each tree sees (speed)"
    )
    lr_c: float = Field(1.0, gt=0, le=1e6)
    threshold: float = Field(
        0.5, gt=0, lt=1, description="probability threshold for the confusion matrix"
    )


class CohortsConfig(_Strict):
    enabled: bool = True
    max_months: int = Field(24, ge=1, le=240)


class ClvConfig(_Strict):
    enabled: bool = True
    horizon_days: int = Field(365, ge=7, le=3650)
    discount_rate_monthly: float = Field(0.01, ge=0, le=1)
    interval: float = Field(
        0.9, gt=0, lt=1, description="central interval of each customer's expected value"
    )
    fit_customers: int = Field(5_000, ge=100, le=10_000_000, description=(
        "customers the population parameters are fitted on (every k-th; all are scored)"))
    activity_clock: bool = Field(True, description=(
        "purchase rates in the store's activity time (repeat purchase days per unit of the "
        "alive customers' rate): a growing base shares repeat volume, so a late customer's "
        "few orders are not a low rate; the forecast uses the last 90 days' activity"))
    dropout: Literal["cohorts", "fitted"] = Field("cohorts", description=(
        "with the activity clock: 'cohorts' takes the dropout from acquisition cohorts (a "
        "baseline rate, the median hazard between consecutive cohorts, plus churn waves: "
        "steps far above it), so a history with waves is not read as short lifetimes; "
        "'fitted' fits an age-based dropout with the purchase rates (falls back to it when "
        "there are too few cohorts, or too few customers a cohort to know the baseline)"))


class SeverityTier(_Strict):
    """Growth of the watched segment's share over ``window_days``, beyond its normal growth (the
    baseline's median drift), at or above ``min_growth``."""

    severity: Literal["warning", "high", "critical"]
    min_growth: float = Field(
        gt=0, le=100, description="relative growth beyond normal, 0.02 = +2 %"
    )


class PopulationConfig(_Strict):
    """The customers a watched segment's share is measured among (its denominator; segment members
    outside it are not counted either).

    All customers seen so far is a poor denominator in a store that keeps acquiring: most new
    customers buy once, so the share of any repeat-buyer segment drifts with acquisition. Repeat
    buyers (``min_orders: 2``) not yet gone for good (``max_overdue``) are a population whose
    overdue share is steady for buyers at their own cadence and rises when a wave removes buyers.
    """

    min_orders: int = Field(
        1, ge=1, le=1000, description="at least this many orders (1 = every customer seen)"
    )
    max_overdue: float | None = Field(
        None,
        gt=0,
        le=1e9,
        description=(
            "leave out customers more than this many of their own mean gaps overdue (gone for "
            "good); null = keep"
        ),
    )
    active_days: int | None = Field(
        None, ge=1, le=3650, description="last order within this many days; null = any"
    )

    def describe(self) -> str:
        """The population in words, for alert texts ("customers with 2+ orders, ...")."""
        parts = [
            "all customers" if self.min_orders <= 1 else f"customers with {self.min_orders}+ orders"
        ]
        if self.max_overdue is not None:
            parts.append(f"at most {self.max_overdue:g}x their usual gap overdue")
        if self.active_days is not None:
            parts.append(f"an order in the last {self.active_days} days")
        return ", ".join(parts)

    def mask(self, frequency: np.ndarray, recency: np.ndarray, overdue: np.ndarray) -> np.ndarray:
        """Which customers belong to the population (``overdue`` NaN = no cadence yet: kept)."""
        keep = frequency >= self.min_orders
        if self.max_overdue is not None:
            keep &= ~(overdue > self.max_overdue)
        if self.active_days is not None:
            keep &= recency <= self.active_days
        return keep


class ShortfallConfig(_Strict):
    """Repeat-order shortfall: do repeat buyers order at their usual rate?

    Each day's returning orders (a customer's second or later valid order) are compared with what
    the day's orders of each channel predict from the channel's returning share over a trailing
    baseline: acquisition and repeat buying move together with traffic, seasons, sales and
    outages, but a churn wave removes repeat buyers only. Per-day z's are scaled by their
    baseline dispersion, clipped (a one-day burst of fraudulent new accounts cannot decide),
    summed over the window and divided by sqrt(window x (1 + window / baseline)): at most clip_z x
    sqrt(window / (1 + window / baseline)), 8.71 by default. A segment-share growth is only churn
    when this statistic confirms it."""

    enabled: bool = True
    segment: str | None = Field(
        "Lapsing",
        description="the segment this statistic raises alerts for by itself (null = none: it "
        "only confirms share growth)",
    )
    window_days: int = Field(14, ge=1, le=365, description="days whose shortfall is judged")
    baseline_days: int = Field(
        91, ge=7, le=1000, description="trailing days (before the window) giving each channel's "
        "returning share"
    )
    min_z: float = Field(3.5, ge=0, le=100, description="shortfall z needed (one-sided)")
    clip_z: float = Field(
        2.5, gt=0, le=100, description="per-day z clipped to +-this before summing"
    )
    confirm_days: int = Field(
        30, ge=0, le=1000, description="a segment's share growth alerts only if the shortfall "
        "was flagged within this many days before (or on) the day"
    )
    min_reference_orders: int = Field(
        30, ge=1, le=10_000_000, description="new and returning orders the baseline needs; "
        "without them (a store that stopped acquiring, or too little history) share growth "
        "alone decides"
    )
    judge_before_baseline: bool = Field(
        False, description="let share growth alone alert before the statistic's first full "
        "baseline (the data's first window_days + baseline_days days). Off: a file that starts "
        "mid-history makes every customer look recent at first and reads each one's usual gap "
        "from a few orders, so the overdue shares grow with nothing wrong"
    )

    @model_validator(mode="after")
    def _reachable(self) -> ShortfallConfig:   # min_z 9 silenced every monitor alert, exit 0
        top = self.clip_z * (self.window_days / (1 + self.window_days / self.baseline_days)) ** .5
        if self.min_z > top:
            raise ValueError(f"min_z {self.min_z:g} can never be reached: the statistic is at most "
                             f"clip_z x sqrt(window / (1 + window / baseline)) = {top:.2f} here")
        return self


class MonitorConfig(_Strict):
    enabled: bool = True
    segments: list[str] = Field(default_factory=lambda: ["At Risk", "Lapsing"], min_length=1)
    window_days: int = Field(28, ge=1, le=365, description="growth is measured over this many days")
    baseline_days: int = Field(
        90, ge=7, le=1000, description="trailing days giving the normal growth"
    )
    min_z: float = Field(
        3.0, ge=0, le=100, description="growth must also be this unusual vs the baseline"
    )
    min_customers: int = Field(20, ge=1, le=10_000_000)
    population: PopulationConfig = Field(
        default_factory=lambda: PopulationConfig(min_orders=2, max_overdue=10.0)
    )
    tiers: list[SeverityTier] = Field(default_factory=lambda: [
        SeverityTier(severity="warning", min_growth=0.01),
        SeverityTier(severity="high", min_growth=0.03),
        SeverityTier(severity="critical", min_growth=0.06),
    ], min_length=1)
    cooldown_days: int = Field(7, ge=0, le=365, description="per segment and severity")
    escalate_after_days: int | None = Field(
        None, ge=1, le=365, description="re-alert one tier up if an incident lasts this long"
    )
    incident_gap_days: int = Field(3, ge=0, le=60, description="quiet days that end an incident")
    state_path: str | None = Field(
        None,
        description=(
            "SQLite file of snapshots, cooldowns and the alert outbox; null = "
            "state/customers.sqlite (state/: SHOCKLAB_STATE_DIR when set) in "
            "daily mode (--as-of), customers/monitor.sqlite inside the run directory in replay mode"
        ),
    )
    namespace: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description=(
            "the data set's name in the monitor state (snapshots, incidents, cooldowns, alert "
            "ids); null = from the data: a simulated world's scenario, seed and config hash, a "
            "transactions or KPI file's name. Name the store when its daily export's file name "
            "changes (orders_2011-12-01.csv), else every day is a new data set and an ongoing "
            "incident is alerted again"
        ),
    )
    replay: bool = True
    shortfall: ShortfallConfig = ShortfallConfig()

    _namespace = field_validator("namespace")(_printable)

    @field_validator("tiers")
    @classmethod
    def _tiers_unique(cls, v: list[SeverityTier]) -> list[SeverityTier]:
        sev = [t.severity for t in v]
        if len(set(sev)) != len(sev):
            raise ValueError("each severity may appear once")
        return sorted(v, key=lambda t: t.min_growth)


class SlackConfig(_Strict):
    enabled: bool = False
    url_env: str = Field(
        "SLACK_WEBHOOK_URL", min_length=1, description="env var holding the webhook URL"
    )
    timeout_s: float = Field(5.0, gt=0, le=120)
    retries: int = Field(3, ge=0, le=10)
    backoff_s: float = Field(1.0, ge=0, le=60)


class AlertsConfig(_Strict):
    console: bool = True
    jsonl: bool = True
    jsonl_path: str | None = Field(None, description="null = customers/alerts.jsonl in the run dir")
    slack: SlackConfig = SlackConfig()

    @field_validator("jsonl_path")
    @classmethod
    def _a_file_it_can_write(cls, v: str | None) -> str | None:
        """A directory (or a path under a file, or in a directory it cannot write) was accepted:
        the run said ok, exit 0, and no alert was written anywhere (only ``undelivered_to``)."""
        if v is None:
            return v
        path = Path(v)   # as JsonlSink opens it (no ~ expansion)
        if path.is_dir():
            raise ValueError(f"{v!r} is a directory; give the alerts file's path in it "
                             f"(e.g. {str(Path(v) / 'alerts.jsonl')!r})")
        up = next(p for p in path.parents if p.exists() or p == p.parent)
        if up.exists() and not up.is_dir():
            raise ValueError(f"{v!r}: {str(up)!r} is a file, not a directory")
        if up.is_dir() and not os.access(up, os.W_OK | os.X_OK):
            raise ValueError(f"{v!r}: cannot write in {str(up)!r}")
        return v


class ActionRule(_Strict):
    """(segment, churn risk, value, recency) -> action. First matching rule wins; empty lists and
    unset conditions match all.

    Churn risk is P(no order in the churn horizon): its level follows the store's purchase
    frequency (0.91 on average in the default world, where most customers buy less than every 60
    days), so a fixed cut-off such as 0.7 passes nearly everyone there. ``min_churn_lift`` /
    ``max_churn_lift`` compare it with the store's base rate instead (the mean churn risk of the
    scored customers): 1 = as likely to churn as the store's average customer. ``overdue`` (recency
    / the customer's own mean days between purchase days; one-day buyers never match it) keeps a
    retention call from a customer still inside their usual purchase gap, and ``max_p_alive``
    from one the CLV model says is almost surely still buying (two orders a few days apart make
    a few quiet days "overdue"); ``r`` (the R score, 1 = the fifth of customers gone longest, as
    in the segment rules) caps recency where "Lost" begins."""

    action: str = Field(min_length=1, max_length=60)
    segments: list[str] = Field(default_factory=list)
    min_churn_risk: float = Field(0.0, ge=0, le=1)
    max_churn_risk: float = Field(1.0, ge=0, le=1)
    min_churn_lift: float = Field(
        0.0, ge=0, le=1000,
        description="churn risk / the store's base rate (mean churn risk); 1 = average")
    max_churn_lift: float = Field(1e9, ge=0)
    min_value_pct: float = Field(
        0.0, ge=0, le=1, description="value percentile (CLV rank), 0.9 = top 10 %"
    )
    max_value_pct: float = Field(1.0, ge=0, le=1)
    max_p_alive: float = Field(
        1.0, ge=0, le=1,
        description="P(alive) from the CLV model at most this (unknown P(alive): no match)")
    overdue: OverdueRange | None = None
    r: ScoreRange = ScoreRange()

    _action = field_validator("action")(_printable)

    @model_validator(mode="after")
    def _ranges(self) -> ActionRule:
        if self.min_churn_risk > self.max_churn_risk:
            raise ValueError("min_churn_risk must be <= max_churn_risk")
        if self.min_churn_lift > self.max_churn_lift:
            raise ValueError("min_churn_lift must be <= max_churn_lift")
        if self.min_value_pct > self.max_value_pct:
            raise ValueError("min_value_pct must be <= max_value_pct")
        return self


# An urgent call goes to a top-value customer past their own usual gap whom the CLV model gives
# at least a 10 % chance of being gone; offers to customers riskier than the store's average
# customer, no win-back where "Lost" begins (R = 1: the fifth of customers gone longest).
DEFAULT_ACTIONS = [
    ActionRule(
        action="urgent VIP call",
        segments=["At Risk", "Lapsing", "Need Attention", "Loyal", "Champions", "Lost"],
        min_value_pct=0.95,
        overdue=OverdueRange(min=1.0),
        max_p_alive=0.9,
    ),
    ActionRule(
        action="win-back offer",
        segments=["At Risk", "Lapsing", "Hibernating", "Need Attention"],
        min_churn_lift=1.0,
        r=ScoreRange(min=2),
    ),
    ActionRule(action="onboarding nurture", segments=["New", "Potential"]),
    ActionRule(action="cross-sell", segments=["Champions", "Loyal"], max_churn_lift=1.0),
]


class ActionsConfig(_Strict):
    rules: list[ActionRule] = Field(default_factory=lambda: list(DEFAULT_ACTIONS))
    default_action: str = Field("no action", min_length=1, max_length=60)

    _default_action = field_validator("default_action")(_printable)


class CustomersConfig(_Strict):
    enabled: bool = True
    # 0, not null, is "unset": the default config's effective dump, and with it every run id
    # and insights.json's config_sha256, stays what it was
    seed: int = Field(
        0, ge=0, le=2**31 - 1,
        description="seed of the customer models (k-means, churn models) apart from the "
        "detectors; 0 = the analysis' top-level `seed`",
    )
    rfm: RfmConfig = RfmConfig()
    clusters: ClustersConfig = ClustersConfig()
    churn: ChurnConfig = ChurnConfig()
    cohorts: CohortsConfig = CohortsConfig()
    clv: ClvConfig = ClvConfig()
    monitor: MonitorConfig = MonitorConfig()
    alerts: AlertsConfig = AlertsConfig()
    actions: ActionsConfig = ActionsConfig()
    plots: bool = True

    @model_validator(mode="after")
    def _known_segments(self) -> CustomersConfig:
        known = self.rfm.names
        sf = self.monitor.shortfall
        for where, names in (("monitor.segments", self.monitor.segments),
                             ("monitor.shortfall.segment", [sf.segment] if sf.segment else []),
                             *((f"actions.rules[{i}].segments", r.segments)
                               for i, r in enumerate(self.actions.rules))):
            bad = [n for n in names if n not in known]
            if bad:   # the names quoted (repr): the error stays one line whatever they hold
                raise ValueError(f"{where}: {bad[0]!r} is not a configured segment "
                                 f"({', '.join(map(repr, known))})")
            # monitor.segments: the segment's series and alerts were made twice
            if (twice := first_repeat(names)) is not None:
                raise ValueError(f"{where}: {twice!r} is listed twice")
        return self
