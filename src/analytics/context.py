"""The objects that travel through one analysis run — the contract between the pipeline's parts.

``DataSet`` is what loading produces (observable tables only). Truth — the simulator's
``truth/`` or labelled windows — reaches a run as ``RunContext.truth`` (``shocklab.truth.Truth``),
attached by ``evaluation.truth.attach`` and read only by evaluation stages
(tests/test_truth_wall.py).
``RunContext`` accumulates results stage by stage; KPIs, detectors, consensus, scoring, insights,
customers and plots each read what earlier stages put there and add their own part.

Table shapes
------------
kpis_daily : wide DataFrame, one row per (date, dimension, segment)
    date (datetime64, normalized), dimension in {"overall", "channel", "country", "category"},
    segment (slice value; "all" for overall), then one column per KPI: sessions, orders, revenue,
    aov, conversion_rate, units, new_customers, returning_customers, cancellation_rate
    (NaN where a KPI does not exist for a dimension, e.g. sessions by category).
detections : long DataFrame, one row per (date, kpi, dimension, segment, detector)
    score (float, common z-like scale: |score| >= ~3 is unusual), flag (bool),
    direction ("up" | "down"), expected (the detector's baseline for that point; NaN if none),
    actual (observed value), mode ("causal" | "in_sample").
incidents : list[Incident] — consensus incidents (see ``Incident``), and per-detector incidents
    built the same way for scoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pandas as pd

# re-exported for older importers; the vocabulary is defined once, in shocklab.catalogue
from shocklab.catalogue import DIMENSIONS, KPI_NAMES  # noqa: F401

if TYPE_CHECKING:  # types only (no import cycle; analytics never touches the truth at run time)
    from shocklab.truth import Truth

    from .config import AnalysisConfig
    from .detectors.base import DetectorInput


@dataclass
class DataSet:
    """Observable tables of a data directory (or of external files); never its truth."""

    path: Path | None
    tables: dict[str, pd.DataFrame]
    manifest: dict[str, Any] = field(default_factory=dict)
    source: str = "simulated"  # "simulated" | "transactions" | "kpis"
    # external KPI files: what ingestion did (step, missing periods, duplicates …; see
    # analytics.external)
    ingest: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventWindow:
    """A known event's window to shade on plots (no effects): handed in with the truth by
    ``evaluation.truth.attach``; analytics draws it and derives nothing from it."""

    start: str
    end: str
    type: str
    expected: bool  # a planned calendar occurrence


@dataclass
class Incident:
    """A run of flagged days (gaps <= merge_gap_days) on one KPI, one slice, one direction."""

    incident_id: str  # stable across identical runs, e.g. "I-revenue-overall-all-2025-06-10-down"
    kpi: str
    dimension: str              # "overall" | "channel" | "country" | "category"
    segment: str                # slice value, "all" for overall
    start: pd.Timestamp
    end: pd.Timestamp
    direction: str              # "up" | "down"
    detectors: list[str]        # detectors that voted (for a single-detector incident: [that one])
    level: str                  # "single" | "pairwise" | "triple" (or "k_of_n")
    confidence: float           # 0..1
    severity: str               # "low" | "medium" | "high" | "critical"
    peak_score: float           # max |calibrated score| within the window
    actual: float               # KPI summed (counts/revenue) over the window; a ratio pooled
                                # (periods weighted by its denominator's actual counts: AOV =
                                # revenue / orders), averaged without one (--kpis columns)
    expected: float             # same aggregation (same weights) of the detectors' baseline
    magnitude_pct: float        # (actual - expected) / expected * 100
    matched_event_id: str | None = None  # filled by scoring when truth exists
    # the first period the rule held: the alarm's time. ``start`` is earlier when the consensus'
    # onset_back moved the onset back along its voters' flags; None = ``start``
    confirmed: pd.Timestamp | None = None

    @property
    def alarm(self) -> pd.Timestamp:
        """When the incident was raised (``confirmed``, else ``start``): detection delays count
        from here, not from an onset found afterwards."""
        return self.start if self.confirmed is None else self.confirmed

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["start"] = self.start.date().isoformat()
        d["end"] = self.end.date().isoformat()
        d["confirmed"] = self.alarm.date().isoformat()
        return d


class DetectorStatus(TypedDict, total=False):
    """How one configured detector fared in the detect stage (run.json, incidents.json)."""

    ok: bool                    # ran and produced detections
    error: str | None           # one line when it failed (the others still vote)
    skipped: bool               # not run (needs truth the data lack)
    mode: str                   # "causal" | "in_sample"
    votes: bool                 # counts in the consensus
    warnings: list[str]
    seconds: float              # run.json only (incidents.json drops it: bytes stay stable)


# the scorecard of evaluation.scoring.build_scorecard: {"settings", "headline", "strict",
# "lenient", "false_alerts", "insights", "customers", ...} (docs/ARCHITECTURE.md "Scoring");
# a JSON document, so a mapping — only evaluation writes it, analytics only reads it (plots)
Scorecard = dict[str, Any]


@dataclass
class RunContext:
    """Everything one run produces. Stages only fill it; ``analytics.outputs`` writes the run
    directory from it at the end (the one writer)."""

    config: AnalysisConfig      # validated once, at load (tests: tests/configs.make_config)
    data: DataSet
    out_dir: Path               # the temporary run directory (atomically renamed at the end)
    # ground truth for the evaluation stages only: no analytics module reads it (the wall test)
    truth: Truth | None = None
    has_truth: bool = False     # the run is scored (set with ``truth`` by evaluation.truth.attach)
    event_windows: list[EventWindow] = field(default_factory=list)  # shaded on plots
    kpis_daily: pd.DataFrame | None = None
    kpi_tables: dict[str, pd.DataFrame] = field(
        default_factory=dict
    )  # monthly_revenue, channel_performance, top_products, revenue_by_country
    detections: pd.DataFrame | None = None
    # the watched series as stage_detect built them (pipeline.detector_input, a DetectorInput):
    # the evaluation's oracle stage scores the same series and reuses them instead of rebuilding;
    # set before the detect stage (a sweep cell, with the input its world and settings gave an
    # earlier cell: experiments/cell.py), stage_detect takes it as it is
    watched: DetectorInput | None = None
    detector_status: dict[str, DetectorStatus] = field(default_factory=dict)
    detector_incidents: dict[str, list[Incident]] = field(default_factory=dict)
    # the oracle's incidents' onsets by cut (scored runs only; Votes.onset_records)
    oracle_onsets: dict[str, list[tuple[pd.Timestamp, float, float]]] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)  # consensus
    # consensus incidents dropped by alarm suppression (consensus.suppress)
    suppressed_incidents: list[Incident] = field(default_factory=list)
    consensus_levels: dict[str, list[Incident]] = field(
        default_factory=dict
    )  # "k1".."kn": k of n voters agree (for scoring)
    voters: list[str] = field(default_factory=list)  # detectors that voted in the consensus
    scorecard: Scorecard | None = None  # set by evaluation.pipeline.stage_score (truth only)
    insights: dict[str, Any] | None = None  # the insights.json document (validated)
    insights_details: dict[str, Any] | None = None  # insights_details.json
    insights_markdown: str | None = None  # insights.md
    customers: dict[str, Any] | None = None  # customer-intelligence summary for insights.json
    # per-customer and aggregate tables, written by analytics.outputs as customers/<name>.csv:
    # segments, actions, clv, clusters, cohort_retention, monitor_series
    customer_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    # customer models scored against truth by the evaluation stage (customers/truth_scores.json)
    customer_scores: dict[str, Any] | None = None
    # fitted customer models an evaluation stage may score against truth, e.g. {"clv": {"table",
    # "end", "config"}}
    customer_models: dict[str, Any] = field(default_factory=dict)
    # rendered figures: run-directory path ("plots/kpi_revenue.png") -> PNG bytes
    figures: dict[str, bytes] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    # results computed ahead of the stage that reports them (insight scoring's event windows;
    # the insights' revenue forecast, in the customers worker: analytics.schedule); never
    # written as such
    ahead: dict[str, Any] = field(default_factory=dict)
    # groups of run-directory files already written (analytics.outputs.write_tables)
    written: list[str] = field(default_factory=list)
    # the insights' slice panel and what it was built from (analytics.insights.build_panel):
    # shared by the insights and insight scoring's event windows (built once, before the stage
    # scheduler forks its side worker: ``stage_insights.prepare``)
    panel: Any = None
    as_of: str | None = (
        None  # run_analysis.py --as-of DATE: the customer monitor judges that day only
    )

    def price_indexes(self) -> bool:
        """Did this run's detection watch the list-price indexes (KPI ``price`` on the store and
        its categories)? Never on ``--kpis`` runs, where a column named ``price`` is a plain
        series (``shocklab.catalogue.product_watched``)."""
        return self.watched is not None and self.watched.price_indexes
