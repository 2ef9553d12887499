"""Flash sale: more visitors, higher conversion, deeper discounts — more orders, lower AOV."""

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class FlashSale(EventBase):
    type: Literal["flash_sale"] = "flash_sale"
    uplift: Annotated[float, Field(gt=0.0, le=10.0)] = Field(
        0.3, description="extra traffic at peak (0.3 = +30 %)")
    conversion_uplift: Annotated[float, Field(ge=0.0, le=10.0)] = 0.3
    discount: Annotated[float, Field(ge=0.0, le=0.8)] = 0.2
    magnitude_field = "uplift"
    world_duration_days = (1, 4)
    primary_kpi = "orders"
    primary_direction = "up"

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        step = round(math.sqrt(1 + round(effect, 3)) - 1, 3)   # traffic × conversion ≈ 1 + effect
        return {"uplift": step, "conversion_uplift": step,
                "discount": round(float(g.uniform(0.05, 0.25)), 2),
                "profile": "spike" if g.random() < 0.3 else "step"}

    def orders_factor(self) -> float:
        return (1 + self.uplift) * (1 + self.conversion_uplift)

    def apply(self, levers: Levers, grid: Grid) -> None:
        w = self.cell_weights(grid)
        levers.traffic *= 1 + self.uplift * w
        levers.conversion *= 1 + self.conversion_uplift * w
        levers.discount_add += self.discount * w
