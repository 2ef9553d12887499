"""Fraud orders: stolen cards buy expensive goods in bulk from fresh accounts — revenue and AOV
spike, many are cancelled later."""

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class FraudOrders(EventBase):
    type: Literal["fraud_orders"] = "fraud_orders"
    extra_orders_pct: Annotated[float, Field(gt=0.0, le=20.0)] = Field(
        0.15, description="fraudulent orders as a share of expected orders in scope")
    magnitude_field = "extra_orders_pct"
    world_duration_days = (1, 3)
    primary_kpi = "revenue"
    primary_direction = "up"

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        # a fraudulent order is worth ~2 ordinary ones
        return {"extra_orders_pct": round(round(effect, 3) / 2, 3)}

    def orders_factor(self) -> float:
        return 1 + self.extra_orders_pct

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.fraud_pct += self.extra_orders_pct * self.cell_weights(grid)
