"""Pricing error: products listed too cheap — buyers take more units, AOV and margin collapse."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class PricingError(EventBase):
    type: Literal["pricing_error"] = "pricing_error"
    price_drop_pct: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(0.5, description="unit price cut")
    demand_boost: Annotated[float, Field(ge=0.0, le=20.0)] = Field(
        1.0, description="extra units per line per unit of price cut (bargain hunters buy more)")
    allowed_scopes = ("all", "category", "product")
    default_scope_kind = "category"
    magnitude_field = "price_drop_pct"
    primary_kpi = "aov"
    primary_direction = "down"

    def apply(self, levers: Levers, grid: Grid) -> None:
        w = self.product_weights(grid)
        levers.price *= 1 - self.price_drop_pct * w
        levers.quantity *= 1 + self.demand_boost * self.price_drop_pct * w
