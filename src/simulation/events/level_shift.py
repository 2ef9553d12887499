"""Level shift: a lasting change of traffic or conversion (new competitor, site redesign)."""

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from .base import EventBase, Grid, Levers, Profile, register


@register
class LevelShift(EventBase):
    type: Literal["level_shift"] = "level_shift"
    profile: Profile = "permanent"
    duration_days: Annotated[int, Field(ge=1, le=366)] = 7
    change_pct: Annotated[float, Field(ge=-0.95, le=5.0)] = Field(
        -0.25, description="relative change once fully in effect")
    lever: Literal["traffic", "conversion"] = "traffic"
    magnitude_field = "change_pct"
    world_duration_days = (3, 10)
    magnitude_sign = "either"  # a shift may go up or down

    @model_validator(mode="after")
    def _nonzero(self) -> "LevelShift":
        if self.change_pct == 0:
            raise ValueError("change_pct must not be 0")
        return self

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        out = super().world_params(g, effect, scope_kind)   # draws the sign first
        out["lever"] = "traffic" if g.random() < 0.5 else "conversion"
        out["profile"] = "permanent" if g.random() < 0.5 else "ramp"
        return out

    def kpi_direction(self) -> tuple[str, str]:
        kpi = "sessions" if self.lever == "traffic" else "conversion_rate"
        return kpi, "up" if self.change_pct > 0 else "down"

    def orders_factor(self) -> float:
        return 1 + max(self.change_pct, 0.0)

    def apply(self, levers: Levers, grid: Grid) -> None:
        factor = 1 + self.change_pct * self.cell_weights(grid)
        if self.lever == "traffic":
            levers.traffic *= factor
        else:
            levers.conversion *= factor
