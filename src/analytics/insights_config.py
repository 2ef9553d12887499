"""Configuration of insights, drivers, forecast and plots (section ``insights:`` of
config/analysis.yaml). Owned by the insights part; the analysis config embeds ``InsightsConfig``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class InsightsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
