"""Random worlds: a ``world:`` section whose seed draws the store *and* its shocks.

A scenario with a ``world:`` section holds only ``scenario``, ``seed`` and ``world``;
``expand_world`` turns it into an ordinary, fully explicit simulation config (channels, countries,
categories, traffic shape, marketing calendar, events) before validation, so everything downstream —
engine, truth, manifest, ``truth/config.json`` — is the same as for a hand-written scenario.

Shocks are placed by *packing*, not rejection: the shocks and the planned calendar occurrences are
laid end to end in a random order after the warm-up with ``min_gap_days`` between them, and the
remaining slack is split at random among the gaps. A request whose worst case fits the shortest
period is therefore always feasible; one that does not is rejected at load, naming the keys.

Magnitudes (``world.magnitude``, see ``MagnitudeSpec``): ``percent`` draws the in-scope effect
log-uniform; ``visibility`` draws a target z instead and, once the shocks are placed, sets each
effect so that the exact null's z of the shock over its window on its scoped slice (the same
expectations and variances as truth/baseline_daily, ``noise_model.py``) meets it. Both modes take
one number per shock from the stream, so a seed's store, types, scopes and dates are the same in
both; the type's other draws (sign, lever, profile, discount …) are replayed from the saved
generator state with the final effect.

Randomness: one stream per concern (``world.store``, ``world.calendar``, ``world.shocks``), derived
from the master seed, so the same seed gives the same world byte for byte.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shocklab.catalogue import NS_YEARS
from shocklab.configio import validate
from shocklab.errors import InputError
from shocklab.seeding import rng

from .events import EVENT_TYPES, get_event_type
from .names import control_character

SCOPE_KINDS = ("all", "channel", "country", "channel_country", "category", "product")

CHANNEL_POOL = ("organic", "paid_search", "paid_social", "email", "direct", "referral", "affiliate",
                "display", "sms", "video")
COUNTRY_POOL = ("US", "GB", "DE", "FR", "CA", "AU", "NL", "ES", "IT", "SE", "PL", "JP")
# name, typical median price
CATEGORY_POOL = (("electronics", 120.0), ("fashion", 45.0), ("home", 60.0), ("beauty", 25.0),
                 ("sports", 55.0), ("books", 15.0), ("toys", 30.0), ("garden", 40.0),
                 ("grocery", 12.0), ("jewelry", 90.0))

Pair = tuple[int, int]
FPair = tuple[float, float]


class MagnitudeSpec(BaseModel):
    """How strong a shock is. ``percent``: the in-scope effect is log-uniform in ``effect``.
    ``visibility``: the exact null's z of the shock over its window on its scoped slice is
    log-uniform in ``z`` (from barely visible, about the sensitivity knob's threshold, to ~10x),
    the effect that gives it is clipped to ``effect``, and a scope too small for even the largest
    effect to be barely visible is widened (product -> its category -> all; channel x country ->
    its larger dimension -> all; channel, country, category -> all) where the type allows."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["percent", "visibility"] = "percent"
    z: FPair = Field(
        (3.3, 33.0),
        description="visibility: target z of the shock (exact null, best of 1/3/7-day windows), "
        "drawn log-uniform; 3.3 ~ the threshold of sensitivity 0.1",
    )

    @model_validator(mode="after")
    def _check(self) -> MagnitudeSpec:
        if not 0 < self.z[0] <= self.z[1] <= 1000:
            raise ValueError("z: need 0 < low <= high <= 1000")
        return self


class WorldSpec(BaseModel):
    """Ranges the seed draws from. Pairs are inclusive [low, high]."""

    model_config = ConfigDict(extra="forbid")

    start: dt.date = Field(
        dt.date(2024, 1, 1), description="earliest start; the start is drawn within a year of it"
    )
    period_days: Pair = (420, 548)
    warmup_days: Annotated[int, Field(ge=0, le=1000)] = 90
    end_margin_days: Annotated[int, Field(ge=0, le=120)] = 7
    channels: Pair = (2, 8)
    countries: Pair = (2, 10)
    categories: Pair = (3, 8)
    products: Pair = (150, 600)
    sessions_per_day: FPair = (2_000.0, 100_000.0)
    shocks: Pair = (12, 24)
    effect: FPair = Field(
        (0.05, 0.8),
        description="in-scope effect: drawn log-uniform (magnitude.mode percent) or the clip range "
        "of the visibility mode",
    )
    magnitude: MagnitudeSpec = Field(default_factory=lambda: MagnitudeSpec())
    types: list[str] = Field(default_factory=lambda: sorted(EVENT_TYPES))
    scope_kinds: list[str] = Field(default_factory=lambda: list(SCOPE_KINDS))
    calendar_entries: Pair = (2, 5)
    min_gap_days: Annotated[int, Field(ge=0, le=120)] = 4

    @model_validator(mode="after")
    def _check(self) -> WorldSpec:
        bounds = {
            "period_days": (60, 3650),
            "channels": (1, len(CHANNEL_POOL)),
            "countries": (1, len(COUNTRY_POOL)),
            "categories": (1, len(CATEGORY_POOL)),
            "products": (10, 200_000),
            "shocks": (0, 200),
            "calendar_entries": (0, 50),
        }
        for name, (lo, hi) in bounds.items():
            a, b = getattr(self, name)
            if not lo <= a <= b <= hi:
                raise ValueError(f"{name}: need {lo} <= low <= high <= {hi} (got [{a}, {b}])")
        if self.products[0] < self.categories[1]:
            raise ValueError("products: low must be at least categories' high")
        s0, s1 = self.sessions_per_day
        if not 10 <= s0 <= s1 <= 10_000_000:
            raise ValueError("sessions_per_day: need 10 <= low <= high <= 1e7")
        e0, e1 = self.effect
        if not 0.002 <= e0 <= e1 <= 0.95:
            # below 0.002 a type's magnitude rounds to 0 (3 places; fraud_orders halves it), and
            # the error named events[0].extra_orders_pct, a key the request does not have
            raise ValueError("effect: need 0.002 <= low <= high <= 0.95 (a smaller effect "
                             "rounds to no shock)")
        unknown = [t for t in self.types if t not in EVENT_TYPES]
        if unknown or not self.types:
            raise ValueError(
                f"types: unknown event type {unknown[0]!r} "
                f"(known: {', '.join(sorted(EVENT_TYPES))})"
                if unknown
                else "types: at least one event type is required"
            )
        bad = [k for k in self.scope_kinds if k not in SCOPE_KINDS]
        if bad or not self.scope_kinds:
            raise ValueError(
                f"scope_kinds: unknown kind {bad[0]!r} (known: {', '.join(SCOPE_KINDS)})"
                if bad
                else "scope_kinds: at least one kind is required"
            )
        orphan = [
            t
            for t in self.types
            if not set(get_event_type(t).allowed_scopes) & set(self.scope_kinds)
        ]
        if orphan:
            raise ValueError(
                f"types: {orphan[0]!r} allows none of scope_kinds "
                f"(it allows {', '.join(get_event_type(orphan[0]).allowed_scopes)})"
            )
        from .config import Customers  # the drawn world keeps its default signup ages

        first = self.start - dt.timedelta(days=Customers().initial_max_age_days)
        last = self.start + dt.timedelta(days=364 + self.period_days[1] - 1)
        if first.year < NS_YEARS[0] or last.year > NS_YEARS[1]:
            # a world of 1600 was written and then refused by the analysis; one near 2261 was an
            # internal error (the drawn period failed SimulationConfig's check)
            raise ValueError(
                f"start: {self.start} draws dates from {first} (the initial customers' signups) "
                f"to {last}; the analysis reads dates from {NS_YEARS[0]} to {NS_YEARS[1]}")
        need, room = (
            self.worst_case_days(),
            self.period_days[0] - self.warmup_days - self.end_margin_days,
        )
        if need > room:
            raise ValueError(
                f"shocks, calendar and gaps need up to {need} days after the warm-up but the "
                f"shortest period leaves {room}; lower shocks, calendar_entries, min_gap_days or "
                "warmup_days, or raise period_days"
            )
        return self

    def worst_case_days(self) -> int:
        """Longest timeline the packing may need: the longest shocks the type cycle can draw,
        the longest calendar occurrences and the gaps between all of them."""
        n = self.shocks[1]
        per_type = math.ceil(n / len(self.types)) if n else 0
        longest = sorted(
            (get_event_type(t).world_duration_days[1] for t in self.types for _ in range(per_type)),
            reverse=True,
        )[:n]
        items = n + self.calendar_entries[1]
        return sum(longest) + 7 * self.calendar_entries[1] + self.min_gap_days * max(items - 1, 0)


class WorldScenario(BaseModel):
    """A random-world scenario file: only these three keys (schema for editors and the tests)."""

    model_config = ConfigDict(extra="forbid")

    scenario: str = "random_world"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 42
    world: WorldSpec = Field(default_factory=WorldSpec)

    @field_validator("scenario")
    @classmethod
    def _no_control_character(cls, v: str) -> str:
        """SimulationConfig refuses it too, but the store is drawn first (and validated while
        drawn): a newline in a random world's name was an internal error, exit 3."""
        if why := control_character(v):
            raise ValueError(f"{v!r} {why}; choose another name")
        return v


def expand_world(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """The explicit simulation config drawn from ``raw['world']`` and ``raw['seed']``."""
    extra = sorted(set(raw) - {"scenario", "seed", "world"})
    if extra:
        raise InputError(
            f"{source}: {extra[0]}: a config with a world: section draws the whole store; "
            "only scenario, seed and world may be given"
        )
    scen = validate(WorldScenario, {**raw, "world": raw.get("world") or {}}, source)
    spec, seed = scen.world, scen.seed
    store = draw_store(spec, seed)
    store["scenario"] = scen.scenario
    store["seed"] = seed
    store["calendar"], store["events"] = draw_timeline(spec, seed, store)
    return store


# ------------------------------------------------------------------------------------------ store
def _ints(g: np.random.Generator, pair: Pair) -> int:
    return int(g.integers(pair[0], pair[1] + 1))


def _log_uniform(g: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(g.uniform(np.log(lo), np.log(hi))))


def _weights(g: np.random.Generator, n: int, conc: float, floor: float) -> list[float]:
    w = np.maximum(g.dirichlet(np.full(n, conc)), floor)
    return [round(float(x), 4) for x in w / w.sum()]


def draw_store(spec: WorldSpec, seed: int) -> dict[str, Any]:
    """Store, traffic shape and customer base (everything but the calendar and the shocks)."""
    g = rng(seed, "world.store")
    days = _ints(g, spec.period_days)
    start = spec.start + dt.timedelta(days=int(g.integers(0, 365)))
    ch_names = [
        CHANNEL_POOL[i]
        for i in sorted(g.choice(len(CHANNEL_POOL), _ints(g, spec.channels), replace=False))
    ]
    co_names = [
        COUNTRY_POOL[i]
        for i in sorted(g.choice(len(COUNTRY_POOL), _ints(g, spec.countries), replace=False))
    ]
    cat_idx = sorted(g.choice(len(CATEGORY_POOL), _ints(g, spec.categories), replace=False))
    shares = _weights(g, len(ch_names), 2.0, 0.03)
    channels = {
        name: {
            "share": shares[i],
            "conversion": round(_log_uniform(g, 0.008, 0.05), 4),
            "new_customer_share": round(float(g.uniform(0.05, 0.7)), 3),
        }
        for i, name in enumerate(ch_names)
    }
    countries = dict(zip(co_names, _weights(g, len(co_names), 1.5, 0.02), strict=True))
    cat_w = _weights(g, len(cat_idx), 3.0, 0.04)
    categories = {
        CATEGORY_POOL[j][0]: {
            "weight": cat_w[i],
            "price_median": round(CATEGORY_POOL[j][1] * float(np.exp(g.uniform(-0.3, 0.3))), 2),
            "price_sigma": round(float(g.uniform(0.3, 0.6)), 3),
            "cost_ratio": round(float(g.uniform(0.4, 0.7)), 3),
        }
        for i, j in enumerate(cat_idx)
    }
    base = round(_log_uniform(g, *spec.sessions_per_day), 1)
    weekend = float(g.uniform(-0.15, 0.2))   # weekend bump (negative for B2B-like stores)
    weekly = 1.0 + np.array([0, 0, 0, 0, 0.3, 1.0, 0.8]) * weekend + g.normal(0, 0.02, 7)
    return {
        "period": {
            "start": start.isoformat(),
            "end": (start + dt.timedelta(days=days - 1)).isoformat(),
        },
        "channels": channels,
        "countries": countries,
        "traffic": {
            "base_sessions": base,
            "trend_annual": round(float(g.uniform(-0.1, 0.35)), 3),
            "weekly": [round(float(x), 3) for x in np.clip(weekly, 0.5, 1.6)],
            "yearly_amplitude": round(float(g.uniform(0.0, 0.3)), 3),
            "yearly_peak_doy": int(g.integers(1, 366)),
            "day_noise_cv": round(float(g.uniform(0.02, 0.06)), 3),
            "cell_dispersion": round(float(g.uniform(0.01, 0.05)), 3),
        },
        "conversion": {
            "seasonal_amplitude": round(float(g.uniform(0.0, 0.1)), 3),
            "day_noise_cv": round(float(g.uniform(0.01, 0.04)), 3),
        },
        "products": {
            "count": _ints(g, spec.products),
            "zipf_exponent": round(float(g.uniform(0.8, 1.3)), 3),
            "categories": categories,
        },
        "basket": {
            "items_mean": round(float(g.uniform(1.2, 2.5)), 2),
            "quantity_mean": round(float(g.uniform(1.05, 1.5)), 2),
        },
        "customers": {
            "initial": int(np.clip(base * g.uniform(0.3, 1.0), 1000, 50_000)),
            "mean_lifetime_days": round(float(g.uniform(200, 700)), 1),
        },
    }


# --------------------------------------------------------------------------------------- timeline
def _shock(
    g: np.random.Generator,
    etype: str,
    kind: str,
    store: dict[str, Any],
    top_products: np.ndarray,
    effect: float,
    state: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], int]:
    """One shock of ``etype`` on a ``kind`` scope with target in-scope effect ``effect``; returns
    (event mapping without start, window length). ``state`` (visibility mode) receives the
    generator state just before the type's ``world_params``."""
    lo, hi = get_event_type(etype).world_duration_days
    dur = int(g.integers(lo, hi + 1))
    ch, co, cats = (
        list(store["channels"]),
        list(store["countries"]),
        list(store["products"]["categories"]),
    )
    ch_w = np.array([c["share"] for c in store["channels"].values()])
    co_w = np.array(list(store["countries"].values()))
    scope: dict[str, Any] = {}
    if kind == "channel_country":
        # a cell drawn by its traffic share, so a scoped shock has orders to act on
        cell = np.outer(ch_w, co_w).ravel()
        i, j = divmod(int(g.choice(cell.size, p=cell / cell.sum())), len(co))
        scope.update(channel=ch[i], country=co[j])
    elif kind in ("channel", "country"):
        names, w = (ch, ch_w) if kind == "channel" else (co, co_w)
        w = np.sqrt(w)   # favour big slices, but not only them
        scope[kind] = names[int(g.choice(len(names), p=w / w.sum()))]
    if kind == "category":
        scope["category"] = cats[int(g.integers(len(cats)))]
    if kind == "product":
        scope["product"] = int(top_products[int(g.integers(top_products.size))]) + 1
    ev: dict[str, Any] = {"type": etype, "duration_days": dur, "scope": scope}
    if state is not None:  # visibility mode: world_params is replayed with the final effect
        state.update(g.bit_generator.state)
    ev.update(get_event_type(etype).world_params(g, effect, kind))
    return ev, dur


def draw_timeline(
    spec: WorldSpec, seed: int, store: dict[str, Any]
) -> tuple[list[dict], list[dict]]:
    """(calendar entries, events) placed by packing after the warm-up."""
    from .config import SimulationConfig
    from .products import build_catalogue

    gs = rng(seed, "world.shocks")
    gc = rng(seed, "world.calendar")
    n = _ints(gs, spec.shocks)
    # every type once per cycle (random order), so with n >= len(types) each appears in every world
    cycles = [
        gs.permutation(len(spec.types)) for _ in range(math.ceil(n / len(spec.types)) if n else 0)
    ]
    types = [spec.types[i] for i in np.concatenate(cycles)[:n]] if n else []
    kinds_used = dict.fromkeys(spec.scope_kinds, 0)
    cat_cfg = SimulationConfig.model_validate({**store, "seed": seed})
    popularity = build_catalogue(cat_cfg).popularity
    top_products = np.argsort(-popularity, kind="stable")[:20]
    shocks = []
    visibility = spec.magnitude.mode == "visibility"
    targets: list[tuple[float, dict[str, Any]]] = []   # visibility: (target z, generator state)
    for etype in types:
        allowed = [k for k in get_event_type(etype).allowed_scopes if k in kinds_used]
        least = min(kinds_used[k] for k in allowed)
        pick = [k for k in allowed if kinds_used[k] == least]   # balance the scope kinds
        kind = pick[int(gs.integers(len(pick)))]
        kinds_used[kind] += 1
        if visibility:
            z, state = _log_uniform(gs, *spec.magnitude.z), {}
            shocks.append(_shock(gs, etype, kind, store, top_products,
                                 math.sqrt(spec.effect[0] * spec.effect[1]), state))
            targets.append((z, state))
        else:
            shocks.append(
                _shock(gs, etype, kind, store, top_products, _log_uniform(gs, *spec.effect))
            )

    calendar = []
    for i in range(_ints(gc, spec.calendar_entries)):
        kind = "holiday" if gc.random() < 0.4 else "campaign"
        entry = {
            "name": f"{kind}_{i + 1}",
            "kind": kind,
            "duration_days": int(gc.integers(1, 8)),
            "traffic_uplift": round(float(gc.uniform(0.1, 1.0)), 3),
            "conversion_uplift": round(float(gc.uniform(0.0, 0.3)), 3),
        }
        if kind == "campaign" and gc.random() < 0.4:
            chans = list(store["channels"])
            entry["channel"] = chans[int(gc.integers(len(chans)))]
        calendar.append(entry)

    # packing: items end to end in random order, slack split at random among the n + 1 gaps
    lengths = [d for _, d in shocks] + [c["duration_days"] for c in calendar]
    n_items = len(lengths)
    start = dt.date.fromisoformat(store["period"]["start"])
    days = (dt.date.fromisoformat(store["period"]["end"]) - start).days + 1
    room = days - spec.warmup_days - spec.end_margin_days
    slack = room - sum(lengths) - spec.min_gap_days * max(n_items - 1, 0)
    if slack < 0:  # cannot happen when WorldSpec validated (worst case checked); a bug otherwise
        raise AssertionError(f"world packing: {-slack} days short")
    if n_items == 0:
        return [], []
    extra = gs.multinomial(slack, gs.dirichlet(np.ones(n_items + 1)))
    order = gs.permutation(n_items)
    t = spec.warmup_days + int(extra[0])
    events: list[dict[str, Any]] = [{} for _ in shocks]
    for pos, item in enumerate(order):
        when = (start + dt.timedelta(days=t)).isoformat()
        if item < len(shocks):
            events[item] = {**shocks[item][0], "start": when}
        else:
            calendar[item - len(shocks)]["dates"] = [when]
        t += lengths[item] + spec.min_gap_days + int(extra[pos + 1])
    if visibility and events:
        from .visibility import fit_visibility

        events = fit_visibility(spec, seed, store, calendar, events, targets)
    events.sort(key=lambda e: e["start"])
    return calendar, events


# ------------------------------------------------------------------------ visibility magnitudes
WINDOWS = (1, 3, 7)   # the oracle's windows (evaluation/oracle.py: 1 day and trailing 3, 7)
