"""Payment failure: visitors arrive but checkouts fail — conversion drops, sessions unchanged."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class PaymentFailure(EventBase):
    type: Literal["payment_failure"] = "payment_failure"
    duration_days: Annotated[int, Field(ge=1, le=366)] = 2
    failure_pct: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.4, description="share of checkouts that fail"
    )
    magnitude_field = "failure_pct"
    world_duration_days = (1, 3)
    primary_kpi = "conversion_rate"
    primary_direction = "down"

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.conversion *= 1 - self.failure_pct * self.cell_weights(grid)
