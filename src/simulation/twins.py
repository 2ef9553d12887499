"""Counterfactual twins and the truth they imply: for every unexpected event, a run without it (but
with every other event still acting in its window), and the record of its realized effect, actual
vs twin, overall and inside its scope; plus the expected effect of each planned calendar
occurrence. Records are ``shocklab.truth.TruthEvent`` models, the format evaluation reads back.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from shocklab.truth import SliceEffects, TruthEvent

from . import calendar as cal
from .baseline import expected_order_value
from .draw import Run, Setup, lever_days, levers_for, simulate_run, splice_days
from .events import EventBase, Levers
from .events.base import Grid

Twins = dict[frozenset[str], Run]   # runs keyed by the ids of the events acting in them


def window_effects(a: dict[str, np.ndarray], t: dict[str, np.ndarray], s: int,
                   e: int) -> dict[str, float]:
    """Relative change of each KPI summed over days ``s..e``, actual ``a`` vs twin ``t``.

    With ``list_value`` (product and category masks, ``Run.daily``) also ``price``: the relative
    change of list value / units (the list price per unit sold), omitted when the actual or the
    twin sold no unit of the scope in the window (a stockout: no price to compare)."""
    sa = {k: float(np.nansum(v[s:e + 1])) for k, v in a.items()}
    st = {k: float(np.nansum(v[s:e + 1])) for k, v in t.items()}

    def rel(x: float, y: float) -> float:
        return round((x - y) / y, 4) if y else 0.0

    out = {k: rel(sa[k], st[k]) for k in ("orders", "revenue", "units") if k in sa}
    if not np.isnan(a["sessions"][s]):
        out["sessions"] = rel(sa["sessions"], st["sessions"])
        out["conversion_rate"] = rel(sa["orders"] / sa["sessions"] if sa["sessions"] else 0.0,
                                     st["orders"] / st["sessions"] if st["sessions"] else 0.0)
    out["aov"] = rel(sa["revenue"] / sa["orders"] if sa["orders"] else 0.0,
                     st["revenue"] / st["orders"] if st["orders"] else 0.0)
    if "list_value" in sa and sa["units"] > 0 and st["units"] > 0:
        out["price"] = rel(sa["list_value"] / sa["units"], st["list_value"] / st["units"])
    return dict(sorted(out.items()))


def active_span(ev: EventBase, n_days: int, start: dt.date) -> tuple[int, int]:
    """Days (first, last) the event acts on the world: its window, or to the end of the period
    when its effect outlasts the window (persistent profile or a lasting type)."""
    s = (ev.start - start).days
    return s, (n_days - 1 if ev.outlasts_window else s + ev.duration_days - 1)


def _twin_of(setup: Setup, events: list[EventBase]) -> dict[str, frozenset[str]]:
    """Event id → ids of the events its twin keeps: every other event still acting in its
    window."""
    D = setup.shape[0]
    start = setup.cfg.period.start
    span = {ev.id: active_span(ev, D, start) for ev in events}
    out = {}
    for ev in events:
        s, e = span[ev.id][0], (ev.end - start).days
        out[ev.id] = frozenset(
            o.id for o in events if o is not ev and span[o.id][0] <= e and span[o.id][1] >= s
        )
    return out


def simulate_twins(setup: Setup, events: list[EventBase],
                   actual: tuple[Run, Levers] | None = None) -> Twins:
    """Every twin run the truth needs (the empty key first: the world with no event). They
    depend on the setup and the events only, not on the actual run. ``actual``: the actual run
    and its levers; a twin then draws only the days on which its levers differ from the
    actual's and takes the actual's orders on the others (the same orders: a day's orders
    depend on that day's levers only), instead of drawing the whole period again."""
    runs: Twins = {}
    for others in [frozenset(), *_twin_of(setup, events).values()]:
        if others not in runs:
            acting = [o for o in events if o.id in others]
            runs[others] = _twin(setup, levers_for(setup, acting), actual)
    return runs


def _twin(setup: Setup, levers: Levers, actual: tuple[Run, Levers] | None) -> Run:
    if actual is None:
        return simulate_run(setup, levers, with_customers=False)
    run, actual_levers = actual
    days = lever_days(levers, actual_levers)
    return splice_days(run, simulate_run(setup, levers, False, days=days), days)


def container_masks(ev: EventBase, grid: Grid) -> list[tuple[str, str, dict[str, np.ndarray]]]:
    """(dimension, segment, mask) of each watched slice that contains the event's scope without
    being it or the store: a channel x country scope's channel and country (``cell_mask``), a
    product scope's category (``product_mask``)."""
    sc = ev.scope
    if sc.kind == "channel_country":
        ch = np.array([c == sc.channel for c in grid.channels])
        co = np.array([c == sc.country for c in grid.countries])
        return [("channel", str(sc.channel), {"cell_mask": ch[:, None] & np.ones_like(co)[None]}),
                ("country", str(sc.country), {"cell_mask": np.ones_like(ch)[:, None] & co[None]})]
    if sc.kind == "product":
        cat = grid.product_category[sc.product - 1]
        return [("category", str(cat), {"product_mask": grid.product_category == cat})]
    return []


def unexpected_truth(
    setup: Setup, events: list[EventBase], actual: Run, runs: Twins | None = None
) -> tuple[list[TruthEvent], Twins]:
    """One truth record per event, and every twin run (the empty key: the world with no event;
    ``runs``: the twins already simulated, ``simulate_twins``)."""
    D = setup.shape[0]
    start = setup.cfg.period.start
    runs = simulate_twins(setup, events) if runs is None else runs
    overall_a = actual.daily(D)
    every = np.ones(len(setup.grid.product_category), bool)
    lines_a = actual.daily(D, product_mask=every)   # every line: the store's list price per unit
    truth: list[TruthEvent] = []
    twin_of = _twin_of(setup, events)
    for ev in events:
        s, e = (ev.start - start).days, (ev.end - start).days
        twin = runs[twin_of[ev.id]]
        kpi, direction = ev.kpi_direction()
        if ev.scope.kind in ("category", "product"):
            pm = ev.product_mask(setup.grid)
            scoped = window_effects(
                actual.daily(D, product_mask=pm), twin.daily(D, product_mask=pm), s, e
            )
        else:
            cm = ev.cell_mask(setup.grid)
            scoped = window_effects(
                actual.daily(D, cell_mask=cm), twin.daily(D, cell_mask=cm), s, e
            )
        containers = [
            SliceEffects(dimension=dim, segment=seg, effects=window_effects(
                actual.daily(D, **mask), twin.daily(D, **mask), s, e))
            for dim, seg, mask in container_masks(ev, setup.grid)
        ]
        effects = window_effects(overall_a, twin.daily(D), s, e)
        price = window_effects(lines_a, twin.daily(D, product_mask=every), s, e).get("price")
        if price is not None:   # the store's list price per unit sold (a store-wide pricing error)
            effects = dict(sorted({**effects, "price": price}.items()))
            if ev.scope.kind == "all":
                scoped = dict(sorted({**scoped, "price": price}.items()))
        truth.append(
            TruthEvent(
                event_id=ev.id,
                type=ev.type,
                expected=False,
                start=ev.start,
                end=ev.end,
                profile=ev.profile,
                persistent=ev.persistent,
                scope=ev.scope.as_dict(),
                params=ev.params(),
                effects=effects,
                scope_effects=scoped,
                container_effects=containers,
                primary_kpi=kpi,
                primary_direction=direction,
            )
        )
    return truth, runs


def planned_truth(setup: Setup) -> list[TruthEvent]:
    """Planned calendar occurrences with their expected effect (baseline with vs without them)."""
    cfg = setup.cfg
    value, _ = expected_order_value(cfg, setup.catalogue)
    out = []
    channels = list(cfg.channels)
    for o in cal.calendar_occurrences(cfg):
        s, e = (o["start"] - cfg.period.start).days, (o["end"] - cfg.period.start).days
        cm = (
            np.ones(len(channels), bool)
            if not o["scope"]
            else np.array([c == o["scope"]["channel"] for c in channels])
        )
        lam_wo, conv_wo = setup.lam0.copy(), setup.conv0.copy()
        lam_wo[s : e + 1, cm] /= 1 + o["params"]["traffic_uplift"]
        conv_wo[s : e + 1, cm] /= 1 + o["params"]["conversion_uplift"]
        a = {
            "sessions": setup.lam0.sum(axis=(1, 2)),
            "orders": (setup.lam0 * setup.conv0).sum(axis=(1, 2)),
        }
        t = {"sessions": lam_wo.sum(axis=(1, 2)), "orders": (lam_wo * conv_wo).sum(axis=(1, 2))}
        for d in (a, t):
            d["revenue"] = d["orders"] * value
        eff = window_effects(a, t, s, e)
        primary = (
            "sessions"
            if abs(eff.get("sessions", 0)) >= abs(eff.get("conversion_rate", 0))
            else "conversion_rate"
        )
        out.append(
            TruthEvent(
                event_id=o["event_id"],
                type=o["kind"],
                name=o["name"],
                expected=True,
                start=o["start"],
                end=o["end"],
                profile="step",
                persistent=False,
                scope=o["scope"],
                params=o["params"],
                effects=eff,
                scope_effects={},
                primary_kpi=primary if eff.get(primary, 0) else "orders",
                primary_direction="up" if eff.get(primary, 0) >= 0 else "down",
            )
        )
    return out


def truth_records(truth: list[TruthEvent]) -> list[dict]:
    """JSON-ready records, as truth/events.json stores them (fields left unset are omitted)."""
    return [t.model_dump(mode="json", exclude_none=True) for t in truth]
