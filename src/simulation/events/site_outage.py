"""Site outage: the shop is (partly) unreachable — sessions and everything downstream fall."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class SiteOutage(EventBase):
    type: Literal["site_outage"] = "site_outage"
    duration_days: Annotated[int, Field(ge=1, le=366)] = 1
    drop_pct: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.5, description="share of sessions lost"
    )
    allowed_scopes = ("all", "country")
    magnitude_field = "drop_pct"
    world_duration_days = (1, 2)
    primary_kpi = "sessions"
    primary_direction = "down"

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.traffic *= 1 - self.drop_pct * self.cell_weights(grid)
