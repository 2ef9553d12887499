"""Churn wave: a share of living customers leave for good (bad experience, competitor offer).

Acts on two levers that belong together: the customers' dropout dates (they stop ordering) and
the returning-order rate of the cells in scope, which falls by the same share.
"""

import zlib
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from .base import ChurnAction, EventBase, Grid, Levers, Profile, register


@register
class ChurnWave(EventBase):
    type: Literal["churn_wave"] = "churn_wave"
    profile: Profile = "ramp"
    duration_days: Annotated[int, Field(ge=1, le=366)] = 14
    churn_pct: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        0.35, description="share of living customers who churn")
    allowed_scopes = ("all", "country")
    magnitude_field = "churn_pct"
    world_duration_days = (7, 14)
    lasting = True             # churned customers never come back
    acts_on_customers = True
    primary_kpi = "orders"
    primary_direction = "down"

    @classmethod
    def world_params(cls, g: np.random.Generator, effect: float, scope_kind: str) -> dict[str, Any]:
        return {**super().world_params(g, effect, scope_kind), "profile": "ramp"}

    def apply(self, levers: Levers, grid: Grid) -> None:
        levers.returning *= 1 - self.churn_pct * self.cell_weights(grid)
        country_mask = self.cell_mask(grid).any(axis=0)
        key = zlib.crc32(f"churn_wave|{self.start}|{self.scope.label()}".encode())
        levers.churn.append(ChurnAction(event_key=key, start_day=grid.day_index(self.start),
                                        spread_days=self.duration_days, fraction=self.churn_pct,
                                        country_mask=country_mask))
