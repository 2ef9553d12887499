"""Incidents explained one by one, then grouped into episodes (overlapping incidents read
together) and measured where the primary KPI actually deviates. Size (~660 lines, one module on
purpose): grouping, measuring and naming an episode read each other's intermediate results."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from shocklab.catalogue import CUSTOMER_KPIS, KPI_NAMES, MAIN_KPIS, PRICE_KPI

from .. import drivers as dr
from ..context import Incident
from ..insights_config import InsightsConfig
from . import products as pe
from .common import (
    SEVERITY_RANK,
    _day,
    _driver_model,
    _driver_set,
    _explain,
    _f,
    _pct,
    _slice_label,
    _slice_sums,
)
from .diagnosis import diagnose, lasting, persistence, primary_for, trailing_trend
from .headline import _against, _incident_change, _product_change
from .models import CalendarOverlap, DriverSet, Episode, IncidentInsight, SignatureInfo
from .narrative import _episode_action, _episode_narrative, _episode_title, _narrative, _next_step
from .planned import planned_days

CORE_SHARE = 0.75  # episode core: days covered by >= this share of the busiest day's incidents


PEAK_Z = 2.0       # measured days: a peak day deviating >= this many robust sigmas …


PEAK_Z_EXTEND = 1.0  # … and the days around it deviating the same way >= this many


PEAK_SHARE = 0.25  # … and >= this share of the peak's deviation


ONSET_DAYS = 21  # a change that stayed: its onset is looked for up to this many days earlier
SPLIT_DAYS = 4  # a funnel KPI moving a new way >= this many days after an episode's onset …
# … starts a new episode (multi-day detectors join a shock to the neighbouring one)
SPLIT_KPIS = ("sessions", "conversion_rate", "aov")


def _incident(inc: Incident, panel: dr.SlicePanel, cfg: InsightsConfig,
              cal: list[dict] | None,  # cal: the calendar's records
              product_days: tuple[pd.Timestamp, pd.Timestamp, float] | None = None
              ) -> IncidentInsight:
    """``product_days``: a product orders incident's measured days and change
    (``product_span.measured_days``; the panel has no product series)."""
    t0, t1 = pd.Timestamp(inc.start), pd.Timestamp(inc.end)
    start, end = t0.normalize(), t1.normalize()
    # sub-daily input: the periods' times (the incident id's convention: a time of day is shown
    # unless both ends fall on midnight); start and end keep only the day
    timed = t0 != start or t1 != end
    res = _explain(panel, cfg, inc.kpi, start, end, "auto")
    # magnitude against a baseline the incident cannot contaminate (same weekdays around it)
    bw = cfg.drivers.baseline_weeks
    comps = dr.components(inc.kpi)
    a_s = _slice_sums(panel, comps, inc.dimension, inc.segment, start, end, "actual")
    b_s = _slice_sums(panel, comps, inc.dimension, inc.segment, start, end, "baseline", bw)
    days = (end - start).days + 1
    b_val, a_val = dr.kpi_value(inc.kpi, b_s), dr.kpi_value(inc.kpi, a_s)
    # where inside the flagged days the KPI itself deviated: the 3- and 7-day windows keep
    # flagging after a short shock while their sums still hold its days (a 2-day -83 % email
    # outage read "-26.6 % over 8 days"); the episodes are measured the same way
    m_span, m_pct = _measured_span(panel, inc, start, end, bw, [r["date"] for r in cal or ()]
                                   ) if not timed else (None, None)
    if product_days is not None and product_days[:2] != (start, end):
        m_span, m_pct = product_days[:2], _f(product_days[2])
    sig = _signature(panel, cfg, inc.dimension, inc.segment, start, end)
    # the planned days in its span that concern its slice (the detectors' and the consensus'
    # scope rule): a video campaign does not make a paid_search incident planned (TRAIN s8's
    # paid_search flash sale was also a "planned event" episode for one on 02-18)
    span = [r for r in cal or () if start <= r["date"] <= end]
    overlaps: list[CalendarOverlap] = (
        planned_days(pd.DataFrame(span), start, end, inc.dimension, str(inc.segment))
        if span else [])
    dset = _driver_set(res, breakdown=False, dimension=inc.dimension)  # full one: the episode's
    item = IncidentInsight(
        incident_id=inc.incident_id,
        kpi=inc.kpi,
        dimension=inc.dimension,
        segment=str(inc.segment),
        start=_day(start),
        end=_day(end),
        start_time=t0.strftime("%Y-%m-%dT%H:%M") if timed else None,
        end_time=t1.strftime("%Y-%m-%dT%H:%M") if timed else None,
        confirmed=_day(inc.alarm),
        days=days,
        direction=inc.direction,
        actual=_f(inc.actual),
        expected=_f(inc.expected),
        magnitude_pct=_f(inc.magnitude_pct),
        baseline_expected=_f(b_val),
        baseline_magnitude_pct=_pct(_f(a_val), _f(b_val)),
        measured_start=_day(m_span[0]) if m_span else None,
        measured_end=_day(m_span[1]) if m_span else None,
        measured_change_pct=m_pct,
        detectors=sorted(str(d) for d in inc.detectors),
        n_detectors=len(inc.detectors),
        level=inc.level,
        confidence=_f(inc.confidence) or 0.0,
        severity=inc.severity,
        peak_score=_f(inc.peak_score),
        drivers=dset,
        signature=sig,
        planned=bool(overlaps),
        calendar=overlaps,
        narrative="",
        recommended_action="",
        matched_event_id=inc.matched_event_id,
    )
    item.narrative = _narrative(item)
    mag = item.magnitude_pct if item.magnitude_pct is not None else item.baseline_magnitude_pct
    direction = item.direction if mag is None else ("up" if mag > 0 else "down")
    item.recommended_action = _next_step(inc, direction, sig.label, dset.top, overlaps)
    return item


def _measured_span(panel: dr.SlicePanel, inc: Incident, start: pd.Timestamp, end: pd.Timestamp,
                   bw: int, planned: list[pd.Timestamp] | None = None
                   ) -> tuple[tuple[pd.Timestamp, pd.Timestamp] | None, float | None]:
    """The days of a multi-day incident where its KPI deviated in its direction on its own slice
    (``drivers.peak_span``, the episodes' rule) and the KPI's change over them against the same
    weekdays around them; (None, None) when that is the whole incident, nothing stands out or
    the change cannot be measured."""
    if start == end:
        return None, None
    sign = 1 if inc.direction == "up" else -1
    where = (inc.dimension, str(inc.segment))
    span = dr.peak_span(panel, inc.kpi, start, end, bw, PEAK_Z, PEAK_Z_EXTEND, PEAK_SHARE, sign,
                        where=where, planned=planned or ())
    if span is None or span == (start, end):
        return None, None
    comps = dr.components(inc.kpi)
    a = dr.kpi_value(inc.kpi, _slice_sums(panel, comps, *where, *span, "actual"))
    b = dr.kpi_value(inc.kpi, _slice_sums(panel, comps, *where, *span, "baseline", bw))
    pct = _pct(_f(a), _f(b))
    return (span, pct) if pct is not None else (None, None)


def _signature(panel: dr.SlicePanel, cfg: InsightsConfig, dimension: str, segment: str,
               start, end, source: str = "baseline") -> SignatureInfo:
    """revenue = sessions x conversion x AOV on the incident's slice (overall when the slice has
    no sessions, e.g. a category)."""
    comps = ("sessions", "orders", "revenue")
    bw = cfg.drivers.baseline_weeks
    where = (dimension, segment)
    a = _slice_sums(panel, comps, *where, start, end, "actual")
    if not (a.get("sessions") or 0) > 0:
        where = ("overall", "all")
        a = _slice_sums(panel, comps, *where, start, end, "actual")
    e = _slice_sums(panel, comps, *where, start, end, source, bw)
    lc = dr.log_components(a, e)
    label = dr.classify_signature(lc, cfg.signature_min_share)

    def pct(v: float | None) -> float | None:
        return _f(math.expm1(v) * 100) if v is not None else None

    return SignatureInfo(label=label, slice=_slice_label(*where),
                         traffic_pct=pct(lc["traffic"]) if lc else None,
                         conversion_pct=pct(lc["conversion"]) if lc else None,
                         basket_pct=pct(lc["basket"]) if lc else None,
                         revenue_pct=pct(sum(lc.values())) if lc else None)


_PRIMARY_BY_SIGNATURE = {"traffic-driven": "sessions", "conversion-driven": "conversion_rate",
                         "basket-driven": "revenue"}


_KPI_PREFERENCE = ("orders", "revenue", "sessions", "conversion_rate", "aov")
# the store's KPIs and their components: what the funnel measurement can speak for
_FUNNEL = frozenset([*KPI_NAMES, *(c for k in KPI_NAMES for c in dr.components(k))])


def _unique(eid: str, seen: set[str]) -> str:
    """``eid``, or ``eid-2``, ``eid-3`` … when taken (two episodes on different slices may share
    their dates); records the id in ``seen``."""
    k, out = 1, eid
    while out in seen:
        k += 1
        out = f"{eid}-{k}"
    seen.add(out)
    return out


def _compatible(a: IncidentInsight, b: IncidentInsight) -> bool:
    """Two incidents may belong to one happening: one is overall, they are on the same slice, or
    on different dimensions (channel email and country DE may be one channel x country shock);
    two values of one dimension (channel email, channel referral) are two happenings."""
    return (
        "overall" in (a.dimension, b.dimension)
        or a.dimension != b.dimension
        or a.segment == b.segment
    )


def _joins(a: IncidentInsight, b: IncidentInsight) -> bool:
    """Two incidents read together: ``_compatible`` ones whose windows overlap, or the same
    slice's whose windows touch (the next day: one shock a detector flagged in two runs). Two
    slices' incidents on consecutive days (a country's spike ending the day a category's pricing
    error starts) are two happenings."""
    gap = max((b.start - a.end).days, (a.start - b.end).days)
    if gap > 1:
        return False
    if gap == 1:
        return (a.dimension, a.segment) == (b.dimension, b.segment)
    return _compatible(a, b)


def _peak_signs(g: list[IncidentInsight], where: tuple[str, str]) -> dict[str, int]:
    """Per KPI the episode's incidents flagged, the way its peak is searched (+1 up, -1 down, 0
    both): the direction of its incidents in the slice ``where`` where that slice has some, else
    of all of them; 0 when they disagree. Incidents of the KPI on other slices (another country's
    rise beside a channel's drop) left it signless, and the largest move either way then found a
    one-day rise of a channel that had just lost 80 % of its orders for good (TRAIN world s1 E11,
    titled a flash sale)."""
    out: dict[str, int] = {}
    for k in {i.kpi for i in g}:
        on_k = [i for i in g if i.kpi == k]
        d = {i.direction for i in on_k if (i.dimension, i.segment) == where} or {
            i.direction for i in on_k}
        out[k] = (1 if d == {"up"} else -1) if len(d) == 1 else 0
    return out


def _group(items: list[IncidentInsight]) -> list[list[IncidentInsight]]:
    """Connected components of incidents that read together (``_joins``: overlapping windows,
    or touching ones on one slice); each component in start order."""
    its = sorted(items, key=lambda i: (i.start, i.end, i.incident_id))
    parent = list(range(len(its)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for a in range(len(its)):
        for b in range(a + 1, len(its)):
            if (its[b].start - its[a].end).days > 1:
                continue
            if _joins(its[a], its[b]):
                parent[root(b)] = root(a)
    comps: dict[int, list[IncidentInsight]] = {}
    for k, it in enumerate(its):
        comps.setdefault(root(k), []).append(it)
    return list(comps.values())


def _split(g: list[IncidentInsight]) -> list[list[IncidentInsight]]:
    """Cut a group (in start order) where a second happening begins: an incident on a funnel KPI
    (``SPLIT_KPIS``) moving a way (KPI, direction) none of the episode's incidents moved, starting
    >= ``SPLIT_DAYS`` after the episode's onset; it and every later-starting incident open a new
    episode (outcome KPIs, orders and revenue, follow any funnel move and never cut), and so do
    the incidents starting the same day that no earlier incident of the episode moved the same
    way (in start order they can come first: `I-orders-…` sorts before `I-sessions-…`, and a site
    outage's category orders stayed with a country's conversion rise from four days before,
    titled by the outage, while its sessions made a second episode of it; world 23)."""
    out: list[list[IncidentInsight]] = [[]]
    for i in g:
        cur = out[-1]
        if cur and i.kpi in SPLIT_KPIS and (i.start - cur[0].start).days >= SPLIT_DAYS and (
                (i.kpi, i.direction) not in {(c.kpi, c.direction) for c in cur}):
            before = {(c.kpi, c.direction) for c in cur if c.start < i.start}
            new = [c.start == i.start and (c.kpi, c.direction) not in before for c in cur]
            out.append([c for c, m in zip(cur, new, strict=True) if m])
            cur[:] = [c for c, m in zip(cur, new, strict=True) if not m]
        out[-1].append(i)
    return out


def _touches(later: list[IncidentInsight], earlier: list[IncidentInsight]) -> bool:
    """Does a later happening act where an earlier one is measured: an overall incident, or one
    on a slice an earlier incident is on? (An unrelated slice's incident splitting a group, the
    default scenario's paid_search conversion of 2024-08-10 inside a fashion stockout, leaves the
    earlier part's days as they are.)"""
    mine = {(i.dimension, str(i.segment)) for i in earlier}
    return any(i.dimension == "overall" or (i.dimension, str(i.segment)) in mine for i in later)


def _named_slice(g: list[IncidentInsight], panel: dr.SlicePanel, cfg: InsightsConfig,
                 start: pd.Timestamp, end: pd.Timestamp) -> tuple[str, str] | None:
    """The slice an episode without an overall incident names by its incidents (None when some
    incident is overall): the slice with the most incidents (ties: the more concentrated, then
    the earliest). With incidents on exactly one channel and one country their pair is a
    candidate too, and a channel x country pair is kept only when it explains more than its
    parts (the drivers' pair rule: its concentration on the most flagged KPI beats its
    channel's and its country's by ``drivers.PAIR_MARGIN``); otherwise its more concentrated
    part stands in for it."""
    if any(i.dimension == "overall" for i in g):
        return None
    counts: dict[tuple[str, str], int] = {}
    for i in g:
        counts[(i.dimension, i.segment)] = counts.get((i.dimension, i.segment), 0) + 1
    ch = sorted({s for d, s in counts if d == "channel"})
    co = sorted({s for d, s in counts if d == "country"})
    if len(ch) == 1 and len(co) == 1:
        counts.setdefault((dr.PAIR_DIMENSION, f"{ch[0]}{dr.PAIR_SEP}{co[0]}"), 0)
    kpi = max({i.kpi for i in g}, key=lambda k: (sum(i.kpi == k for i in g), k))
    bw = cfg.drivers.baseline_weeks
    conc: dict[tuple[str, str], float | None] = {}

    def concentration(where: tuple[str, str]) -> float | None:
        if where not in conc:
            rec = None
            if all(c in panel.values for c in dr.components(kpi)):
                rec = dr.slice_driver(panel, kpi, start, end, *where, "auto", bw)
            conc[where] = None if rec is None else rec["concentration"]
        return conc[where]

    for where in [w for w in counts if w[0] == dr.PAIR_DIMENSION]:
        parts = [("channel", p) for p in where[1].split(dr.PAIR_SEP)[:1]] + [
            ("country", p) for p in where[1].split(dr.PAIR_SEP)[1:]]
        pc = concentration(where)
        best = max(parts, key=lambda w: concentration(w) if concentration(w) is not None
                   else -math.inf)
        if pc is None or pc <= (concentration(best) or 0.0) + dr.PAIR_MARGIN:
            n = counts.pop(where)
            if concentration(best) is not None:  # the part stands in for the pair (with
                # the pair's own incidents: a candidate pair without any adds no vote to it)
                counts[best] = max(counts.get(best, 0) + n, 1)
    if not counts:
        return None
    order = {w: k for k, w in enumerate(counts)}
    return max(counts, key=lambda w: (counts[w], concentration(w) or -math.inf, -order[w]))


def _episodes(items: list[IncidentInsight], panel: dr.SlicePanel, cfg: InsightsConfig,
              cal: pd.DataFrame | None, categories: dict[str, str] | None = None,
              indexes: bool = False, sub_daily: bool = False) -> list[Episode]:
    """Group incidents whose windows overlap or touch (``_group``) — planned-calendar ones apart
    from the others, so a planned campaign does not swallow an anomaly next to it — and explain
    each group once over the days where its primary KPI actually deviates
    (``drivers.peak_span``): overall, or in the slice its incidents name when none is overall.
    ``sub_daily`` (a --kpis file with a step under a day): the title quotes the largest
    incident's own change (``incident_change``), not the whole days'."""
    groups: list[list[IncidentInsight]] = []
    floors: dict[int, pd.Timestamp] = {}
    ceilings: dict[int, date] = {}
    planned_dates = [] if cal is None else list(pd.to_datetime(cal["date"]).unique())
    kinds = [[i for i in items if pe.is_product_item(i, indexes) == p] for p in (False, True)]
    for planned in (False, True):  # the product watcher's incidents apart (products.py)
        comps = [_group([i for i in k if i.planned == planned]) for k in kinds]
        for c in comps[0] + pe.join_by_category(comps[1], categories or {}):
            parts = _split(c)
            groups += parts
            # a part cut from an earlier happening is not measured back into it, nor the earlier
            # part into the later happening's days (world 23: a country's conversion rise,
            # flagged on through an outage four days later, was measured over the outage's day
            # and titled by it)
            floors.update({id(p): pd.Timestamp(p[0].start) for p in parts[1:]})
            ceilings.update({id(p): nxt[0].start - timedelta(days=1)
                             for p, nxt in zip(parts, parts[1:], strict=False) if _touches(nxt, p)})
    groups = pe.fold_into_store(groups, categories or {}, indexes)
    groups.sort(key=lambda g: (min(i.start for i in g), g[0].planned))
    out = []
    seen: set[str] = set()
    bw = cfg.drivers.baseline_weeks
    for g_all in groups:
        # a store episode with folded product incidents is measured on its own incidents
        g = [i for i in g_all if not pe.is_product_item(i, indexes)] or g_all
        start, end = min(i.start for i in g), max(i.end for i in g)
        prices = [i for i in g_all if i.kpi == PRICE_KPI] if g is not g_all else []
        if prices and min(i.start for i in prices) <= end and max(i.end for i in prices) >= start:
            # … within the days a folded list price moved: a pricing error's own days (world s5's
            # E01 was -74.8 % over its two days, -54.5 % over the store incidents' three)
            start = max(start, min(i.start for i in prices))
            end = min(end, max(i.end for i in prices))
        end = min(end, max(ceilings.get(id(g_all), end), start))   # measured before a split
        # first guess: the days most of the incidents cover (slice incidents trail on, smoothing
        # detectors flag late); then where the primary KPI itself deviates (drivers.peak_span)
        days = pd.date_range(start, end, freq="D")
        cover = np.zeros(len(days))
        for i in g:
            cover[(days >= pd.Timestamp(i.start)) & (days <= pd.Timestamp(i.end))] += 1
        core = days[cover >= CORE_SHARE * cover.max()]
        # an episode of slice incidents only is measured in the slice they name
        product = g is g_all and pe.is_product_item(g[0], indexes)
        named = (pe.named_slice(g, categories or {}) if product
                 else _named_slice(g, panel, cfg, core.min(), core.max()))
        where = named or ("overall", "all")
        changes, sig, primary = _measure(panel, cfg, core.min(), core.max(), g[0].kpi, where=where)
        # the primary KPI's peak, else that of the KPIs the incidents flagged (most flagged first)
        flagged = sorted({i.kpi for i in g}, key=lambda k: (-sum(i.kpi == k for i in g), k))
        span = None
        # the peak in the direction the incidents flagged (on the KPI they flagged; the primary
        # KPI's own sign may differ: a conversion drop can come with a sessions rise)
        # (in the slice the incidents name, never the store's: the store's peak inside the
        # window may be another happening's, against which the slice even moved the other way)
        signs = _peak_signs(g, where)
        # a primary KPI no incident flagged has no direction: its peak searched both ways found a
        # rise in an episode of falls (TRAIN s19 E08, a store-wide -19 % sessions level shift
        # titled "orders up +34.4%: flash sale"); the flagged KPIs' own days come first then
        order = [primary, *flagged] if primary in signs else [
            *(k for k in flagged if signs[k]), primary, *flagged]
        for k in dict.fromkeys(order):
            span = dr.peak_span(panel, k, pd.Timestamp(start), pd.Timestamp(end), bw, PEAK_Z,
                                PEAK_Z_EXTEND, PEAK_SHARE, signs.get(k, 0), where=where,
                                planned=planned_dates)
            if span is not None:
                break
        ts, te = span or (pd.Timestamp(start), pd.Timestamp(end))
        if named is not None and (pair := dr.pair_within(panel, ts, te, *named, bw)) and (
                _pair_supports(panel, bw, pair, g, ts, te)):
            # the channel or country the incidents name moved through one of its pairs
            named = where = (dr.PAIR_DIMENSION, pair)
        changes, sig, primary = _measure(panel, cfg, ts, te, primary)
        local = changes
        if named is not None:  # the signature and primary KPI of the named slice
            local, sig, primary = _measure(panel, cfg, ts, te, primary, where=named)
        res, res_kpi = _explain(panel, cfg, primary, ts, te, "auto"), primary
        dset = _named_top(_driver_set(res, breakdown=True), panel, cfg, primary, ts, te, named)
        ov = sorted({(c.date, c.name, c.kind, c.scope) for i in g for c in i.calendar},
                    key=lambda c: (c[0], c[1], c[2], c[3] or ""))
        # a change that outlasts the episode (level shift, churn) is measured against the weeks
        # before it only: a centered baseline would already hold half of the new level
        # the funnel KPI whose level moved most unusually from before to after the episode
        steps = {k: persistence(panel, k, ts, te, local.get(k), where)
                 for k in ("sessions", "conversion_rate", "orders") if local.get(k) is not None}
        pk = max(steps, key=lambda k: (abs(steps[k][1] or 0.0), k), default="sessions")
        persist = steps.get(pk, (None, None))
        baseline = "centered"
        if lasting(persist, (te - ts).days + 1) and not ov:
            # measured from where the new level began (a ramp's early days included) to the
            # episode's end, against the weeks before that onset
            sign = 1 if (local.get(pk) or 0.0) > 0 else -1
            t0 = dr.onset(panel, pk, ts - pd.Timedelta(days=ONSET_DAYS), ts, te, sign, bw,
                          PEAK_SHARE, where)
            ts = min(ts, t0) if t0 is not None else ts
            ts = max(ts, floors.get(id(g_all), ts))
            changes, sig, _ = _measure(panel, cfg, ts, te, primary, source="trailing")
            if named is not None:
                local, sig, _ = _measure(panel, cfg, ts, te, primary, "trailing", named)
            baseline = "trailing"
        src = "trailing" if baseline == "trailing" else "baseline"
        for _ in range(2):  # the diagnosis names the primary KPI, whose drivers may show a slice
            inside = _slice_changes(panel, cfg, dset, ts, te, src)
            diag = diagnose(
                changes, dset, (te - ts).days + 1, bool(ov), persist, pk, res_kpi, inside
            )
            diag = pe.diagnosis(diag, g) if product else diag
            primary = primary_for(diag.type, changes, primary)
            if primary == res_kpi:
                break
            top_before = dset.top
            res, res_kpi = _explain(panel, cfg, primary, ts, te, "auto"), primary
            dset = _named_top(_driver_set(res, breakdown=True), panel, cfg, primary, ts, te, named)
            if (dset.top is None) == (top_before is None) and (
                dset.top is None
                or (dset.top.dimension, dset.top.value) == (top_before.dimension, top_before.value)
            ):
                break
        inside = _slice_changes(panel, cfg, dset, ts, te, src)
        if not product and not any(k in _FUNNEL for k in flagged):
            # incidents on series outside the store's funnel (a --kpis file's own columns) name
            # the episode (beside a list price a funnel KPI does: a pricing error acts on AOV) …
            primary = flagged[0]
        elif not product:  # … and beside a funnel column (named `orders`) if they moved more
            own = {k: _own_change(panel, cfg, k, ts, te, src) for k in flagged
                   if k not in _FUNNEL and k != PRICE_KPI}
            top = max(own, key=lambda k: abs(own[k] or 0), default=None)
            if top is not None and abs(own[top] or 0) > abs(changes.get(primary) or 0):
                primary, changes = top, {**changes, **own}
        if primary not in _FUNNEL and primary not in changes:  # a generic series: its own size
            changes = {**changes, primary: _own_change(panel, cfg, primary, ts, te, src)}
        g, start, end = g_all, min(i.start for i in g_all), max(i.end for i in g_all)
        dirs = {i.direction for i in g}
        ep = Episode(
            episode_id=_unique(f"EP-{start}-{end}" + ("-planned" if g[0].planned else ""), seen),
            start=start,
            end=end,
            days=(end - start).days + 1,
            measured_start=ts.date(),
            measured_end=te.date(),
            baseline=baseline,
            trailing_trend_pct=trailing_trend(panel, primary, ts, cfg.drivers.baseline_weeks)
            if baseline == "trailing" and primary in _FUNNEL else None,
            direction=dirs.pop() if len(dirs) == 1 else "mixed",
            incident_ids=[i.incident_id for i in g],
            kpis=sorted({i.kpi for i in g}),
            slices=sorted({_slice_label(i.dimension, i.segment) for i in g}),
            primary_kpi=primary,
            kpi_changes=changes,
            scope_changes=inside,
            severity=max((i.severity for i in g), key=lambda x: SEVERITY_RANK.get(x, 0)),
            confidence=max(i.confidence for i in g),
            signature=sig,
            drivers=dset,
            diagnosis=diag,
            planned=bool(ov),
            calendar=[CalendarOverlap(date=d, name=n, kind=k, scope=sc) for d, n, k, sc in ov],
            title="",
            narrative="",
            recommended_action="",
            matched_event_ids=sorted({i.matched_event_id for i in g if i.matched_event_id}),
        )
        if sub_daily:
            ep.incident_change = _incident_change(ep, g)
        if product and ep.incident_change is None:
            ep.incident_change = _product_change(ep, g)
        if ep.incident_change is None and _against(ep, g):
            ep.incident_change = _incident_change(ep, g, "direction")
        ep.title = _episode_title(ep)
        ep.narrative = _episode_narrative(ep)
        ep.recommended_action = _episode_action(ep)
        out.append(ep)
    return out


def _slice_changes(
    panel: dr.SlicePanel, cfg: InsightsConfig, dset, ts: pd.Timestamp, te: pd.Timestamp, source: str
) -> dict[str, float | None] | None:
    """The funnel inside the top driver's slice (its own sessions, conversion, AOV, orders, revenue
    vs its baseline), None without a concentrated driver. A shock confined to a slice shows its
    pure pattern there (overall it is diluted, or mixed with the slice's weight)."""
    t = dset.top
    if t is None:
        return None
    dim, seg = t.dimension, t.value
    out: dict[str, float | None] = {}
    for k in MAIN_KPIS:
        comps = dr.components(k)
        if all(c in panel.values for c in comps):
            a = dr.kpi_value(k, _slice_sums(panel, comps, dim, seg, ts, te, "actual"))
            b = dr.kpi_value(
                k, _slice_sums(panel, comps, dim, seg, ts, te, source, cfg.drivers.baseline_weeks)
            )
            out[k] = _pct(_f(a), _f(b))
    return out


def _named_top(dset: DriverSet, panel: dr.SlicePanel, cfg: InsightsConfig, kpi: str,
               ts: pd.Timestamp, te: pd.Timestamp, named: tuple[str, str] | None) -> DriverSet:
    """The driver set with the slice the episode's incidents name as its top (``named_by`` =
    "incidents"): its attribution record for ``kpi`` (revenue when the slice has no such KPI, e
    g. sessions of a category). Without a named slice, a top channel or country whose change
    one of its pairs carries (``drivers.pair_within``) gives way to that pair."""
    bw = cfg.drivers.baseline_weeks
    if named is None:
        t = dset.top
        pair = dr.pair_within(panel, ts, te, t.dimension, t.value, bw) if t is not None else None
        if pair is None:
            return dset
        rec = _slice_record(panel, kpi, ts, te, (dr.PAIR_DIMENSION, pair), bw)
        if rec is None or not _carries(rec, t.relative_change_pct) or not _counts_moved(
                panel, bw, (dr.PAIR_DIMENSION, pair), kpi, ts, te):
            return dset
        top = _driver_model(rec)
        return dset.model_copy(update={"top": top, "focus": _f(dr.focus(
            top.share_of_change, top.share_of_expected))})
    rec = _slice_record(panel, kpi, ts, te, named, bw)
    if rec is None:
        return dset
    top = _driver_model(rec)
    return dset.model_copy(update={"top": top, "scope": "concentrated", "named_by": "incidents",
                                   "focus": _f(dr.focus(top.share_of_change,
                                                        top.share_of_expected))})


def _counts_moved(panel: dr.SlicePanel, bw: int, where: tuple[str, str], kpi: str,
                  ts: pd.Timestamp, te: pd.Timestamp) -> bool:
    """The slice has support for a move of ``kpi``: one of the counts it is built from
    (``drivers.PAIR_KPIS``: sessions, orders) moved beyond chance over [ts, te]
    (``drivers.count_moved``: 2 orders expected and 0 seen is no support for a "-100 %"). A KPI
    built from no such count (or one the panel lacks) is not judged here."""
    counts = [c for c in dr.components(kpi) if c in dr.PAIR_KPIS and c in panel.values]
    if not counts:
        return True
    a = _slice_sums(panel, counts, *where, ts, te, "actual")
    b = _slice_sums(panel, counts, *where, ts, te, "baseline", bw)
    return any(dr.count_moved(a[c], b[c]) for c in counts)


def _pair_supports(panel: dr.SlicePanel, bw: int, pair: str, g: list[IncidentInsight],
                   ts: pd.Timestamp, te: pd.Timestamp) -> bool:
    """A channel x country pair stands in for the slice the episode's incidents name only when
    it shows their move, with support: on each KPI they flagged, its counts moved beyond chance
    (``_counts_moved``), and on each KPI they flagged one way, its value is defined (a pair
    without orders has no AOV or conversion to speak of) and moves that way. Otherwise the
    pair (which ``drivers.pair_within`` picks on sessions or orders alone) could name an AOV
    rise by a pair whose few orders fell to none: "conversion_rate down -100 %"."""
    where = (dr.PAIR_DIMENSION, pair)
    for k in sorted({i.kpi for i in g}):
        comps = dr.components(k)
        if not all(c in panel.values for c in comps):
            continue
        if not _counts_moved(panel, bw, where, k, ts, te):
            return False
        dirs = {i.direction for i in g if i.kpi == k}
        if len(dirs) == 1:
            a = dr.kpi_value(k, _slice_sums(panel, comps, *where, ts, te, "actual"))
            b = dr.kpi_value(k, _slice_sums(panel, comps, *where, ts, te, "baseline", bw))
            v = _pct(_f(a), _f(b))
            if v is None or (v > 0) != (dirs == {"up"}):
                return False
    return True


def _carries(pair: dict, parent_pct: float | None) -> bool:
    """A pair carries the KPI the drivers explain as well: part of its change, moving the same
    way as its whole channel or country and further (relatively)."""
    rel = pair["relative_change"]
    return (pair["share_of_change"] > 0 and rel is not None and parent_pct is not None
            and rel * parent_pct > 0 and abs(rel * 100) > abs(parent_pct))


def _slice_record(panel: dr.SlicePanel, kpi: str, ts: pd.Timestamp, te: pd.Timestamp,
                  where: tuple[str, str], bw: int) -> dict | None:
    """The attribution record of one slice for ``kpi`` (revenue when the slice lacks it)."""
    for k in dict.fromkeys([kpi, "revenue"]):
        if all(c in panel.values for c in dr.components(k)):
            rec = dr.slice_driver(panel, k, ts, te, *where, "auto", bw)
            if rec is not None:
                return rec
    return None


def _own_change(panel: dr.SlicePanel, cfg: InsightsConfig, kpi: str, ts, te, source: str):
    """A generic series' change over [ts, te] against ``source`` (its own size, overall)."""
    a, b = (dr.kpi_value(kpi, _slice_sums(panel, dr.components(kpi), "overall", "all", ts, te, s,
                                          cfg.drivers.baseline_weeks)) for s in ("actual", source))
    return _pct(_f(a), _f(b))


def _measure(
    panel: dr.SlicePanel,
    cfg: InsightsConfig,
    ts: pd.Timestamp,
    te: pd.Timestamp,
    fallback: str,
    source: str = "baseline",
    where: tuple[str, str] = ("overall", "all"),
) -> tuple[dict[str, float | None], SignatureInfo, str]:
    """KPI changes vs baseline, signature and primary KPI over [ts, te], overall or in the slice
    ``where``."""
    bw = cfg.drivers.baseline_weeks
    changes: dict[str, float | None] = {}
    for k in (*MAIN_KPIS, *CUSTOMER_KPIS):
        comps = dr.components(k)
        if all(c in panel.values for c in comps):
            a = dr.kpi_value(k, _slice_sums(panel, comps, *where, ts, te, "actual"))
            b = dr.kpi_value(k, _slice_sums(panel, comps, *where, ts, te, source, bw))
            changes[k] = _pct(_f(a), _f(b))
    sig = _signature(panel, cfg, *where, ts, te, source)
    primary = _PRIMARY_BY_SIGNATURE.get(sig.label)
    if (
        sig.label == "basket-driven"
        and changes.get("aov") is not None
        and changes.get("revenue") is not None
        and abs(changes["aov"]) > abs(changes["revenue"])
    ):
        primary = (
            "aov"  # a price change moves the basket more than revenue; a stock-out the reverse
        )
    if primary is None or primary not in changes:
        moved = {k: abs(v) for k, v in changes.items() if v is not None and k in MAIN_KPIS}
        # biggest mover; within 5 % of it, the more aggregate KPI (orders, revenue) is named
        top = max(moved.values(), default=0.0)
        primary = next(
            (k for k in _KPI_PREFERENCE if k in moved and moved[k] >= 0.95 * top), fallback
        )
    return changes, sig, primary
