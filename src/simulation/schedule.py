"""Which unexpected events a world has: the config's explicit ones plus seeded random ones, sorted
and given stable ids.

Random events (the ``random_events:`` section) are drawn from one stream (``events.random``) and
placed on free days: no new event may touch the planned calendar or another event (± the minimum
gap). The event class decides the scope kind, the magnitude field and the sign policy of a drawn
magnitude (``magnitude_sign``); an event with a persistent profile (ramp, permanent) blocks the
days to the end of the period.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from shocklab.errors import InputError
from shocklab.seeding import rng

from . import calendar as cal
from .config import SimulationConfig
from .events import EventBase, get_event_type


def resolve_events(cfg: SimulationConfig) -> list[EventBase]:
    """Explicit events plus seeded random ones, sorted by start, with ids E01, E02 …"""
    events = list(cfg.events) + sample_random_events(cfg)
    events.sort(key=lambda e: (e.start, e.type, e.scope.label()))
    used = {e.id for e in events if e.id}
    n = 0
    out = []
    for ev in events:
        if ev.id is None:
            n += 1
            while f"E{n:02d}" in used:
                n += 1
            ev = ev.model_copy(update={"id": f"E{n:02d}"})
        out.append(ev)
    return out


def sample_random_events(cfg: SimulationConfig) -> list[EventBase]:
    spec = cfg.random_events
    if spec.count == 0:
        return []
    g = rng(cfg.seed, "events.random")
    D = cfg.period.days
    busy = np.zeros(D, bool)   # days no new event may touch (planned calendar, other events ± gap)

    def block(s: int, e: int) -> None:
        busy[max(0, s - spec.min_gap_days): min(D, e + spec.min_gap_days + 1)] = True

    for o in cal.calendar_occurrences(cfg):
        block((o["start"] - cfg.period.start).days, (o["end"] - cfg.period.start).days)
    for ev in cfg.events:
        block((ev.start - cfg.period.start).days, (ev.end - cfg.period.start).days)
    categories = list(cfg.products.categories)
    out: list[EventBase] = []
    for i in range(spec.count):
        etype = spec.types[int(g.integers(len(spec.types)))]
        cls = get_event_type(etype)
        dur = int(g.integers(spec.duration_days[0], spec.duration_days[1] + 1))
        mag = float(np.round(g.uniform(*spec.magnitude), 3))
        free = np.flatnonzero(~np.convolve(busy, np.ones(dur), mode="full")[dur - 1:D].astype(bool))
        free = free[free + dur <= D]
        if free.size == 0:
            raise InputError(f"random_events: no room for event {i + 1} of {spec.count}; "
                             "lower count, duration or min_gap_days")
        s = int(free[g.integers(free.size)])
        kinds = cls.allowed_scopes
        kind = cls.default_scope_kind if cls.default_scope_kind in kinds else kinds[0]
        scope: dict[str, Any] = {}
        if kind == "channel":
            scope = {"channel": list(cfg.channels)[int(g.integers(len(cfg.channels)))]}
        elif kind == "category":
            scope = {"category": categories[int(g.integers(len(categories)))]}
        params: dict[str, Any] = {"type": etype, "start": cfg.period.start + dt.timedelta(days=s),
                                  "duration_days": dur, "scope": scope}
        params[cls.magnitude_field] = cls.signed(g, mag)
        out.append(cls.model_validate(params))
        block(s, s + dur - 1 if not out[-1].persistent else D - 1)
    return out
