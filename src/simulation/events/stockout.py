"""Stockout: products in scope cannot be bought; their lines vanish, orders with nothing left are
lost."""

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class Stockout(EventBase):
    type: Literal["stockout"] = "stockout"
    duration_days: Annotated[int, Field(ge=1, le=366)] = 5
    share_out: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.8, description="share of the scope's products that are out of stock")
    allowed_scopes = ("category", "product")
    default_scope_kind = "category"
    magnitude_field = "share_out"
    world_duration_days = (2, 7)
    primary_kpi = "revenue"
    primary_direction = "down"

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        # a single product runs out completely
        return {"share_out": 1.0 if scope_kind == "product" else round(effect, 3)}

    def apply(self, levers: Levers, grid: Grid) -> None:
        # which products run out is a stable function of the product, not of other events
        u = (grid.product_key >> np.uint64(11)).astype(float) / float(1 << 53)
        out = self.product_mask(grid) & (u < self.share_out)
        active = self.weights(grid) > 0
        levers.stock[np.ix_(active, out)] = 0.0
