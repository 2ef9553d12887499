"""Event base class, scope, time profiles, and the levers events act on.

An event never touches the data directly: it scales *levers* — arrays over (day, channel, country)
or (day, product) that the engine multiplies into its expected values. The engine draws the same
random numbers whether an event is on or off (common random numbers), so the counterfactual twin
differs from the actual world only where a lever moved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Profile = Literal["step", "spike", "ramp", "permanent"]
PERSISTENT_PROFILES = ("ramp", "permanent")


class Scope(BaseModel):
    """Where an event acts. Empty = the whole store. channel and country may be combined."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = None
    country: str | None = None
    category: str | None = None
    product: Annotated[int, Field(ge=1)] | None = None

    @property
    def kind(self) -> str:
        if self.product is not None:
            return "product"
        if self.category is not None:
            return "category"
        if self.channel is not None and self.country is not None:
            return "channel_country"
        if self.channel is not None:
            return "channel"
        if self.country is not None:
            return "country"
        return "all"

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}

    def label(self) -> str:
        d = self.as_dict()
        return ",".join(f"{k}={v}" for k, v in d.items()) if d else "all"

    @model_validator(mode="after")
    def _exclusive(self) -> Scope:
        if (self.category is not None or self.product is not None) and (
                self.channel is not None or self.country is not None or
                (self.category is not None and self.product is not None)):
            raise ValueError("category and product scopes cannot be combined with other scope keys")
        return self


@dataclass
class Levers:
    """Multipliers and additions over the grid; shapes in brackets. 1 (or 0) = no change."""

    traffic: np.ndarray          # [D, C, K] human sessions multiplier
    bot_pct: np.ndarray          # [D, C, K] bot sessions as a share of expected human sessions
    conversion: np.ndarray       # [D, C, K] conversion multiplier (all human orders)
    returning: np.ndarray        # [D, C, K] extra multiplier on returning-customer orders
    discount_add: np.ndarray     # [D, C, K] added to every line's discount fraction
    fraud_pct: np.ndarray        # [D, C, K] fraudulent orders as a share of expected orders
    price: np.ndarray            # [D, P] unit price multiplier
    quantity: np.ndarray         # [D, P] multiplier on mean extra quantity per line
    stock: np.ndarray            # [D, P] 1 in stock, 0 out of stock
    churn: list[ChurnAction] = field(default_factory=list)

    @classmethod
    def neutral(cls, n_days: int, n_channels: int, n_countries: int, n_products: int) -> Levers:
        cell = (n_days, n_channels, n_countries)
        prod = (n_days, n_products)
        return cls(traffic=np.ones(cell), bot_pct=np.zeros(cell), conversion=np.ones(cell),
                   returning=np.ones(cell), discount_add=np.zeros(cell), fraud_pct=np.zeros(cell),
                   price=np.ones(prod), quantity=np.ones(prod), stock=np.ones(prod))


@dataclass(frozen=True)
class ChurnAction:
    """Customers alive at ``start_day`` in the masked countries churn with probability
    ``fraction``, on a day spread uniformly over ``[start_day, start_day + spread_days)``."""

    event_key: int
    start_day: int
    spread_days: int
    fraction: float
    country_mask: np.ndarray = field(compare=False)  # [K] bool


@dataclass(frozen=True)
class Grid:
    """What an event needs to know about the world to place itself on the levers."""

    start: dt.date
    n_days: int
    channels: tuple[str, ...]
    countries: tuple[str, ...]
    product_category: np.ndarray   # [P] category name per product
    product_key: np.ndarray        # [P] uint64 stable per-product hash (for share-of-scope draws)

    def day_index(self, day: dt.date) -> int:
        return (day - self.start).days


class EventBase(BaseModel):
    """Common fields of every event type. Subclasses add their magnitude parameters and
    implement ``apply``; they register themselves with ``@register``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    id: str | None = Field(
        default=None, description="optional stable id; E01, E02 … by start date otherwise")
    start: dt.date
    duration_days: Annotated[int, Field(ge=1, le=366)] = 3
    profile: Profile = "step"
    scope: Scope = Field(default_factory=Scope)
    expected: ClassVar[bool] = False

    # --- declared by each type (facts the engine, the scheduler and the world sampler ask for;
    # the contract test in tests/simulation/test_events_contract.py checks every registered type)
    allowed_scopes: ClassVar[tuple[str, ...]] = ("all", "channel", "country", "channel_country")
    magnitude_field: ClassVar[str] = ""
    primary_kpi: ClassVar[str] = "revenue"
    primary_direction: ClassVar[str] = "down"
    default_scope_kind: ClassVar[str] = "all"
    #: the effect outlives the window whatever the profile (churned customers stay gone), so the
    #: engine keeps its lasting level in the baseline and in the twins of later events
    lasting: ClassVar[bool] = False
    #: sign of a randomly drawn magnitude: "positive" as drawn, "either" flipped with p = 1/2
    magnitude_sign: ClassVar[Literal["positive", "either"]] = "positive"
    #: whether it acts on the customer pool (appends ``ChurnAction``s to ``Levers.churn``)
    acts_on_customers: ClassVar[bool] = False
    #: window length range (days, inclusive) of a shock drawn by the random-world sampler
    world_duration_days: ClassVar[tuple[int, int]] = (1, 3)

    @field_validator("scope")
    @classmethod
    def _scope_allowed(cls, scope: Scope) -> Scope:
        if scope.kind not in cls.allowed_scopes:
            name = cls.model_fields["type"].default
            raise ValueError(
                f"{scope.label()!r} is not supported by {name} "
                f"(allowed: {', '.join(cls.allowed_scopes)})"
            )
        return scope

    # --- derived ---
    @property
    def persistent(self) -> bool:
        return self.profile in PERSISTENT_PROFILES

    @property
    def outlasts_window(self) -> bool:
        """Its effect goes on after ``end``: a persistent profile, or a lasting type."""
        return self.persistent or self.lasting

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.duration_days - 1)

    @property
    def magnitude(self) -> float:
        return float(getattr(self, self.magnitude_field))

    def kpi_direction(self) -> tuple[str, str]:
        return self.primary_kpi, self.primary_direction

    def orders_factor(self) -> float:
        """Upper bound of the event's multiplier on the expected orders in its scope at full
        strength (the resource guard's estimate, ``config.estimate_size``); 1 if it adds none."""
        return 1.0

    def shape(self) -> np.ndarray:
        """Intensity on each day of the window, [duration_days] in (0, 1], from the profile."""
        n = self.duration_days
        t = np.arange(n, dtype=float)
        if self.profile == "step":
            return np.ones(n)
        if self.profile == "spike":  # peak on day one, halving every n/3 days
            return 0.5 ** (t / max(n / 3.0, 0.5))
        # ramp rises linearly over the window; ramp and permanent hold until the period ends
        return (t + 1) / n if self.profile == "ramp" else np.ones(n)

    def weights(self, grid: Grid) -> np.ndarray:
        """Intensity over days, [D] in 0..1, from the time profile."""
        w = np.zeros(grid.n_days)
        s = grid.day_index(self.start)
        n = self.duration_days
        shape = self.shape()
        stop = min(s + n, grid.n_days)
        w[s:stop] = shape[: stop - s]
        if self.persistent:
            w[stop:] = 1.0
        return w

    def cell_mask(self, grid: Grid) -> np.ndarray:
        """[C, K] bool: the (channel, country) cells in scope."""
        ch = (
            np.ones(len(grid.channels), bool)
            if self.scope.channel is None
            else np.array([c == self.scope.channel for c in grid.channels])
        )
        co = (
            np.ones(len(grid.countries), bool)
            if self.scope.country is None
            else np.array([c == self.scope.country for c in grid.countries])
        )
        return ch[:, None] & co[None, :]

    def product_mask(self, grid: Grid) -> np.ndarray:
        """[P] bool: the products in scope."""
        if self.scope.product is not None:
            m = np.zeros(len(grid.product_category), bool)
            m[self.scope.product - 1] = True
            return m
        if self.scope.category is not None:
            return grid.product_category == self.scope.category
        return np.ones(len(grid.product_category), bool)

    def cell_weights(self, grid: Grid) -> np.ndarray:
        """[D, C, K] intensity: profile weights inside the scope, 0 outside."""
        return self.weights(grid)[:, None, None] * self.cell_mask(grid)[None, :, :]

    def product_weights(self, grid: Grid) -> np.ndarray:
        """[D, P] intensity: profile weights on products in scope."""
        return self.weights(grid)[:, None] * self.product_mask(grid)[None, :]

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        """Parameters of a random-world shock with target in-scope ``effect`` (rounded to 3
        places) on a ``scope_kind`` scope; types needing more than their magnitude override this
        and draw from ``g`` (the world.shocks stream)."""
        return {cls.magnitude_field: cls.signed(g, round(effect, 3))}

    @classmethod
    def signed(cls, g: np.random.Generator, magnitude: float) -> float:
        """``magnitude`` with the type's sign policy applied (draws from ``g`` only for
        "either")."""
        if cls.magnitude_sign == "either":
            return magnitude if g.random() < 0.5 else -magnitude
        return magnitude

    def apply(self, levers: Levers, grid: Grid) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        base = set(EventBase.model_fields)
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in base}


EVENT_TYPES: dict[str, type[EventBase]] = {}


def register(cls: type[EventBase]) -> type[EventBase]:
    """Class decorator: add an event type to the registry under its ``type`` literal."""
    name = cls.model_fields["type"].default
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} must declare type: Literal[...] = '<name>'")
    if name in EVENT_TYPES:
        raise TypeError(f"event type {name!r} registered twice")
    EVENT_TYPES[name] = cls
    return cls


def get_event_type(name: str) -> type[EventBase]:
    try:
        return EVENT_TYPES[name]
    except KeyError:
        raise KeyError(
            f"unknown event type {name!r} (known: {', '.join(sorted(EVENT_TYPES))})"
        ) from None
