"""Pricing error: products listed too cheap — buyers take more units, AOV and margin collapse."""

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
        1.0, description="extra units per line per unit of price cut (bargain hunters buy more)"
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

    def apply(self, levers: Levers, grid: Grid) -> None:
        w = self.product_weights(grid)
        levers.price *= 1 - self.price_drop_pct * w
        levers.quantity *= 1 + self.demand_boost * self.price_drop_pct * w
