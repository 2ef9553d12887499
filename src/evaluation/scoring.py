"""Scoring incidents against the injected truth (docs/ARCHITECTURE.md "Scoring").

Only this module (and the oracle detector) reads truth. Size (~1060 lines, ~125 of them this
docstring): the scorecard's definitions, its layout and their one implementation stay in one place.

Definitions
-----------
- An incident **matches** an event when it starts inside ``[start − early_days, end +
  late_days]`` (its onset: one already running when the event began did not flag it; a planned
  calendar event keeps the overlap, an incident running into it is on it)
  and, in ``strict`` mode, (a) its KPI is one the event moved by at least ``min_effect`` (relative,
  from the event's ``effects``) in the incident's direction — inside the slice the event is
  scoped to (e.g. ``channel=paid_social``) any move in the right direction counts, because the
  recorded effects are overall and understate the in-slice change; there, on the overall
  series and on a product-scoped event's category (``parent_category``) the event's
  ``primary_kpi`` always counts in the direction of its effect, while a slice
  crossing the scope (or inside a store-wide event) moves by about the recorded effect and needs
  ``min_effect`` like any KPI. A slice that contains the scope without being it (a channel x
  country scope's channel and country, a product scope's category) is judged by its own
  realized effect (truth ``container_effects``; ``containers``): min_effect on any KPI, the
  primary KPI in the direction the container moved (a ratio can move against the scope's by
  mix); truth without the record keeps the earlier rule (the scope's effects on a cell's
  channel and country, the overall ones on a product's category) — and (b) the
  incident's slice is
  not excluded by the event's scope (an incident on ``channel=organic`` cannot match an outage of
  ``paid_social``; overall and other dimensions can). A product is inside its category: with
  the product -> category map (``build_scorecard``'s ``product_category``), an incident on a
  product of a category-scoped event's category is in the scoped slice, one on another
  category's product is excluded; a watched channel x country cell is inside a channel,
  country or cell scope when both its parts are the scope's, and excluded otherwise.
  ``lenient`` mode drops (a) and (b).
  Events without ``effects`` (external ``--events`` files) match any KPI in both modes.
- **Recall** = unexpected events matched / unexpected events. **Precision** = incidents matching
  an unexpected event / all incidents; an incident on an expected event (holiday, planned
  campaign) is a false positive, also counted apart as ``fp_expected``. With no incidents,
  precision is 1.0 (no false alarm) and F1 follows from recall. **Delay** = first matching
  incident's alarm (``Incident.alarm``: ``confirmed``, the day its rule held; not an onset moved
  back) − event start, in days (negative when caught early).
- **Oracle at equal false positives**: the oracle's incidents are ranked by peak score per
  family — one per (KPI, dimension), ``bound_family`` — and cut at the tuple of thresholds, one
  per family, finding the most events within the consensus's false-positive count (ties: the
  highest precision, then the most incidents; an exact search, ``at_fp_cuts``). At a cut t an
  incident matches from its run's first day (a flag at the oracle's own threshold) or from any
  day of its run where a stretch at or above t starts
  (``oracle_onsets``: its score reaches t there and was below t the day before — the first day
  reaching t, and each re-crossing after a dip): a detector flagging at 3.0 and alarming at t may
  report any of them; the incident counts once, true when one of them matches. So a real move
  whose run began with a null flag days before the event is not charged for that flag (before
  2026-12-06 it was, and the consensus was above the bound on two test worlds for it), nor one
  that came back after a dip below t inside a run merged through the dip (until the fifty-third
  session only the first day reaching t counted, and the consensus was above the bound on one
  test world for it: random world 125's one-day US outage; ``_cut_rows``). The recall reached
  is the limit at that false-alarm budget in expectation (the exact null is the most powerful
  test; in one world a voter can out-score it on an event by chance), and ``ratio`` = consensus
  recall / that recall. Why a cut per family: a detector's effective threshold on the exact
  null's scale differs per KPI (its null fits one KPI better than another: the voters' AOV null
  is thinner than the exact order-value null, so the consensus spends more of its false alarms
  there) and per dimension (the analysis' own knobs are per dimension: ``slice_threshold_add``,
  ``slice_kpis``, a detector's ``kpis``/``dimensions``, product_watch's sensitivity). A bound at
  equal false positives covers any such split, so it splits its budget the way that finds the
  most events; one threshold, or one for products and one for the store (the bound until the
  fifty-fourth session, beaten on random world 125 and on TRAIN s11 and p2 for it), is one of
  the tuples, so the bound never finds fewer. Its
  incidents that start before the warm-up's end minus ``early_days`` are left out: they can
  match no counted event (matching reads the onset), only cost false positives, and a detector
  whose warm-up is the scoring's would raise none; so the budget is the consensus' false
  positives that start on or after that day (``fp_budget``; its precision still counts all).
  ``consensus_only`` / ``oracle_only``: the events one side found there and the other not.
  ``oracle_recall_at_zero_fp``: the same search with no false positive at all. Where it is (near)
  ``oracle_recall``, the bound's recall is the exact null's sight of the events and more false
  alarms would not buy the consensus the difference: the ratio then measures the voters' power
  (on TRAIN random worlds s1-s8 the bound reached its full recall by 0-2 false positives on 7 of
  8; fifty-fifth session, docs/history/detection.md). ``oracle_recall_one_cut`` /
  ``ratio_one_cut``: one threshold over every series at the same budget (no split: the bound
  until the fifty-fourth session split products from the store) — the bound without hindsight
  per family, which a consensus can beat on a world by a voter's luck (random world 125).
- **Oracle's best F1** (``oracle_best``): the oracle's incidents ranked by peak score and cut at
  every threshold from its own (``lowest``) upwards (onsets read at each cut as above) — a pair of
  cuts, one on the store's series (``threshold``, ``lowest``) and one on product series
  (``family_threshold``, ``family_lowest``; ``is_product``); the pair with the highest F1 (its
  precision, recall, thresholds = the last peaks taken, None where none is taken). Two
  families, not the bound's (KPI, dimension) ones: F1 has no budget to prune a search over
  every tuple of ~25 families' cuts. The oracle has no tuned setting, so
  this is a property of the world: about the best F1 any detector watching the same series can
  expect.
- **Unwatched events** (``events.unwatched``): unexpected events scoped to a dimension no watched
  series has (products; ``settings.dimensions`` lists the watched ones). They can be caught only
  where they move a watched parent (their category, the store), and cap everyone's recall.

Scorecard layout (``scorecard.json``; floats rounded to 4 digits)
----------------------------------------------------------------
::

    {
      "schema": "shocklab.scorecard/1",
      "settings": {"mode", "early_days", "late_days", "min_effect", "merge_gap_days",
                   "tolerance_days", "min_votes", "required", "count_by", "combine",
                   "dimensions", "voters": [...], "warmup_days", "data_start"},
      "events": {"unexpected": int, "expected": int, "by_type": {type: int},
                 "by_scope": {kind: int}, "unwatched": int | null},
      "headline": {"mode": "strict", "recall", "precision", "f1", "median_delay_days",
                   "oracle_recall_at_equal_fp", "recall_vs_oracle"},
      "failed_detectors": {name: "error"},
      "strict" | "lenient": {
        "detectors": {name: METRICS},           # every detector incl. the oracle, own incidents
        "consensus": METRICS,                   # the configured rule (combine, min_votes, ...)
        "consensus_levels": {"k1": METRICS, "k2": METRICS, ...},  # k of n voters agree
        "oracle_equal_fp": {"fp_budget", "oracle_recall", "oracle_recall_at_zero_fp",
                            "oracle_recall_one_cut", "ratio_one_cut",
                            "consensus_recall", "ratio",
                            "oracle_precision", "oracle_f1", "consensus_only",
                            "oracle_only", "cuts": [{"family", "cut"}],
                            "consensus_only_detail": [{"event_id", "oracle_score",
                                                       "family", "cut", "seen_at_cut"}],
                            "seen_at_cut"} | null,   # the bound's self-check (bound_check)
        "oracle_best": {"f1", "precision", "recall", "threshold", "incidents", "fp",
                        "lowest", "family_threshold", "family_lowest"} | null
      },
      "event_detail": [{"event_id", "type", "expected", "start", "end", "primary_kpi", "scope_kind",
                        "in_warmup", "impact_share",
                        "detected_by": {name: delay_days}}]   # strict mode; "consensus" included
      "warmup": {"days", "events", "event_ids", "consensus_detected",
                 "consensus_incidents"},  # reported apart
      # added by later stages (evaluation.pipeline):
      "false_alerts": {"days", "series": {name: int}, "consensus", "detectors": {name: rate},
                       "by_dimension": {dimension: {"series", "consensus", "detectors"}}},
                      # false alerts per watched series per 90 days (the sensitivity's unit),
                      # over every series and per watched dimension
      "insights": {...},        # insight_scoring: root cause, KPI attribution, magnitude
      "customers": {...},       # with truth/customers.csv: customer_scores (= truth_scores.json)
      "series_metrics": {...}   # a labelled --kpis run: NAB, affiliation, VUS-PR (ts_metrics)
    }
    METRICS = {"recall", "precision", "f1", "events", "detected", "incidents", "true_incidents",
               "fp", "fp_expected", "fp_by_dimension": {dimension: int},
               "median_delay_days", "mean_delay_days",
               "impact_weighted_recall",
               "by_type": {type: {"events", "detected", "recall", "median_delay_days"}},
               "by_scope": {kind: {"events", "detected", "recall"}}}

Scoring notes
-------------
- **Warm-up**: unexpected events starting in the first ``warmup_days`` of the data (setting; 0 =
  none) are left out of every METRICS and reported apart under ``warmup`` — no detector can judge
  a day it has no history for, and the oracle would not be comparable there. An incident that
  matches a warm-up event and no counted one is set aside too (neither a hit nor a false
  positive; ``warmup.consensus_incidents`` counts the consensus' ones): it was a false positive
  until 2026-12-03, so catching a real early event cost precision.
- **by_scope**: recall per scope kind: overall (no scope), channel, country, channel_country,
  category, product.
- **impact_weighted_recall**: detected share of the events' absolute revenue impact
  (``impact_revenue`` on an event: revenue lost or gained; events without it weigh by
  ``|effects.revenue|``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.context import Incident
from shocklab.catalogue import OVERALL_DIMENSION, PAIR_DIMENSION, PAIR_SEP, PRODUCT_DIMENSION
from shocklab.truth import scope_kind

log = logging.getLogger("shocklab.analysis")

SCHEMA = "shocklab.scorecard/1"


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str
    expected: bool
    start: pd.Timestamp
    end: pd.Timestamp
    scope: dict[str, str]
    effects: dict[str, float] | None   # None: any KPI counts
    primary_kpi: str | None
    scope_effects: dict[str, float] | None = None  # effects inside the scoped slice
    primary_direction: str | None = None
    impact: float = 0.0                              # |revenue lost or gained| (weights recall)
    # product ids inside a category scope (``with_members``): a product incident there is in the
    # scoped slice, one of another category is excluded; None: products are another dimension
    members: frozenset[str] | None = None
    # the end was given as a day, which it covers (``given_as_day``); False: an instant
    end_is_day: bool = True
    # the category holding a product-scoped event's product (``with_members``): a slice that
    # contains the scope, where the recorded overall effects understate the change
    parent_category: str | None = None
    # the realized effects on each watched slice that contains the scope without being it
    # (truth ``container_effects``: a channel x country scope's channel and country, a product
    # scope's category), keyed (dimension, segment); None: not recorded (older truth files)
    containers: dict[tuple[str, str], dict[str, float]] | None = None

    def with_members(self, product_category: dict[str, str] | None) -> Event:
        """This event with ``members`` (category scopes) or ``parent_category`` (product scopes)
        set from a product -> category map."""
        if not product_category:
            return self
        cat = self.scope.get("category")
        if cat is not None:
            return dataclasses.replace(
                self, members=frozenset(p for p, c in product_category.items() if c == cat))
        prod = self.scope.get(PRODUCT_DIMENSION)
        if prod is not None and str(prod) in product_category:
            return dataclasses.replace(self, parent_category=product_category[str(prod)])
        return self

    @property
    def scope_kind(self) -> str:
        return scope_kind(self.scope)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        eff = d.get("effects")
        return cls(
            event_id=str(d["event_id"]),
            type=str(d.get("type", "unknown")),
            expected=bool(d.get("expected", False)),
            start=pd.Timestamp(d["start"]),
            end=pd.Timestamp(d["end"]),
            scope={str(k): str(v) for k, v in (d.get("scope") or {}).items()},
            effects={str(k): float(v) for k, v in eff.items() if v is not None}
            if isinstance(eff, dict) and eff
            else None,
            primary_kpi=d.get("primary_kpi"),
            scope_effects={str(k): float(v) for k, v in d["scope_effects"].items() if v is not None}
            if isinstance(d.get("scope_effects"), dict) and d["scope_effects"]
            else None,
            primary_direction=d.get("primary_direction"),
            containers=container_records(d),
            end_is_day=given_as_day(d),
            impact=abs(float(d["impact_revenue"]))
            if d.get("impact_revenue") is not None
            else abs(float((eff or {}).get("revenue") or 0.0))
            if isinstance(eff, dict)
            else 0.0,
        )


def container_records(d: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]] | None:
    """A truth record's ``container_effects`` keyed (dimension, segment); None when it has none
    (older truth files, or a scope no slice contains)."""
    cont = d.get("container_effects")
    if not isinstance(cont, list) or not cont:
        return None
    return {(str(c["dimension"]), str(c["segment"])):
            {str(k): float(v) for k, v in (c.get("effects") or {}).items() if v is not None}
            for c in cont}


def _codes(values: list[Any]) -> tuple[np.ndarray, dict[Any, int]]:
    """Integer codes of ``values`` (first-seen order) and the value -> code map."""
    index: dict[Any, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), np.intp, len(values))
    return codes, index


def _lookup(mapping: dict[str, float], index: dict[Any, int]) -> np.ndarray:
    """``mapping``'s value per code of ``index`` (NaN where absent), as ``Series.map`` gives."""
    return np.array([mapping.get(k, np.nan) for k in index], dtype=float)


def match_matrix(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
                 min_effect: float, expected_events: bool = False) -> np.ndarray:
    """Boolean [incident, event]: incident matches the (unexpected) event. With
    ``expected_events`` True, instead: incident overlaps the expected event's window (any KPI)."""
    n = len(incidents)
    out = np.zeros((n, len(events)), dtype=bool)
    if not n:
        return out
    start = np.fromiter((i.start.value for i in incidents), np.int64, n)
    end = np.fromiter((i.end.value for i in incidents), np.int64, n)
    # KPI, dimension and segment as codes: one small lookup per event instead of a map per row
    kpi, kpis = _codes([i.kpi for i in incidents])
    dim, dims = _codes([i.dimension for i in incidents])
    seg, segs = _codes([i.segment for i in incidents])
    up = np.fromiter((i.direction == "up" for i in incidents), bool, n)
    sign = np.where(up, 1.0, -1.0)
    overall = dim == dims.get(OVERALL_DIMENSION, -1)
    lo_ns, hi_ns = _windows(events, early, late)
    # events matched on their window alone (planned ones, lenient scoring, labels without
    # effects: a labels file may hold many thousands), all at once; the others one by one
    take = np.fromiter((ev.expected == expected_events for ev in events), bool, len(events))
    plain = take & (expected_events or mode == "lenient"
                    or np.fromiter((ev.effects is None for ev in events), bool, len(events)))
    if plain.any():
        lo, hi = lo_ns[plain][None, :], hi_ns[plain][None, :]
        if expected_events:  # an incident running into a planned day is on it
            out[:, plain] = (start[:, None] <= hi) & (end[:, None] >= lo)
        else:  # the alarm's onset in the event's window: one already running did not flag it
            out[:, plain] = (start[:, None] >= lo) & (start[:, None] <= hi)
    for j in np.flatnonzero(take & ~plain):
        ev = events[j]
        m = (start >= lo_ns[j]) & (start <= hi_ns[j])
        allowed, exact = scope_masks(ev, dim, seg, dims, segs)
        eff = _lookup(ev.effects, kpis)[kpi] * sign
        container = np.zeros(n, dtype=bool)
        for (d, v), ce in (ev.containers or {}).items():   # each judged by its own effect
            on = (dim == dims.get(d, -1)) & (seg == segs.get(v, -1))
            eff = np.where(on, _lookup(ce, kpis)[kpi] * sign, eff)
            container |= on
        exact &= ~container
        if ev.scope_effects:
            eff = np.where(exact, _lookup(ev.scope_effects, kpis)[kpi] * sign, eff)
            need = min_effect
        else:  # no in-slice effects recorded: inside the scoped slice any move the right way counts
            need = np.where(exact, 1e-12, min_effect)
        ok = np.nan_to_num(eff, nan=-np.inf) >= need
        # the primary KPI counts whatever its recorded effect only where that effect (a mean
        # over the window) understates the change: the overall series, the slices the scope
        # names (``exact``) and the slices containing it; a slice that crosses the scope (or lies
        # inside a store-wide event) moves by about the recorded effect, so it needs min_effect
        # like any KPI (many such series: no chance matches)
        contains = exact | overall | container
        if ev.parent_category is not None and ev.containers is None:  # older truth: no record
            contains |= (dim == dims.get("category", -1)) & (seg == segs.get(ev.parent_category,
                                                                               -1))
        is_primary = (kpi == kpis.get(ev.primary_kpi, -1)) & contains
        if ev.primary_direction in ("up", "down"):
            right_way = up == (ev.primary_direction == "up")
        else:
            right_way = np.nan_to_num(eff, nan=0.0) > 0
        # a container's ratio can move against the scope's by mix: its own effect decides
        own = container & np.isfinite(eff)
        right_way = np.where(own, np.nan_to_num(eff, nan=0.0) > 0, right_way)
        ok |= is_primary & right_way
        out[:, j] = m & allowed & ok
    return out


def scope_masks(ev: Event, dim: np.ndarray, seg: np.ndarray, dims: dict[Any, int],
                segs: dict[Any, int]) -> tuple[np.ndarray, np.ndarray]:
    """(allowed, exact) per series of codes ``dim`` / ``seg`` (``_codes``'s maps ``dims`` /
    ``segs``): the event's scope does not exclude the series; the series is one of the scope's
    own slices (a category scope's products with ``members``; a channel x country cell inside a
    channel, country or cell scope)."""
    allowed = np.ones(len(dim), dtype=bool)
    exact = np.zeros(len(dim), dtype=bool)
    for d, v in ev.scope.items():
        in_dim = dim == dims.get(d, -1)
        in_seg = seg == segs.get(v, -1)
        allowed &= ~in_dim | in_seg
        exact |= in_dim & in_seg
    if ev.members is not None and PRODUCT_DIMENSION in dims:  # products of a category scope
        in_prod = dim == dims[PRODUCT_DIMENSION]
        member = np.isin(seg, [c for name, c in segs.items() if name in ev.members])
        allowed &= ~in_prod | member
        exact |= in_prod & member
    if PAIR_DIMENSION in dims and ({"channel", "country"} & ev.scope.keys()):
        # a channel x country cell is inside a channel, country or cell scope when its channel
        # and country are the scope's; otherwise it is excluded
        in_pair = dim == dims[PAIR_DIMENSION]
        inside = np.array([_cell_inside(str(name), ev.scope) for name in segs], bool)[seg]
        allowed &= ~in_pair | inside
        exact |= in_pair & inside
    return allowed, exact


def _cell_inside(cell: str, scope: dict[str, str]) -> bool:
    """Is the channel x country cell ``"<channel>|<country>"`` inside ``scope``?"""
    parts = cell.split(PAIR_SEP, 1)
    return len(parts) == 2 and all(scope.get(key, part) == part
                                   for key, part in zip(("channel", "country"), parts,
                                                        strict=True))


def whole_day_end(end: pd.Timestamp, day: bool = True) -> pd.Timestamp:
    """An end given as a day (``day``: written without a time, so at midnight) covers that whole
    day (sub-daily data); the one rule for the scorecard's matching, the series metrics' label
    windows and the labels' overlap with the data. An end written with a time is its instant,
    midnight too."""
    return end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) \
        if day and end == end.normalize() else end


def given_as_day(e: dict[str, Any]) -> bool:
    """Was the end of event record ``e`` given as a day? Labels record it (``end_is_day``,
    ``evaluation.truth.end_is_day``); a simulated event's dates are days; NAB's windows end on
    a file row."""
    return bool(e.get("end_is_day", e.get("type") != "nab_window"))


def window_end(e: dict[str, Any]) -> pd.Timestamp:
    """The end of event record ``e`` as scoring reads it (``whole_day_end``)."""
    return whole_day_end(pd.Timestamp(e["end"]), given_as_day(e))


def window_ends(records: list[dict[str, Any]]) -> list[pd.Timestamp]:
    """``window_end`` of every record, computed at once where their ends share one time zone
    (or none); a labels file may hold many thousands of windows."""
    ends = [pd.Timestamp(e["end"]) for e in records]
    try:
        idx = pd.DatetimeIndex(ends)
    except (TypeError, ValueError):   # mixed offsets
        idx = None
    if idx is None or idx.dtype == object:   # one by one
        return [whole_day_end(t, given_as_day(e)) for t, e in zip(ends, records, strict=True)]
    day = np.fromiter((given_as_day(e) for e in records), bool, len(records))
    whole = day & np.asarray(idx == idx.normalize())
    return list(idx.where(~whole, idx + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)))


def _window(ev: Event, early: int, late: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    return (ev.start - pd.Timedelta(days=early),
            whole_day_end(ev.end + pd.Timedelta(days=late), ev.end_is_day))


_DAY_NS = 86_400 * 10**9


def _windows(events: list[Event], early: int, late: int) -> tuple[np.ndarray, np.ndarray]:
    """``_window`` of every event as two int64 arrays of nanoseconds (lo, hi), computed at once
    for naive timestamps (truth and labels are read as naive UTC), one by one otherwise."""
    n = len(events)
    if any(ev.start.tzinfo is not None or ev.end.tzinfo is not None for ev in events):
        pairs = [_window(ev, early, late) for ev in events]
        return (np.fromiter((lo.value for lo, _ in pairs), np.int64, n),
                np.fromiter((hi.value for _, hi in pairs), np.int64, n))
    start = np.fromiter((ev.start.value for ev in events), np.int64, n)
    end = np.fromiter((ev.end.value for ev in events), np.int64, n) + late * _DAY_NS
    day = np.fromiter((ev.end_is_day for ev in events), bool, n)
    # whole_day_end: an end given as a day at midnight covers that day (to its last microsecond)
    hi = np.where(day & (end % _DAY_NS == 0), end + _DAY_NS - 1_000, end)
    return start - early * _DAY_NS, hi


def matches(inc: Incident, ev: Event, mode: str, early: int, late: int, min_effect: float) -> bool:
    """Does one incident match one unexpected event? (definitions in the module docstring)"""
    return (
        bool(match_matrix([inc], [ev], mode, early, late, min_effect)[0, 0])
        if not ev.expected
        else False
    )


def _delays(incidents: list[Incident], events: list[Event], mm: np.ndarray) -> dict[str, int]:
    """{event_id: days from the event's start day to its earliest matching incident's alarm day
    (``Incident.alarm``: when the rule held, not an onset found afterwards)}, in the events'
    order, for the events ``mm`` (the match matrix) finds."""
    hit = np.flatnonzero(mm.any(axis=0))
    if not hit.size:
        return {}
    if any(t.tzinfo is not None for t in [*(i.alarm for i in incidents),
                                            *(events[j].start for j in hit)]):
        return {events[j].event_id: min(
            int((incidents[i].alarm.normalize() - events[j].start.normalize()).days)
            for i in np.flatnonzero(mm[:, j])) for j in hit}
    inc_ns = np.fromiter((i.alarm.value for i in incidents), np.int64, len(incidents))
    ev_ns = np.fromiter((events[j].start.value for j in hit), np.int64, hit.size)
    # naive timestamps: a day starts at a multiple of a day's nanoseconds (normalize())
    days = (inc_ns // _DAY_NS)[:, None] - (ev_ns // _DAY_NS)[None, :]
    first = np.where(mm[:, hit], days, np.iinfo(np.int64).max).min(axis=0)
    return {events[j].event_id: int(d) for j, d in zip(hit, first, strict=True)}


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def metrics(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
            min_effect: float, dimensions: Iterable[str] = ()
            ) -> tuple[dict[str, Any], dict[str, int]]:
    """METRICS for one list of incidents; also {event_id: delay} of detected events.
    ``dimensions`` (the watched ones): ``fp_by_dimension`` lists each, 0 where it raised no false
    positive (a dimension of an incident not among them is added)."""
    mm = match_matrix(incidents, events, mode, early, late, min_effect)
    ex = match_matrix(incidents, events, mode, early, late, min_effect, expected_events=True)
    unexpected = [e for e in events if not e.expected]
    delays = _delays(incidents, events, mm)
    true_inc = mm.any(axis=1)
    tp_inc = int(true_inc.sum())
    fp = len(incidents) - tp_inc
    fp_expected = int((~true_inc & ex.any(axis=1)).sum())
    fp_dims = dict.fromkeys(dimensions, 0)
    fp_dims.update(Counter(i.dimension for i, t in zip(incidents, true_inc, strict=True) if not t))
    n_ev = len(unexpected)
    recall = len(delays) / n_ev if n_ev else float("nan")
    precision = tp_inc / len(incidents) if incidents else 1.0
    # without unexpected events recall is undefined, and so is F1 (null, not 0: a seed without
    # events must not pull an experiment's mean F1 down; results and gates skip NaN)
    f1 = (2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
          ) if n_ev else float("nan")
    dl = list(delays.values())
    by_type: dict[str, Any] = {}
    for t in sorted({e.type for e in unexpected}):
        evs = [e for e in unexpected if e.type == t]
        got = [delays[e.event_id] for e in evs if e.event_id in delays]
        by_type[t] = {"events": len(evs), "detected": len(got), "recall": _r(len(got) / len(evs)),
                      "median_delay_days": _r(float(np.median(got))) if got else None}
    by_scope: dict[str, Any] = {}
    for k in sorted({e.scope_kind for e in unexpected}):
        evs = [e for e in unexpected if e.scope_kind == k]
        got = sum(e.event_id in delays for e in evs)
        by_scope[k] = {"events": len(evs), "detected": got, "recall": _r(got / len(evs))}
    total_impact = sum(e.impact for e in unexpected)
    weighted = (
        sum(e.impact for e in unexpected if e.event_id in delays) / total_impact
        if total_impact
        else None
    )
    return {
        "recall": _r(recall),
        "precision": _r(precision),
        "f1": _r(f1),
        "events": n_ev,
        "detected": len(delays),
        "incidents": len(incidents),
        "true_incidents": tp_inc,
        "fp": fp,
        "fp_expected": fp_expected,
        "fp_by_dimension": fp_dims,
        "median_delay_days": _r(float(np.median(dl))) if dl else None,
        "mean_delay_days": _r(float(np.mean(dl))) if dl else None,
        "impact_weighted_recall": _r(weighted),
        "by_type": by_type,
        "by_scope": by_scope,
    }, delays


def at_fp(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
          min_effect: float, fp_budget: int) -> tuple[float, float]:
    """(recall, precision) of the highest-scoring incidents taken until the false positives would
    exceed the budget (precision = true incidents among those taken; 1.0 when none is taken)."""
    return at_fp_events(incidents, events, mode, early, late, min_effect, fp_budget)[:2]


# an oracle incident's onsets by cut: (day, lo, hi) — at a cut t with lo < t <= hi a stretch of
# its run at or above t starts on that day (its score reaches t there and was below t the day
# before), so a detector alarming at t raises an alarm there; every day of the run after its first
# where the score rises (``analytics.consensus.Votes.onset_records``)
Onsets = dict[str, list[tuple[pd.Timestamp, float, float]]]


def _ranked(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
            min_effect: float, family: Callable[[Incident], bool] | None,
            onsets: Onsets | None = None
            ) -> list[tuple[list[Incident], np.ndarray, np.ndarray]]:
    """Per family (one list without ``family``; else two: the incidents where it is False, then
    True, either possibly empty): the incidents ranked by peak score, the events found by the top
    c of them at the cut of the c-th peak ([c, event], c = 0 … n) and their true incidents [c]
    (``_cut_rows``)."""
    groups = ([incidents] if family is None else
              [[i for i in incidents if not family(i)], [i for i in incidents if family(i)]])
    return [_rank(g, events, mode, early, late, min_effect, onsets) for g in groups]


def _rank(group: list[Incident], events: list[Event], mode: str, early: int, late: int,
          min_effect: float, onsets: Onsets | None
          ) -> tuple[list[Incident], np.ndarray, np.ndarray]:
    """One family's incidents ranked by peak score (then id) and ``_cut_rows``' table of them."""
    order = sorted(group, key=lambda i: (-i.peak_score, i.incident_id))
    return (order, *_cut_rows(order, events, mode, early, late, min_effect, onsets))


def _cut_rows(order: list[Incident], events: list[Event], mode: str, early: int, late: int,
              min_effect: float, onsets: Onsets | None) -> tuple[np.ndarray, np.ndarray]:
    """The top c of ``order`` (ranked by peak) taken at the cut t = the c-th peak, c = 0 … n:
    (events found [c, event], true incidents [c]). Without ``onsets`` an incident matches from
    its run's first day whatever the cut. With them (``Onsets``), at cut t it matches from its
    run's first day OR from any day of its run where a stretch at or above t starts — a detector
    that flags at its own threshold and alarms at t can report any of them (module docstring,
    "Oracle at equal false positives"); the incident counts once, true when any of its onsets at
    that cut matches. One [incident-onset, event] match matrix; each onset's row counts over the
    contiguous range of cuts where it starts a stretch (difference arrays)."""
    n, n_ev = len(order), len(events)
    hits = np.zeros((n + 1, n_ev), bool)
    tp = np.zeros(n + 1, int)
    if not n:
        return hits, tp
    peaks = np.array([i.peak_score for i in order], dtype=float)
    neg = -peaks                                    # ascending, for searchsorted

    def first_at_most(x: float) -> int:             # first rank whose peak is <= x
        return int(np.searchsorted(neg, -x, side="left"))

    rows: list[Incident] = list(order)              # row j: incident j from its run's first day
    owner: list[int] = list(range(n))
    lo_c = list(range(1, n + 1))                    # cuts c in [lo, hi) where the row applies
    hi_c = [n + 1] * n
    for j, inc in enumerate(order):
        recs = (onsets or {}).get(inc.incident_id) or []
        for day, below, score in recs:
            # t <= score (a record at the peak: every cut taking the incident) and t > below
            lo = j + 1 if score >= inc.peak_score - 1e-6 else max(j + 1, first_at_most(score) + 1)
            hi = min(n + 1, first_at_most(below) + 1)      # below = -inf: every cut
            if lo < hi:
                rows.append(dataclasses.replace(inc, start=day))
                owner.append(j)
                lo_c.append(lo)
                hi_c.append(hi)
    mm = match_matrix(rows, events, mode, early, late, min_effect)
    lo_a, hi_a, own = np.asarray(lo_c), np.asarray(hi_c), np.asarray(owner)
    cnt = np.zeros((n + 2, n_ev), int)
    np.add.at(cnt, lo_a, mm.astype(int))
    np.add.at(cnt, hi_a, -mm.astype(int))
    hits = np.cumsum(cnt, axis=0)[: n + 1] > 0
    # true incidents: incident j is true at cut c when any of its rows applying there matches —
    # its run's first day over every cut taking it, else the union of its true onsets' ranges
    row_true = mm.any(axis=1)
    true = np.zeros(n + 2, int)
    base = row_true[:n]
    np.add.at(true, lo_a[:n][base], 1)
    np.add.at(true, hi_a[:n][base], -1)
    extra = np.flatnonzero(row_true[n:] & ~base[own[n:]]) + n
    spans: dict[int, list[tuple[int, int]]] = {}
    for r in extra:
        spans.setdefault(int(own[r]), []).append((int(lo_a[r]), int(hi_a[r])))
    for ranges in spans.values():                   # union of each incident's ranges
        ranges.sort()
        cur_lo, cur_hi = ranges[0]
        for lo, hi in ranges[1:] + [(n + 2, n + 2)]:
            if lo > cur_hi:
                true[cur_lo] += 1
                true[cur_hi] -= 1
                cur_lo, cur_hi = lo, hi
            else:
                cur_hi = max(cur_hi, hi)
    tp = np.cumsum(true)[: n + 1]
    return hits, tp


def at_fp_events(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
                 min_effect: float, fp_budget: int,
                 family: Callable[[Incident], Hashable] | None = None,
                 onsets: Onsets | None = None) -> tuple[float, float, set[str]]:
    """``at_fp`` and the ids of the unexpected events those incidents match. With ``family``
    (incident -> a family key, e.g. ``bound_family``), each family is ranked on its own and the
    budget is split between the families the way that finds the most events (then the highest
    precision, then the most incidents): the best tuple of thresholds, one per family."""
    return at_fp_cuts(incidents, events, mode, early, late, min_effect, fp_budget, family,
                      onsets)[:3]


# the bound's search keeps at most this many tuples of cuts per family added: every world measured
# needs <= 62 (the default scenario 42, 51 with channel x country cells; random worlds <= 62);
# past it (random incidents on every series can need millions), the best by events found, true
# incidents, fewest false positives are kept and a warning says the result is not proven
MAX_STATES = 1000


def _front(hits_c: np.ndarray, tp_c: np.ndarray, fp_budget: int) -> list[tuple[int, int, int, int]]:
    """One ranked family's useful cuts within ``fp_budget``: (false positives, events found as a
    bit mask, true incidents, cut c), each cut not dominated by another with no more false
    positives, no fewer true incidents and every event it finds (taking one in its place never
    finds fewer events nor lowers the precision), by false positives."""
    fp_c = np.arange(len(tp_c)) - tp_c
    out: list[tuple[int, int, int, int]] = []
    for k in sorted(np.flatnonzero(fp_c <= fp_budget).tolist(),
                    key=lambda k: (fp_c[k], -tp_c[k], -k)):
        fp, tp = int(fp_c[k]), int(tp_c[k])
        m = sum(1 << j for j in np.flatnonzero(hits_c[k]).tolist())
        if not any(f <= fp and t >= tp and (mm | m) == mm for f, mm, t, _ in out):
            out.append((fp, m, tp, k))
    return out


def at_fp_cuts(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
               min_effect: float, fp_budget: int,
               family: Callable[[Incident], Hashable] | None = None,
               onsets: Onsets | None = None
               ) -> tuple[float, float, set[str], dict[Hashable, float | None]]:
    """``at_fp_events`` and the cuts it chose: per family key (one family, key None, without
    ``family``) the peak of the last incident taken, None where none is taken
    (``evaluation.bound_check`` reads the events the consensus found beneath them). The search is
    exact: each family's undominated cuts (``_front``), then the families added one at a time,
    keeping every undominated tuple of cuts within the budget."""
    if not any(not e.expected for e in events):
        return float("nan"), float("nan"), set(), {}      # nothing to find: no ranking needed
    return _search(_families(incidents, events, mode, early, late, min_effect, family, onsets),
                   events, fp_budget)


Families = list[tuple[Hashable, list[Incident], np.ndarray, np.ndarray]]


def _families(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
              min_effect: float, family: Callable[[Incident], Hashable] | None,
              onsets: Onsets | None) -> Families:
    """The incidents grouped by ``family`` (one group, key None, without it), by key: (key, the
    group ranked, its ``_cut_rows`` table) — computed once for any number of budgets."""
    groups: dict[Hashable, list[Incident]] = {}
    for i in incidents:
        groups.setdefault(None if family is None else family(i), []).append(i)
    return [(key, *_rank(groups[key], events, mode, early, late, min_effect, onsets))
            for key in sorted(groups, key=repr)]


def _search(families: Families, events: list[Event], fp_budget: int
            ) -> tuple[float, float, set[str], dict[Hashable, float | None]]:
    """``at_fp_cuts``' exact search over ranked ``families`` (``_families``) within
    ``fp_budget``."""
    n_ev = sum(1 for e in events if not e.expected)
    if not n_ev:
        return float("nan"), float("nan"), set(), {}
    fams = [(key, order, _front(hits_c, tp_c, fp_budget))
            for key, order, hits_c, tp_c in families]
    # one family at a time, every undominated way to cut the families so far: (false positives,
    # events found as a bit mask, true incidents, the cuts); a state is dropped where another
    # has no more false positives, no fewer true incidents and every event it finds (whatever
    # the later families add, the other finds as many events at no lower precision)
    states: list[tuple[int, int, int, tuple[int, ...]]] = [(0, 0, 0, ())]
    exact = True
    for _, _, front in fams:
        grown: dict[tuple[int, int], tuple[int, int, int, tuple[int, ...]]] = {}
        for fp, mask, tp, picks in states:
            for f, m, t, k in front:
                if fp + f > fp_budget:
                    break                               # the front is by false positives
                key = (fp + f, mask | m)
                if key not in grown or grown[key][2] < tp + t:
                    grown[key] = (fp + f, mask | m, tp + t, (*picks, k))
        cand = list(grown.values())
        if len(cand) > MAX_STATES:      # a guard (MAX_STATES): never a hang
            exact = False
            cand = sorted(cand, key=lambda x: (-x[1].bit_count(), -x[2], x[0]))[:MAX_STATES]
        states = []
        for st in sorted(cand, key=lambda x: (x[0], -x[2], -x[1].bit_count())):
            if not any(o[0] <= st[0] and o[2] >= st[2] and (o[1] | st[1]) == o[1]
                       for o in states):
                states.append(st)
    # the most events, then the highest precision, then the most incidents (the lowest cuts)
    fp, hit_mask, n_tp, picks = max(states, key=lambda x: (
        x[1].bit_count(), x[2] / (x[0] + x[2]) if x[0] + x[2] else 1.0, x[0] + x[2]))
    found_n, prec = hit_mask.bit_count(), n_tp / (fp + n_tp) if fp + n_tp else 1.0
    found_ids = {e.event_id for j, e in enumerate(events) if hit_mask >> j & 1}
    cuts = {key: (order[k - 1].peak_score if k else None)
            for (key, order, _), k in zip(fams, picks, strict=True)}
    if not exact:
        log.warning("the bound at equal false positives: more than %d ways to cut its %d "
                    "families within %d false positives; the best of those kept, not "
                    "proven the best", MAX_STATES, len(fams), fp_budget)
    return float(found_n) / n_ev, prec, found_ids, cuts


def _cut_table(order: list[Incident], hits_c: np.ndarray, tp_c: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every peak-score cut of one ranked family, the empty cut first (equal peaks go together):
    (events found [cut, event], true incidents, incidents, threshold = the last peak taken), read
    from ``_cut_rows``' table of every top c."""
    n = len(order)
    peaks = np.array([i.peak_score for i in order], dtype=float)
    ends = np.flatnonzero(np.r_[peaks[1:] < peaks[:-1], True]) if n else np.array([], int)
    k = np.r_[0, ends + 1]                                  # incidents taken
    return hits_c[k], tp_c[k], k, np.r_[np.nan, peaks[ends]]


def best_cut(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
             min_effect: float, family: Callable[[Incident], bool] | None = None,
             onsets: Onsets | None = None) -> dict[str, Any] | None:
    """The best F1 over every peak-score cut of ``incidents`` (a detector's threshold swept from its
    own upwards): incidents ranked by peak score, the top k taken for each k where the peak drops
    (equal peaks go together). Returns {f1, precision, recall, threshold (peak of the last taken
    incident), incidents, fp, lowest (the lowest peak: the detector's own threshold)} of the best
    cut (the highest threshold among equal F1), or None without unexpected events. With
    ``family`` (as ``at_fp_events``): the best pair of cuts, one per family; ``threshold`` and
    ``lowest`` are the ``False`` family's, ``family_threshold`` / ``family_lowest`` the ``True``
    family's (None when it has no incident or none is taken)."""
    n_ev = sum(1 for e in events if not e.expected)
    if not n_ev:
        return None
    ranked = _ranked(incidents, events, mode, early, late, min_effect, family, onsets)
    if family is None:      # one family: paired with an empty one (its only cut takes nothing)
        ranked.append(([], np.zeros((1, len(events)), bool), np.zeros(1, int)))
    (h0, t0, k0, p0), (h1, t1, k1, p1) = (_cut_table(*r) for r in ranked)
    # all pairs of cuts: events found by either = found0 + found1 - found by both
    f0, f1_ = h0.sum(axis=1), h1.sum(axis=1)
    found = f0[:, None] + f1_[None, :] - h0.astype(int) @ h1.T.astype(int)
    taken = k0[:, None] + k1[None, :]
    tp = t0[:, None] + t1[None, :]
    r = found / n_ev
    p = np.where(taken > 0, tp / np.maximum(taken, 1), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1.0), 0.0)
    f1 = np.where(taken > 0, f1, 0.0)
    # the best F1, then the fewest incidents (the highest thresholds among equal F1)
    flat = np.lexsort((taken.ravel(), -np.round(f1.ravel(), 12)))[0]
    i, j = divmod(int(flat), f1.shape[1])
    lowest = [order[-1].peak_score if order else None for order, _, _ in ranked]
    best = {"f1": float(f1[i, j]) if taken[i, j] else 0.0,
            "precision": float(p[i, j]) if taken[i, j] else 1.0,
            "recall": float(r[i, j]) if taken[i, j] else 0.0,
            "threshold": None if np.isnan(p0[i]) else float(p0[i]),
            "incidents": int(taken[i, j]) if f1[i, j] > 0 else 0,
            "fp": int(taken[i, j] - tp[i, j]) if f1[i, j] > 0 else 0}
    out = {**{key: _r(v) if isinstance(v, float) else v for key, v in best.items()},
           "lowest": _r(lowest[0]) if lowest[0] is not None else None}
    if family is not None:
        out["family_threshold"] = None if np.isnan(p1[j]) else _r(float(p1[j]))
        out["family_lowest"] = _r(lowest[1]) if lowest[1] is not None else None
    return out


def at_cut(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
           min_effect: float, t: float, onsets: Onsets | None = None
           ) -> tuple[list[Incident], np.ndarray]:
    """The incidents whose peak reaches ``t`` and their [incident, event] match matrix, each
    matching from its run's first day or (with ``onsets``) from any day of its run starting a
    stretch at or above t — one cut of ``_cut_rows``' table, for a detector read at a given
    threshold."""
    taken = [i for i in incidents if i.peak_score >= t]
    mm = match_matrix(taken, events, mode, early, late, min_effect)
    if onsets:
        alt, own = [], []
        for j, i in enumerate(taken):
            recs = onsets.get(i.incident_id) or []
            for day, below, score in recs:           # a record at the peak: any t taking it
                if below < t <= (np.inf if score >= i.peak_score - 1e-6 else score):
                    alt.append(dataclasses.replace(i, start=day))
                    own.append(j)
        if alt:
            np.logical_or.at(mm, np.asarray(own), match_matrix(alt, events, mode, early, late,
                                                                min_effect))
    return taken, mm


def recall_at_fp(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
                 min_effect: float, fp_budget: int) -> float:
    """Recall of the highest-scoring incidents taken until the false positives would exceed the
    budget."""
    return at_fp(incidents, events, mode, early, late, min_effect, fp_budget)[0]


def assign_matches(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
                   min_effect: float) -> None:
    """Fill ``matched_event_id``: the matching unexpected event with the largest overlap (negative:
    the nearest; measured exactly, not in whole days, so on sub-daily data an incident after two
    windows of one day names the nearer)."""
    mm = match_matrix(incidents, events, mode, early, late, min_effect)
    for inc, row in zip(incidents, mm, strict=True):
        hits = np.flatnonzero(row)
        if not hits.size:
            inc.matched_event_id = None
            continue

        def key(j: int, inc: Incident = inc) -> tuple:
            ev = events[j]
            ov = (min(inc.end, ev.end) - max(inc.start, ev.start)).value
            return (-ov, ev.start, ev.event_id)
        inc.matched_event_id = events[min(hits, key=key)].event_id


def outside_warmup(incidents: list[Incident], warm: list[Event], events: list[Event], mode: str,
                   early: int, late: int, min_effect: float) -> list[Incident]:
    """The incidents that count: those matching a warm-up event and no counted event are left
    out (an alarm on a real event is not a false alarm, and the event is scored apart)."""
    if not warm or not incidents:
        return incidents
    on_warm = match_matrix(incidents, warm, mode, early, late, min_effect).any(axis=1)
    if not on_warm.any():
        return incidents
    on_counted = match_matrix(incidents, events, mode, early, late, min_effect).any(axis=1)
    return [i for i, w, c in zip(incidents, on_warm, on_counted, strict=True) if c or not w]


def _ratio(found: float | None, bound: float) -> float | None:
    """The consensus' recall (unrounded) over a bound's; None where either is missing or 0."""
    return _r(found / bound) if found is not None and bound and np.isfinite(bound) else None


def _fp_from(incidents: list[Incident], events: list[Event], mode: str, early: int, late: int,
             min_effect: float) -> int:
    """How many of ``incidents`` match no event (``metrics``' ``fp``)."""
    if not incidents:
        return 0
    return int((~match_matrix(incidents, events, mode, early, late, min_effect).any(axis=1)).sum())


def is_product(inc: Incident) -> bool:
    """The oracle's best F1 splits product series from the store's (the analysis judges them
    with their own sensitivity, ``detectors.product_watch``): two families, one cut each (module
    docstring)."""
    return inc.dimension == PRODUCT_DIMENSION


def bound_family(inc: Incident) -> str:
    """The bound's families at equal false positives: one per (KPI, dimension), e.g.
    ``"aov/channel"`` — a detector's effective threshold on the exact null's scale can differ per
    KPI and per dimension, so the bound splits its false alarms between them the way that finds
    the most events (module docstring, "Oracle at equal false positives")."""
    return f"{inc.kpi}/{inc.dimension}"


def build_scorecard(
    truth_events: list[dict[str, Any]],
    detector_incidents: dict[str, list[Incident]],
    consensus: list[Incident],
    consensus_levels: dict[str, list[Incident]],
    settings: dict[str, Any],
    oracle_name: str | None = "oracle",
    failed: dict[str, str] | None = None,
    product_category: dict[str, str] | None = None,
    oracle_onsets: Onsets | None = None,
    oracle_points: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The scorecard dict (layout in the module docstring); also fills ``matched_event_id``.
    ``product_category`` (product id -> category, the data's products table): a product
    incident under a category-scoped event is inside its scope when the product is in it.

    ``settings["warmup_days"]`` with ``settings["data_start"]`` (first day of the data) set the
    warm-up whose unexpected events are reported apart. ``oracle_onsets`` (incident id -> its
    ``Onsets``; ``analytics.consensus.Votes.onset_records``): the bound's incidents may match from
    any day their score rises to each cut (the first day reaching it, or a re-crossing after a
    dip) as well as from their run's first day; without it, from the run's first day only.
    ``oracle_points`` (the oracle's detections: date, kpi, dimension, segment, score): each
    event the consensus found and the bound did not is checked against the bound's cut
    (``evaluation.bound_check``); without them ``seen_at_cut`` and ``consensus_only_detail`` are
    None."""
    all_events = sorted(
        (Event.from_dict(e).with_members(product_category) for e in truth_events),
        key=lambda e: (e.start, e.event_id),
    )
    early, late, min_eff = settings["early_days"], settings["late_days"], settings["min_effect"]
    warm_days = int(settings.get("warmup_days") or 0)
    warm_end = (pd.Timestamp(settings["data_start"]) + pd.Timedelta(days=warm_days)
                if warm_days and settings.get("data_start") is not None else None)
    in_warmup = {e.event_id for e in all_events
                 if warm_end is not None and not e.expected and e.start < warm_end}
    events = [e for e in all_events if e.event_id not in in_warmup]
    warm = [e for e in all_events if e.event_id in in_warmup]
    watched = set(settings.get("dimensions") or ())
    if "channel_country" in watched:
        watched |= {"channel", "country"}
    card: dict[str, Any] = {
        "schema": SCHEMA,
        "settings": settings,
        "events": {
            "unexpected": sum(not e.expected for e in events),
            "expected": sum(e.expected for e in events),
            "by_type": dict(sorted(Counter(e.type for e in events if not e.expected).items())),
            "by_scope": dict(sorted(Counter(e.scope_kind for e in events
                                            if not e.expected).items())),
            # scoped to a dimension no watched series has (products): no detector sees the slice
            "unwatched": sum(not e.expected and bool(set(e.scope) - watched) for e in events)
            if watched else None,
        },
        "failed_detectors": dict(sorted((failed or {}).items())),
    }
    detail_delays: dict[str, dict[str, int]] = {}
    set_aside: dict[str, int] = {}
    dims = list(settings.get("dimensions") or [])   # watched: fp_by_dimension lists each
    for mode in ("strict", "lenient"):
        # an alarm on a warm-up event alone is neither a hit nor a false alarm: it is set aside
        def counted(incs: list[Incident], mode: str = mode) -> list[Incident]:
            return outside_warmup(incs, warm, events, mode, early, late, min_eff)

        sec: dict[str, Any] = {"detectors": {}, "consensus_levels": {}}
        for name in sorted(detector_incidents):
            m, d = metrics(counted(detector_incidents[name]), events, mode, early, late, min_eff,
                           dims)
            sec["detectors"][name] = m
            if mode == "strict":
                detail_delays[name] = d
        cons_counted = counted(consensus)
        if mode == settings["mode"]:
            set_aside["consensus"] = len(consensus) - len(cons_counted)
        sec["consensus"], d = metrics(cons_counted, events, mode, early, late, min_eff, dims)
        cons_found = set(d)
        if mode == "strict":
            detail_delays["consensus"] = d
        for label in sorted(consensus_levels):
            sec["consensus_levels"][label] = metrics(
                counted(consensus_levels[label]), events, mode, early, late, min_eff, dims
            )[0]
        if oracle_name and oracle_name in detector_incidents:
            # the bound does not alarm where nothing counts: an incident that starts before the
            # warm-up's end minus early_days can match no counted event (matching reads the
            # onset), only be a false positive; its budget is the consensus' false positives in
            # the same period, so both sides spend false alarms over the same days
            cut = None if warm_end is None else warm_end - pd.Timedelta(days=early)
            bound = counted([i for i in detector_incidents[oracle_name]
                             if cut is None or i.start >= cut])
            budget = sec["consensus"]["fp"] if cut is None else _fp_from(
                [i for i in cons_counted if i.start >= cut], events, mode, early, late, min_eff)
            ranked = _families(bound, events, mode, early, late, min_eff, bound_family,
                               oracle_onsets)       # ranked once, searched at two budgets
            orc, orc_p, orc_found, cuts = _search(ranked, events, budget)
            orc0 = orc if budget == 0 else _search(ranked, events, 0)[0]
            orc1 = at_fp_cuts(bound, events, mode, early, late, min_eff, budget,
                              onsets=oracle_onsets)[0]   # one threshold over every series
            cuts = {k: v for k, v in sorted(cuts.items()) if v is not None}   # k: a str
            cons = sec["consensus"]["recall"]
            c_ev = sec["consensus"]["events"]   # the ratio from the unrounded recall: 8/12 over
            cons_x = sec["consensus"]["detected"] / c_ev if c_ev else None   # 8/12 is 1, not 1.0001
            ok = np.isfinite(orc) and orc + orc_p > 0
            orc_f1 = 2 * orc * orc_p / (orc + orc_p) if ok else 0.0
            sec["oracle_equal_fp"] = {
                "fp_budget": budget,
                "oracle_recall": _r(orc),
                # the same search without a false positive: where it is (near) oracle_recall,
                # spending false alarms cannot close the ratio; the voters' power can
                "oracle_recall_at_zero_fp": _r(orc0),
                # one threshold over every series at the same budget (no split with hindsight):
                # the bound without the families' freedom, which a voter's luck can beat
                "oracle_recall_one_cut": _r(orc1),
                "ratio_one_cut": _ratio(cons_x, orc1),
                "consensus_recall": cons,
                "ratio": _ratio(cons_x, orc),
                # the oracle's own precision and F1 over the same incidents (the F1 it would score
                # with the consensus' false positives: a bound on the consensus' F1 there)
                "oracle_precision": _r(orc_p),
                "oracle_f1": _r(orc_f1) if np.isfinite(orc) else None,
                # the events one found and the other did not at this budget: the ones behind a
                # ratio above 1 (a voter scored them higher than the exact null did, by chance)
                "consensus_only": sorted(cons_found - orc_found),
                "oracle_only": sorted(orc_found - cons_found),
                # the cuts the bound chose (per "kpi/dimension" family the last peak taken;
                # families where it took nothing left out; a list of records, so experiment
                # tables do not grow a column per family), and each event the consensus found
                # beneath them (luck) or at them (a defect: evaluation.bound_check)
                "cuts": [{"family": k, "cut": _r(v)} for k, v in cuts.items()],
                "consensus_only_detail": None,
                "seen_at_cut": None,
            }
            if oracle_points is not None:
                from .bound_check import consensus_only_detail  # it imports this module

                detail = consensus_only_detail(
                    oracle_points, events, sorted(cons_found - orc_found), cuts, bound_family,
                    mode, early, late, min_eff)
                sec["oracle_equal_fp"]["consensus_only_detail"] = detail
                sec["oracle_equal_fp"]["seen_at_cut"] = sum(d["seen_at_cut"] for d in detail)
            # the oracle's best F1 over all its thresholds: what these worlds allow at best
            sec["oracle_best"] = best_cut(
                bound, events, mode, early, late, min_eff,
                family=is_product, onsets=oracle_onsets,
            )
        else:
            sec["oracle_equal_fp"] = None
            sec["oracle_best"] = None
        card[mode] = sec
    head = card[settings["mode"]]
    oe = head["oracle_equal_fp"] or {}
    card["headline"] = {
        "mode": settings["mode"],
        **{k: head["consensus"][k] for k in ("recall", "precision", "f1", "median_delay_days")},
        "oracle_recall_at_equal_fp": oe.get("oracle_recall"),
        "recall_vs_oracle": oe.get("ratio"),
    }
    if warm:   # the warm-up's events, scored apart (consensus only)
        detail_delays_w = metrics(consensus, warm, "strict", early, late, min_eff)[1]
        for e in warm:
            if e.event_id in detail_delays_w:
                detail_delays.setdefault("consensus", {})[e.event_id] = detail_delays_w[e.event_id]
    card["warmup"] = {
        "days": warm_days,
        "events": len(warm),
        "event_ids": [e.event_id for e in warm],
        "consensus_detected": sum(e.event_id in detail_delays.get("consensus", {}) for e in warm),
        # consensus incidents matching a warm-up event and no counted one (headline mode)
        "consensus_incidents": set_aside.get("consensus", 0),
    }
    total_impact = sum(e.impact for e in events if not e.expected)
    card["event_detail"] = [
        {
            "event_id": e.event_id,
            "type": e.type,
            "expected": e.expected,
            "start": e.start.isoformat()
            if e.start != e.start.normalize()
            else e.start.date().isoformat(),
            "end": e.end.date().isoformat() if e.end_is_day and e.end == e.end.normalize()
            else e.end.isoformat(),
            "primary_kpi": e.primary_kpi,
            "scope_kind": e.scope_kind,
            "in_warmup": e.event_id in in_warmup,
            "impact_share": _r(e.impact / total_impact)
            if total_impact and not e.expected and e.event_id not in in_warmup
            else None,
            "detected_by": {
                n: dd[e.event_id] for n, dd in sorted(detail_delays.items()) if e.event_id in dd
            },
        }
        for e in all_events
    ]
    mode = settings["mode"]
    for incs in [consensus, *detector_incidents.values()]:
        assign_matches(incs, events, mode, early, late, min_eff)
    return card


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def format_table(card: dict[str, Any]) -> str:
    """Readable console table of the headline mode, plus lenient recall."""
    mode = card["settings"]["mode"]
    sec, len_sec = card[mode], card["lenient" if mode == "strict" else "strict"]
    other = "lenient" if mode == "strict" else "strict"
    head = (f"{'':<22}{'recall':>7}{'prec.':>7}{'F1':>6}{'delay':>7}{'incid.':>8}{'FP':>5}"
            f"{'FP exp':>7}{other + ' R':>11}")
    lines = [
        f"Scoring ({mode}; {card['events']['unexpected']} unexpected, {card['events']['expected']} "
        "expected events)",
        head,
        "-" * len(head),
    ]

    def row(label: str, m: dict[str, Any], lm: dict[str, Any]) -> str:
        return (f"{label:<22}{_fmt(m['recall']):>7}{_fmt(m['precision']):>7}{_fmt(m['f1']):>6}"
                f"{_fmt(m['median_delay_days']):>7}{m['incidents']:>8}{m['fp']:>5}{m['fp_expected']:>7}"
                f"{_fmt(lm['recall']):>11}")
    for name, m in sec["detectors"].items():
        lines.append(row(name, m, len_sec["detectors"][name]))
    for label, m in sec["consensus_levels"].items():
        lines.append(row(f"consensus {label}", m, len_sec["consensus_levels"][label]))
    lines.append(row("CONSENSUS (configured)", sec["consensus"], len_sec["consensus"]))
    oe = sec.get("oracle_equal_fp")
    if oe:
        at0 = oe.get("oracle_recall_at_zero_fp")
        lines.append(f"oracle recall at {oe['fp_budget']} FP: {_fmt(oe['oracle_recall'])} "
                     f"(consensus / oracle = {_fmt(oe['ratio'])}; the oracle's F1 there "
                     f"{_fmt(oe.get('oracle_f1'))}; at 0 FP {_fmt(at0)})")
        for d in oe.get("consensus_only_detail") or []:   # above the bound: luck or a defect
            why = ("at or above the cut: the bound lost it, trace it" if d["seen_at_cut"]
                   else "below the cut: luck")
            if d.get("family") is None:
                seen = "no point of the oracle's starts a stretch in its window; luck"
            else:
                cut = (f"its cut {d['cut']:.2f} on {d['family']}" if d.get("cut") is not None
                       else f"nothing taken on {d['family']}")
                seen = f"the oracle's best {d['oracle_score']:.2f}, {cut}; {why}"
            lines.append(f"  found by the consensus alone: {d['event_id']} ({seen})")
    for name, err in card.get("failed_detectors", {}).items():
        lines.append(f"detector {name} FAILED: {err}")
    return "\n".join(lines)
