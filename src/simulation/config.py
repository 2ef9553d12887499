"""Simulation config schema (pydantic v2): every number of the world lives in YAML, validated once.

Cross-references (an event naming a channel, country or category that is not configured, an event
outside the period) are checked after field validation by ``check_references``, which names the
YAML path of the offending value.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shocklab.catalogue import NS_YEARS
from shocklab.configio import apply_overrides, load_yaml, validate
from shocklab.errors import InputError
from shocklab.hashing import sha256_json

from .events import EVENT_TYPES, EventConfig
from .events.pricing_error import PricingError
from .names import control_character, why_bad_name

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# A relative weight (channel shares, country weights, category weights, the weekly profile,
# discount probabilities; the hour profile up to MAX_WEIGHT): each set is divided by its sum, so
# only ratios matter. Bounded so that every sum, and every channel x country cell's share x
# conversion x country weight, stays finite and positive: two 1e308 shares summed to inf (a world
# of 0 sessions, exit 0, or numpy failing, exit 3); 5e-324 weights underflowed to a 0 sum.
MIN_WEIGHT, MAX_WEIGHT = 1e-6, 1e6
Weight = Annotated[float, Field(ge=MIN_WEIGHT, le=MAX_WEIGHT)]
# The dearest list price a category may draw (``products.build_catalogue``: the median times
# exp(price_sigma x z), z clipped to +-PRICE_Z): an order would need a million units of it to
# pass the 1e12 above which the analysis refuses an amount (a price_median of 1e20 was written,
# then refused by run_analysis; 1e200 overflowed the noise model, exit 3).
MAX_LIST_PRICE = 1e6
PRICE_Z = 6.0


class Strict(BaseModel):
    # allow_inf_nan=False: ``.inf`` / ``.nan`` in YAML are rejected by every float field
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Period(Strict):
    start: dt.date = dt.date(2024, 1, 1)
    end: dt.date = dt.date(2025, 12, 31)

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        if (self.end - self.start).days + 1 > 3660:
            raise ValueError("period longer than 10 years is not supported")
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class Channel(Strict):
    share: Weight = Field(description="share of sessions (normalized over channels)")
    conversion: Annotated[float, Field(ge=MIN_WEIGHT, lt=0.5)] = Field(
        description="orders per human session"
    )
    new_customer_share: Fraction = Field(
        description="share of this channel's orders placed by first-time customers"
    )


class Traffic(Strict):
    base_sessions: Annotated[float, Field(gt=0.0, le=1e9)] = 25_000.0
    trend_annual: Annotated[float, Field(ge=-0.9, le=5.0)] = 0.12
    weekly: list[Weight] = Field(
        default=[1.0, 0.98, 0.97, 0.99, 1.04, 1.10, 1.08], min_length=7, max_length=7
    )
    yearly_amplitude: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.18
    yearly_peak_doy: Annotated[int, Field(ge=1, le=366)] = 340
    day_noise_cv: Annotated[float, Field(ge=0.0, le=1.0)] = 0.03
    cell_dispersion: Annotated[float, Field(ge=0.0, le=2.0)] = 0.02


class Conversion(Strict):
    seasonal_amplitude: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.08
    day_noise_cv: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02


class Category(Strict):
    weight: Weight
    price_median: Annotated[float, Field(gt=0.0, le=MAX_LIST_PRICE)]
    price_sigma: Annotated[float, Field(ge=0.0, le=3.0)] = 0.5
    cost_ratio: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.55

    @model_validator(mode="after")
    def _priced(self) -> Category:
        dearest = self.price_median * math.exp(PRICE_Z * self.price_sigma)
        if dearest > MAX_LIST_PRICE:
            raise ValueError(
                f"price_median: {self.price_median:g} with price_sigma {self.price_sigma:g} lists "
                f"products at up to {dearest:,.0f} (the median x exp({PRICE_Z:g} x price_sigma)), "
                f"above {MAX_LIST_PRICE:,.0f}; lower price_median or price_sigma")
        return self


class Products(Strict):
    count: Annotated[int, Field(ge=1, le=200_000)] = 500
    zipf_exponent: Annotated[float, Field(ge=0.0, le=4.0)] = 1.05
    categories: dict[str, Category]

    @model_validator(mode="after")
    def _enough(self) -> Products:
        if not self.categories:
            raise ValueError("at least one category is required")
        if self.count < len(self.categories):
            raise ValueError(
                f"count ({self.count}) is smaller than the number of categories "
                f"({len(self.categories)})"
            )
        return self


class Basket(Strict):
    items_mean: Annotated[float, Field(ge=1.0, le=20.0)] = 1.7
    quantity_mean: Annotated[float, Field(ge=1.0, le=20.0)] = 1.25
    discount_levels: list[Fraction] = Field(default=[0.0, 0.1, 0.2], min_length=1)
    discount_probs: list[Weight] = Field(default=[0.82, 0.13, 0.05], min_length=1)
    cancel_rate: Fraction = 0.03
    return_rate: Fraction = 0.05
    hour_profile: list[Annotated[float, Field(ge=0.0, le=MAX_WEIGHT)]] = Field(
        default=[0.6, 0.4, 0.3, 0.2, 0.2, 0.3, 0.6, 1.0, 1.4, 1.6, 1.7, 1.8,
                 1.9, 1.9, 1.8, 1.7, 1.7, 1.8, 2.0, 2.2, 2.3, 2.0, 1.5, 1.0],
        min_length=24, max_length=24)

    @model_validator(mode="after")
    def _consistent(self) -> Basket:
        if len(self.discount_levels) != len(self.discount_probs):
            raise ValueError("discount_levels and discount_probs must have the same length")
        if self.cancel_rate + self.return_rate > 1:
            raise ValueError("cancel_rate + return_rate must not exceed 1")
        if sum(self.hour_profile) <= 0:
            raise ValueError("hour_profile must have a positive entry")
        return self


class Customers(Strict):
    initial: Annotated[int, Field(ge=0, le=10_000_000)] = 20_000
    rate_shape: Annotated[float, Field(gt=0.0, le=100.0)] = 1.2
    mean_lifetime_days: Annotated[float, Field(gt=0.0, le=36_500.0)] = 420.0
    initial_max_age_days: Annotated[int, Field(ge=1, le=3650)] = 720


class CalendarEntry(Strict):
    """A planned (expected) event: holiday or campaign. Known to the business, so it is written to
    the observable marketing_calendar and kept on in the counterfactual twin."""

    name: str = Field(min_length=1)
    kind: Literal["holiday", "campaign"]
    dates: list[dt.date] = Field(min_length=1, description="first day of each occurrence")
    duration_days: Annotated[int, Field(ge=1, le=60)] = 1
    traffic_uplift: Annotated[float, Field(ge=-0.9, le=10.0)] = 0.0
    conversion_uplift: Annotated[float, Field(ge=-0.9, le=10.0)] = 0.0
    channel: str | None = Field(
        default=None, description="limit to one channel (campaigns); all if omitted"
    )


class RandomEvents(Strict):
    count: Annotated[int, Field(ge=0, le=500)] = 0
    types: list[str] = Field(default_factory=lambda: sorted(EVENT_TYPES))
    magnitude: tuple[Fraction, Fraction] = (0.2, 0.5)
    duration_days: tuple[
        Annotated[int, Field(ge=1, le=120)], Annotated[int, Field(ge=1, le=120)]
    ] = (1, 5)
    min_gap_days: Annotated[int, Field(ge=0, le=365)] = 14

    @model_validator(mode="after")
    def _ranges(self) -> RandomEvents:
        if self.magnitude[0] > self.magnitude[1]:
            raise ValueError("magnitude: low is above high")
        if self.duration_days[0] > self.duration_days[1]:
            raise ValueError("duration_days: low is above high")
        unknown = [t for t in self.types if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown event type {unknown[0]!r} (known: {', '.join(sorted(EVENT_TYPES))})"
            )
        if self.count:
            self._drawable()
        return self

    def _drawable(self) -> None:
        """Every magnitude the draw can give (rounded to 3 places, sign policy applied) is valid
        for every type: the bounds are intervals, so the ends decide. Without this a draw outside
        a type's bounds (0; 1 for pricing_error's price_drop_pct < 1; -0.96 for level_shift's
        change_pct >= -0.95) was an internal error of the simulation, for some seeds only."""
        if not self.types:
            raise ValueError("types: at least one event type is required when count > 0")
        ends = [round(m, 3) for m in self.magnitude]
        if ends[0] <= 0:
            raise ValueError(f"magnitude: low {self.magnitude[0]} draws magnitudes that round to "
                             "0 (no event); need low >= 0.001")
        for name in self.types:
            cls = EVENT_TYPES[name]
            field = cls.model_fields[cls.magnitude_field]
            check = TypeAdapter(Annotated[(float, *field.metadata)])
            signs = (1, -1) if cls.magnitude_sign == "either" else (1,)
            for value in (sign * m for m in ends for sign in signs):
                try:
                    check.validate_python(value)
                except ValidationError as exc:
                    raise ValueError(
                        f"magnitude: {value} would be drawn for {name}, whose "
                        f"{cls.magnitude_field} must be {_bounds(exc)}; narrow magnitude or "
                        "drop the type from types") from None


def _bounds(exc: ValidationError) -> str:
    """'less than 1' from pydantic's 'Input should be less than 1'."""
    return exc.errors()[0]["msg"].removeprefix("Input should be ")


class SimulationConfig(Strict):
    scenario: str = "default"
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 42
    period: Period = Field(default_factory=Period)
    channels: dict[str, Channel]
    countries: dict[str, Weight] = Field(description="country code -> traffic weight")
    traffic: Traffic = Field(default_factory=Traffic)
    conversion: Conversion = Field(default_factory=Conversion)
    products: Products
    basket: Basket = Field(default_factory=Basket)
    customers: Customers = Field(default_factory=Customers)
    calendar: list[CalendarEntry] = Field(default_factory=list)
    events: list[EventConfig] = Field(default_factory=list)
    random_events: RandomEvents = Field(default_factory=RandomEvents)

    @model_validator(mode="after")
    def _in_readable_years(self) -> SimulationConfig:
        """Every date written (orders, traffic, and the initial customers' signups up to
        ``initial_max_age_days`` before the start) within ``NS_YEARS``: a world of 1600 was
        written, then refused by the analysis ("out of range")."""
        lo, hi = dt.date(NS_YEARS[0], 1, 1), dt.date(NS_YEARS[1], 12, 31)
        if self.period.end > hi:
            raise ValueError(f"period: end {self.period.end} is after {hi} (the analysis reads "
                             f"dates from {NS_YEARS[0]} to {NS_YEARS[1]})")
        first = self.period.start - dt.timedelta(
            days=self.customers.initial_max_age_days if self.customers.initial else 0)
        if first < lo:
            raise ValueError(f"period: start {self.period.start} is too early: the initial "
                             "customers sign up as early as customers.initial_max_age_days "
                             f"({self.customers.initial_max_age_days}) before it, on {first}, "
                             f"and the analysis reads dates from {lo}")
        return self

    @model_validator(mode="after")
    def _non_empty(self) -> SimulationConfig:
        if not self.channels:
            raise ValueError("channels: at least one channel is required")
        if not self.countries:
            raise ValueError("countries: at least one country is required")
        named = [("channels", n) for n in self.channels]
        named += [("countries", n) for n in self.countries]
        named += [("products.categories", n) for n in self.products.categories]
        named += [(f"calendar[{i}].name", e.name) for i, e in enumerate(self.calendar)]
        for key, name in named:
            if why := why_bad_name(name, scoped=not key.startswith("calendar")):
                raise ValueError(f"{key}: {name!r} {why}; choose another name")
        if why := control_character(self.scenario):   # it heads insights.md (a newline: a heading)
            raise ValueError(f"scenario: {self.scenario!r} {why}; choose another name")
        return self


def _names(d: dict[str, Any]) -> str:
    return ", ".join(d)


def _check_occurrences(entry: CalendarEntry, i: int, fail) -> None:
    """One entry's occurrences must not share a day: its uplift would be applied twice there
    (``calendar_multipliers`` multiplies them) and the day listed twice in the observable
    marketing calendar. A date written twice is the common case (a copy-paste)."""
    firsts = sorted(entry.dates)
    for a, b in zip(firsts, firsts[1:], strict=False):
        if a == b:
            fail(f"calendar[{i}].dates", f"{a} is listed twice")
        if (b - a).days < entry.duration_days:
            fail(f"calendar[{i}].dates", f"the occurrences starting {a} and {b} overlap (each "
                 f"lasts duration_days {entry.duration_days}): the uplift would apply twice on "
                 "the shared days; two campaigns that really stack are two entries")


def check_references(cfg: SimulationConfig, source: str) -> None:
    """Raise InputError naming the YAML path of a reference to something not configured."""
    known = {"channel": cfg.channels, "country": cfg.countries, "category": cfg.products.categories}
    plural = {"channel": "channel", "country": "country", "category": "category"}

    def fail(path: str, msg: str) -> None:
        raise InputError(f"{source}: {path}: {msg}")

    for i, entry in enumerate(cfg.calendar):
        if entry.channel is not None and entry.channel not in cfg.channels:
            fail(
                f"calendar[{i}].channel",
                f"{entry.channel!r} is not a configured channel ({_names(cfg.channels)})",
            )
        for j, day in enumerate(entry.dates):
            if day < cfg.period.start or day > cfg.period.end:
                fail(
                    f"calendar[{i}].dates[{j}]",
                    f"{day} is outside the period {cfg.period.start} … {cfg.period.end}",
                )
        _check_occurrences(entry, i, fail)
    ids: dict[str, int] = {}
    for i, ev in enumerate(cfg.events):
        if ev.id is not None:
            _check_id(ev.id, i, ids, fail)
        for j, other in enumerate(cfg.events[:i]):
            if other.type == ev.type and other.scope == ev.scope and (
                    other.start <= ev.end and ev.start <= other.end):
                fail(f"events[{i}].start",
                     f"{ev.type} on {ev.scope.label()} {ev.start} … {ev.end} overlaps events[{j}] "
                     f"({other.start} … {other.end}), the same type on the same scope: the twin of "
                     "each keeps the other, so the truth credits one with little or nothing; "
                     "merge them into one event or move one")
        for key in ("channel", "country", "category"):
            value = getattr(ev.scope, key)
            if value is not None and value not in known[key]:
                fail(
                    f"events[{i}].scope.{key}",
                    f"{value!r} is not a configured {plural[key]} ({_names(known[key])})",
                )
        if ev.scope.product is not None and not 1 <= ev.scope.product <= cfg.products.count:
            fail(
                f"events[{i}].scope.product",
                f"{ev.scope.product} is not a product number 1 … {cfg.products.count}",
            )
        if ev.start < cfg.period.start or ev.start > cfg.period.end:
            fail(
                f"events[{i}].start",
                f"{ev.start} is outside the period {cfg.period.start} … {cfg.period.end}",
            )
        if isinstance(ev, PricingError):
            bound = ev.max_demand_boost(cfg.basket.quantity_mean)
            if ev.demand_boost >= bound:
                below = math.floor(bound * 100) / 100
                fail(f"events[{i}].demand_boost",
                     f"{ev.demand_boost} with price_drop_pct {ev.price_drop_pct} ({ev.profile}) "
                     f"and basket.quantity_mean {cfg.basket.quantity_mean} raises the AOV of the "
                     "scope instead of lowering it (a pricing error's primary KPI, aov down, as "
                     f"the truth records it); need demand_boost below {below:g}")
        end = ev.start + dt.timedelta(days=ev.duration_days - 1)
        if end > cfg.period.end:
            fail(
                f"events[{i}].duration_days",
                f"the event ends {end}, after the period end {cfg.period.end}",
            )


# ids the engine gives planned calendar occurrences (calendar.calendar_occurrences)
PLANNED_ID = re.compile(r"P\d+")


def _check_id(value: str, i: int, seen: dict[str, int], fail: Callable[[str, str], None]) -> None:
    """An explicit event id is not blank, holds no control character, is not a planned
    occurrence's and not another event's (the twins and truth records are keyed by id: two
    events sharing one were each measured against a twin that kept both, and recorded with no
    effect)."""
    key = f"events[{i}].id"
    if not value.strip() or control_character(value):
        fail(key, f"{value!r} {control_character(value) or 'is empty or blank'}")
    if PLANNED_ID.fullmatch(value):
        fail(key, f"{value!r} has the form of a planned calendar occurrence's id (P01, P02 …); "
                  "choose another")
    if value in seen:
        fail(key, f"{value!r} is also the id of events[{seen[value]}]; ids must be unique")
    seen[value] = i


# Resource guard: the world's size is estimated from the config before anything is allocated.
# About 0.3 KB of memory per order (orders, lines, the counterfactual twin), so the default ceiling
# of 20 M orders stays within ~6 GB. ``generate_data.py --max-orders`` / SHOCKLAB_MAX_ORDERS.
DEFAULT_MAX_ORDERS = 20_000_000
MAX_CELLS = 50_000_000  # days x channels x countries of the traffic grid
_MAX_ORDERS: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "shocklab_max_orders", default=None
)


@contextmanager
def size_ceiling(max_orders: float | None) -> Iterator[None]:
    """Within this block, ``build_config`` rejects worlds of more than ``max_orders`` estimated
    orders."""
    token = _MAX_ORDERS.set(max_orders)
    try:
        yield
    finally:
        _MAX_ORDERS.reset(token)


def max_orders() -> float:
    value = _MAX_ORDERS.get()
    if value is None:
        try:
            value = float(os.environ.get("SHOCKLAB_MAX_ORDERS", DEFAULT_MAX_ORDERS))
        except ValueError:
            value = math.nan
        if not value > 0:   # -5 read as "above the ceiling of -5"; nan lifted the ceiling
            raise InputError(
                "SHOCKLAB_MAX_ORDERS: expected a positive number, got "
                f"{os.environ['SHOCKLAB_MAX_ORDERS']!r}"
            )
    return value


def estimate_size(cfg: SimulationConfig) -> dict[str, float]:
    """Expected orders and traffic cells of the world, from the config alone (cheap: O(days))."""
    import numpy as np

    from . import calendar as cal

    days = cal.dates(cfg)
    share = np.array([c.share for c in cfg.channels.values()])
    share = share / share.sum()
    rate = np.array([c.conversion for c in cfg.channels.values()])
    conv = float(np.dot(share, rate))
    profile = cal.traffic_profile(cfg, days)
    sessions = cfg.traffic.base_sessions * float(profile.sum())
    # the planned calendar and the explicit events multiply orders too (a 20-fold fraud wave or
    # a +500 % level shift over the period passed the ceiling, then ran out of memory)
    traffic, conversion = cal.calendar_multipliers(cfg, len(days))
    per_day = (traffic * conversion) @ (share * rate) / conv * _event_factor(cfg, len(days))
    orders = (cfg.traffic.base_sessions * float(np.dot(profile, per_day)) * conv
              * (1 + cfg.conversion.seasonal_amplitude))
    return {
        "days": float(len(days)),
        "cells": float(len(days) * len(cfg.channels) * len(cfg.countries)),
        "sessions": sessions,
        "orders": orders,
    }


def _event_factor(cfg: SimulationConfig, n_days: int) -> Any:
    """[D] upper bound of the explicit events' multiplier on the store's expected orders: each
    event's ``orders_factor`` on its share of the orders (its scope's channels and countries),
    over its window, or to the end of the period when its effect outlasts the window."""
    import numpy as np

    ch = list(cfg.channels.values())
    cell = (np.array([c.share * c.conversion for c in ch])[:, None]
            * np.array(list(cfg.countries.values()))[None, :])
    cell = cell / cell.sum()
    factor = np.ones(n_days)
    for ev in cfg.events:
        up = ev.orders_factor()
        if up <= 1:
            continue
        in_scope = np.outer([ev.scope.channel in (None, c) for c in cfg.channels],
                            [ev.scope.country in (None, k) for k in cfg.countries])
        s = (ev.start - cfg.period.start).days
        e = n_days if ev.outlasts_window else s + ev.duration_days
        factor[s:e] *= 1 + float(cell[in_scope].sum()) * (up - 1)
    return factor


def check_size(cfg: SimulationConfig, source: str) -> None:
    est = estimate_size(cfg)
    ceiling = max_orders()
    if est["cells"] > MAX_CELLS:
        raise InputError(
            f"{source}: the traffic grid has {est['cells']:,.0f} cells "
            "(days x channels x countries), "
            f"more than the {MAX_CELLS:,} supported"
        )
    if est["orders"] > ceiling:
        raise InputError(
            f"{source}: traffic.base_sessions: the world would hold about "
            f"{est['orders']:,.0f} orders ({est['sessions']:,.0f} sessions over "
            f"{est['days']:.0f} days, the calendar's and events' uplifts on top), above the "
            f"ceiling of {ceiling:,.0f} (raise it with --max-orders or SHOCKLAB_MAX_ORDERS if the "
            f"machine has ~{_memory(est['orders'])} of memory to spare)"
        )


def _memory(orders: float) -> str:
    """The memory a world of this many orders needs (~0.3 KB an order), in GB, or in MB below
    1 GB: a small ceiling (--max-orders 100000) said '~0 GB of memory to spare'."""
    gb = orders * 3e-7
    return f"{gb:,.0f} GB" if gb >= 0.95 else f"{max(gb * 1000, 1):,.0f} MB"


def build_config(raw: dict[str, Any], source: str = "<config>") -> SimulationConfig:
    if "world" in raw:  # a random world: the seed draws the store and its shocks (world_sampler.py)
        from .world_sampler import expand_world

        raw = expand_world(raw, source)
    cfg = validate(SimulationConfig, raw, source)
    check_references(cfg, source)
    check_size(cfg, source)
    return cfg


def load_simulation_config(
    path: str | Path, overrides: list[str] | None = None
) -> tuple[SimulationConfig, dict[str, Any]]:
    """Load, override, validate. Returns (config, raw mapping after overrides)."""
    raw = apply_overrides(load_yaml(path), overrides)
    source = str(path) + (" (with --set)" if overrides else "")
    return build_config(raw, source), raw


def config_hash(cfg: SimulationConfig) -> str:
    """sha256 of the validated config (defaults filled in), independent of YAML formatting."""
    return sha256_json(cfg.model_dump(mode="json"))
