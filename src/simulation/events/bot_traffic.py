"""Bot traffic: sessions that never buy — sessions up, conversion rate down, orders unchanged."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class BotTraffic(EventBase):
    type: Literal["bot_traffic"] = "bot_traffic"
    extra_sessions_pct: Annotated[float, Field(gt=0.0, le=50.0)] = Field(
        0.4, description="bot sessions as a share of expected human sessions in scope")
    magnitude_field = "extra_sessions_pct"
    world_duration_days = (1, 4)
    primary_kpi = "sessions"
    primary_direction = "up"

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.bot_pct += self.extra_sessions_pct * self.cell_weights(grid)
