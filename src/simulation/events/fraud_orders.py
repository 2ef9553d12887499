"""Fraud orders: stolen cards buy expensive goods in bulk from fresh accounts — revenue and AOV spike,
many are cancelled later."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class FraudOrders(EventBase):
    type: Literal["fraud_orders"] = "fraud_orders"
    extra_orders_pct: Annotated[float, Field(gt=0.0, le=20.0)] = Field(
        0.15, description="fraudulent orders as a share of expected orders in scope")
    magnitude_field = "extra_orders_pct"
    primary_kpi = "revenue"
    primary_direction = "up"

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.fraud_pct += self.extra_orders_pct * self.cell_weights(grid)
