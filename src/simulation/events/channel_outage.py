"""Channel outage: one acquisition channel stops delivering (ad account suspended, email down)."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class ChannelOutage(EventBase):
    type: Literal["channel_outage"] = "channel_outage"
    drop_pct: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.6, description="share of the channel's sessions lost"
    )
    allowed_scopes = ("channel", "channel_country")
    default_scope_kind = "channel"
    magnitude_field = "drop_pct"
    world_duration_days = (1, 4)
    primary_kpi = "sessions"
    primary_direction = "down"

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.traffic *= 1 - self.drop_pct * self.cell_weights(grid)
