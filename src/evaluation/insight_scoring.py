"""Scoring the insights against the injected truth (merged into the scorecard as
``scorecard["insights"]``). Like ``scoring``, this module reads truth; insights never do.

Insights group overlapping incidents into *episodes*. Per matched event (an event some consensus
incident's ``matched_event_id`` names), its episode is the one (among those holding its matched
incidents) whose measured days best overlap the event's window. Scored:

- **root cause** (events with a scope): the episode's top driver is the scoped slice
  (``{"channel": "paid_social"}`` -> channel paid_social; a two-key scope -> that channel x
  country pair; a product -> its category, the finest slice the drivers can name). A "broad"
  verdict on a scoped event is wrong. Events without scope are scored apart: ``broad_accuracy``
  = share judged broad.
- **KPI attribution**: the episode's ``primary_kpi`` is the event's ``primary_kpi``
  (``primary_kpi_flagged``: some incident of the episode is on it).
- **magnitude error**: ``|m - e| / |e|`` on the event's primary KPI where the shock acted:
  ``m`` = the change the episode states for the slice it names (``scope_changes``, the top
  driver's slice; ``kpi_changes``, overall, when it names none), ``e`` = the realized effect
  inside the event's scope (``scope_effects``; ``effects`` for an unscoped event), when ``|e| >=
  MIN_EFFECT`` (``realized_effect``). Where the episode names a slice that contains the scope
  (a channel x country scope's channel or country), ``e`` is that slice's own realized effect
  (truth ``container_effects``). Product-scoped events are left out: the insights state their
  category's change, where one product's effect is mostly below the category's noise (with
  them, on test worlds 101-110, their median error is 1.6; eighteenth session).
  ``magnitude_error_overall_*``: the
  episode's overall change vs the realized overall effect (the definition before schema 2.1;
  for a scoped shock it mostly measures how diluted it is). ``incident_magnitude_*``: every
  matched overall incident on its KPI vs the overall effect.
- **signature**: the episode's signature equals the one the event's realized effects give under
  the same classifier (``drivers.signature_from_effects``).
- **diagnosis**: the episode's ``diagnosis.type`` equals the event's type (``type_accuracy``,
  overall and per type; the insights name shock types as the simulator does).

``event_windows`` scores the attribution engine alone, on every unexpected event's true window
and primary KPI (as if detection had been exact): root cause and magnitude error.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date
from typing import Any, get_args

import numpy as np
import pandas as pd

from analytics import watch
from analytics.context import RunContext
from analytics.drivers import signature_from_effects
from analytics.insights.models import ShockType
from shocklab.catalogue import PAIR_DIMENSION, PAIR_SEP

from .scoring import container_records

MIN_EFFECT = 0.02
SHOCK_TYPES = frozenset(get_args(ShockType)) - {"undetermined"}  # what a diagnosis can name


def expected_driver(
    scope: dict[str, Any], categories: dict[str, str] | None = None
) -> tuple[str, str] | None:
    """(dimension, value) an event's scope should be explained by; None for an unscoped event.
    A product scope is explained by the product's category (``categories``: product id ->
    category; None when unknown): the drivers' finest dimension."""
    scope = {str(k): str(v) for k, v in (scope or {}).items()}
    if not scope:
        return None
    if set(scope) == {"product"}:
        cat = (categories or {}).get(scope["product"])
        return ("category", cat) if cat is not None else None
    if len(scope) == 1:
        return next(iter(scope.items()))
    if set(scope) == {"channel", "country"}:
        return PAIR_DIMENSION, f"{scope['channel']}{PAIR_SEP}{scope['country']}"
    return None  # a scope the drivers cannot name as one slice


def realized_effect(ev: dict[str, Any], named: tuple[str, str] | None,
                    kpi: str | None) -> float | None:
    """The event's realized relative effect on ``kpi`` that a stated change in the slice
    ``named`` (the top driver; None: none named) is compared with: the overall effect for an
    unscoped event; None for a product scope (left out); a slice containing the scope, named,
    its own (``container_effects``); otherwise the effect inside the scope (``scope_effects``)."""
    scope = ev.get("scope") or {}
    if kpi is None or "product" in scope:
        return None
    if not scope:
        return (ev.get("effects") or {}).get(kpi)
    rec = container_records(ev) or {}
    if named is not None and (str(named[0]), str(named[1])) in rec:
        return rec[(str(named[0]), str(named[1]))].get(kpi)
    return (ev.get("scope_effects") or {}).get(kpi)


def insight_magnitude(inc: dict[str, Any]) -> float | None:
    m = inc.get("baseline_magnitude_pct")
    if m is None:
        m = inc.get("magnitude_pct")
    return None if m is None else m / 100.0


def product_categories(ctx: RunContext) -> dict[str, str]:
    """product id -> category from the data's products table ({} without one)."""
    return watch.product_categories(ctx.data.tables.get("products"))


def _error(m: float | None, e: float | None) -> float | None:
    return abs(m - e) / abs(e) if m is not None and e is not None and abs(e) >= MIN_EFFECT else None


def _mean(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 4) if xs else None


def score_insights(ctx: RunContext) -> dict[str, Any]:
    """Insight quality against truth; {} when the data carry no truth."""
    if ctx.truth is None:
        return {}
    doc = ctx.insights
    if doc is None:  # scoring may run without the insights stage having written files
        from analytics.insights import build, to_json_dict

        doc = to_json_dict(build(ctx))
    events = {str(e["event_id"]): e for e in ctx.truth.events}
    incidents = {i["incident_id"]: i for i in doc.get("incidents", [])}
    by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ep in doc.get("episodes", []):
        for eid in ep.get("matched_event_ids", []):
            if eid in events:
                by_event[eid].append(ep)

    cats = product_categories(ctx)
    rows, inc_errors = [], []
    for eid in sorted(by_event):
        ev, eps = events[eid], by_event[eid]
        # the episode whose measured days best cover the event's (then: most matched incidents)
        ep = max(
            eps,
            key=lambda e: (
                _jaccard(e["measured_start"], e["measured_end"], ev["start"], ev["end"]),
                sum(incidents[i].get("matched_event_id") == eid for i in e["incident_ids"]),
            ),
        )
        scope = ev.get("scope") or {}
        want = expected_driver(scope, cats)
        top = ep["drivers"].get("top")
        got = (top["dimension"], top["value"]) if top else None
        effects = ev.get("effects") or {}
        primary = ev.get("primary_kpi")
        # overall: the episode's overall change vs the realized overall effect
        e_all, m_all = effects.get(primary), _frac(ep["kpi_changes"].get(primary))
        # where it acted: the slice the episode names vs the realized effect in the event's scope
        inside = ep.get("scope_changes") if top else None
        m_val = _frac((inside or ep["kpi_changes"]).get(primary))
        e_val = realized_effect(ev, got, primary)
        err = _error(m_val, e_val)
        err_all = _error(m_all, e_all)
        # every overall incident of the event against the effect on its own KPI
        for iid in ep["incident_ids"]:
            inc = incidents[iid]
            e, m = effects.get(inc["kpi"]), insight_magnitude(inc)
            if inc["matched_event_id"] == eid and inc["dimension"] == "overall" and e is not None \
                    and m is not None and abs(e) >= MIN_EFFECT:
                inc_errors.append(abs(m - e) / abs(e))
        # a label (--events) that names no KPI or no shock type leaves those answers unscored
        shock = ev.get("type") in SHOCK_TYPES
        true_sig = signature_from_effects(effects) if effects else None
        true_sig = None if true_sig == "undetermined" else true_sig
        rows.append(
            {
                "event_id": eid,
                "type": ev.get("type"),
                "scope": ev.get("scope") or {},
                "episode": ep["episode_id"],
                "incidents": len(ep["incident_ids"]),
                "expected_driver": list(want) if want else None,
                "top_driver": list(got) if got else None,
                "drivers_scope": ep["drivers"].get("scope"),
                "root_cause_ok": (got == want) if want else None,
                "broad_ok": (ep["drivers"].get("scope") == "broad")
                if not ev.get("scope") and shock
                else None,
                "kpi": ep["primary_kpi"],
                "primary_kpi": primary,
                "kpi_ok": ep["primary_kpi"] == primary if primary is not None else None,
                "primary_kpi_flagged": primary in ep["kpis"] if primary is not None else None,
                "magnitude_slice": _label(got) if inside else "overall",
                "magnitude_pct": _r100(m_val),
                "effect_pct": _r100(e_val),
                "magnitude_error": None if err is None else round(err, 4),
                "magnitude_overall_pct": _r100(m_all),
                "effect_overall_pct": _r100(e_all),
                "magnitude_error_overall": None if err_all is None else round(err_all, 4),
                "signature": ep["signature"]["label"],
                "true_signature": true_sig,
                "signature_ok": (ep["signature"]["label"] == true_sig) if true_sig else None,
                "diagnosis": (ep.get("diagnosis") or {}).get("type"),
                "type_ok": (ep.get("diagnosis") or {}).get("type") == ev.get("type")
                if shock else None,
            }
        )

    def agg(rs: list[dict[str, Any]]) -> dict[str, Any]:
        rc = [r["root_cause_ok"] for r in rs if r["root_cause_ok"] is not None]
        errs = [r["magnitude_error"] for r in rs if r["magnitude_error"] is not None]
        errs_all = [
            r["magnitude_error_overall"] for r in rs if r["magnitude_error_overall"] is not None
        ]
        return {
            "events": len(rs),
            "scoped_events": len(rc),
            "root_cause_accuracy": _mean(rc),
            "broad_accuracy": _mean([r["broad_ok"] for r in rs if r["broad_ok"] is not None]),
            "kpi_attribution": _mean([r["kpi_ok"] for r in rs if r["kpi_ok"] is not None]),
            "primary_kpi_flagged": _mean(
                [r["primary_kpi_flagged"] for r in rs if r["primary_kpi_flagged"] is not None]
            ),
            "magnitude_error_median": _median(errs),
            "magnitude_n": len(errs),
            "magnitude_error_overall_median": _median(errs_all),
            "magnitude_overall_n": len(errs_all),
            "signature_accuracy": _mean(
                [r["signature_ok"] for r in rs if r["signature_ok"] is not None]
            ),
            "type_accuracy": _mean([r["type_ok"] for r in rs if r["type_ok"] is not None]),
        }

    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_type[str(r["type"])].append(r)
    out = agg(rows)
    out["incident_magnitude_error_median"] = _median(inc_errors)
    out["incident_magnitude_n"] = len(inc_errors)
    out["by_type"] = {t: agg(rs) for t, rs in sorted(by_type.items())}
    if "insight_windows" in ctx.ahead:  # computed beside the insights stage
        out["event_windows"] = ctx.ahead["insight_windows"]
    else:
        out["event_windows"] = event_windows(ctx) if ctx.kpis_daily is not None else None
    out["per_event"] = rows
    out["definitions"] = (
        "per matched event, the episode best overlapping it; root cause: the "
        "episode's top driver is the event's scope; KPI: episode primary KPI == event primary KPI; "
        "type: episode diagnosis.type == event type; magnitude error: |m - e| / |e| on the event's "
        "primary KPI, m = the episode's change in the slice it names (overall when broad), e = "
        f"the realized effect in the event's scope (|e| >= {MIN_EFFECT}; product scopes left "
        "out); magnitude_error_overall: overall change vs overall effect; incident_magnitude_*: "
        "overall incidents vs the effect on their own KPI"
    )
    return out


def event_windows(ctx: RunContext) -> dict[str, Any]:
    """The attribution engine alone: drivers and magnitude over each unexpected event's true
    window and primary KPI, as if detection had found it exactly (separates timing misses of the
    detectors from attribution errors of the insights)."""
    from analytics.drivers import components, explain
    from analytics.insights import build_panel, config_of

    cfg = config_of(ctx)
    panel = build_panel(ctx, cfg)
    c = cfg.drivers
    cats = product_categories(ctx)
    rc, errs, rows = [], [], []
    for ev in ctx.truth.events if ctx.truth is not None else []:
        kpi, effects = ev.get("primary_kpi"), ev.get("effects") or {}
        if (
            ev.get("expected")
            or kpi not in effects
            or any(x not in panel.values for x in components(kpi))
        ):
            continue
        start, end = pd.Timestamp(ev["start"]).normalize(), pd.Timestamp(ev["end"]).normalize()
        res = explain(
            panel,
            kpi,
            start,
            end,
            expected="auto",
            baseline_weeks=c.baseline_weeks,
            top_k=c.top_k,
            min_share=c.min_share,
            focus_min=c.focus_min,
            pairs=c.pairs,
        )
        scope = ev.get("scope") or {}
        want = expected_driver(scope, cats)
        got = (res.top["dimension"], res.top["value"]) if res.top else None
        where = got or ("overall", "all")  # the change in the slice the drivers name

        m = relative_change(
            _slice_value(panel, kpi, start, end, "actual", where, c.baseline_weeks),
            _slice_value(panel, kpi, start, end, "baseline", where, c.baseline_weeks))
        e = realized_effect(ev, got, kpi)
        err = _error(m, e)
        if want:
            rc.append(got == want)
        if err is not None:
            errs.append(err)
        rows.append(
            {
                "event_id": ev["event_id"],
                "expected_driver": list(want) if want else None,
                "top_driver": list(got) if got else None,
                "magnitude_slice": _label(got),
                "magnitude_pct": _r100(m),
                "effect_pct": _r100(e),
                "magnitude_error": None if err is None else round(err, 4),
            }
        )
    return {"events": len(rows), "scoped_events": len(rc), "root_cause_accuracy": _mean(rc),
            "magnitude_error_median": _median(errs), "per_event": rows}


def relative_change(actual: float, baseline: float) -> float | None:
    """``actual / baseline - 1``; None where it has no value (a baseline of 0 or NaN: a slice
    that sold nothing in its baseline weeks, as in a store of a few orders a day)."""
    with np.errstate(all="ignore"):
        m = np.float64(actual) / np.float64(baseline) - 1.0
    return float(m) if np.isfinite(m) else None


def _slice_value(panel, kpi: str, start, end, src: str, where: tuple[str, str],
                 baseline_weeks: int) -> float:
    """``kpi`` over [start, end] in one slice from window sums of its components."""
    from analytics.drivers import components, kpi_value

    return kpi_value(kpi, {x: float(panel.window_sums(x, start, end, src, baseline_weeks)
                                    .get(where, float("nan"))) for x in components(kpi)})


def _jaccard(a0: str, a1: str, b0: str, b1: str) -> float:
    """Overlap / union of two inclusive day ranges (ISO dates)."""
    a0, a1, b0, b1 = (date.fromisoformat(str(x)[:10]) for x in (a0, a1, b0, b1))
    inter = (min(a1, b1) - max(a0, b0)).days + 1
    union = (max(a1, b1) - min(a0, b0)).days + 1
    return max(inter, 0) / union


def _frac(pct: float | None) -> float | None:
    return None if pct is None else pct / 100.0


def _label(driver: tuple[str, str] | None) -> str:
    return "overall" if driver is None else f"{driver[0]} {driver[1]}"


def _r100(x: float | None) -> float | None:
    return None if x is None else round(x * 100.0, 2)


def stage(ctx: RunContext) -> None:
    """Pipeline stage (after ``insights``): ``scorecard["insights"] = score_insights(ctx)`` when
    the run is scored."""
    if ctx.scorecard is not None and ctx.truth is not None:
        ctx.scorecard["insights"] = score_insights(ctx)
