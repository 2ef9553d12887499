"""Pricing error: products listed too cheap — buyers take more units, AOV and margin collapse."""

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class PricingError(EventBase):
    type: Literal["pricing_error"] = "pricing_error"
    price_drop_pct: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.5, description="unit price cut"
    )
    demand_boost: Annotated[float, Field(ge=0.0, le=20.0)] = Field(
        1.0, description="bargain hunters buy more: a line's mean units beyond the first grow by "
        "this x the price cut; the scope's AOV must still fall on every day of the event "
        "(checked at load against basket.quantity_mean)"
    )
    allowed_scopes = ("all", "category", "product")
    default_scope_kind = "category"
    magnitude_field = "price_drop_pct"
    world_duration_days = (1, 3)
    primary_kpi = "aov"
    primary_direction = "down"

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        return {
            "price_drop_pct": round(effect, 3),
            "demand_boost": round(float(g.uniform(0.0, 1.0)), 2),
        }

    def max_demand_boost(self, quantity_mean: float) -> float:
        """The demand_boost below which the scope's expected AOV falls on every day of the event.

        A line's units are 1 + a geometric extra of mean (quantity_mean - 1) x (1 + boost x cut)
        (``draw.py``), its price x (1 - cut), so at a day's cut x the expected line value changes
        by (1 - x)(1 + (q - 1)(1 + b x)) / q, below 1 exactly when b < q / ((q - 1)(1 - x)); the
        smallest cut of the profile binds. At a higher boost the AOV rises, and the truth's
        primary KPI (aov down) contradicted its own recorded effect (a 50 % cut with boost 20 on
        the default basket: AOV +58 %)."""
        q = quantity_mean
        if q <= 1:
            return math.inf   # no extra units to boost: the price cut alone lowers the AOV
        x = self.price_drop_pct * float(self.shape().min())
        return q / ((q - 1) * (1 - x))

    def apply(self, levers: Levers, grid: Grid) -> None:
        w = self.product_weights(grid)
        levers.price *= 1 - self.price_drop_pct * w
        levers.quantity *= 1 + self.demand_boost * self.price_drop_pct * w
