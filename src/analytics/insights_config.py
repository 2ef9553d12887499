"""Configuration of insights, drivers, forecast and plots (section ``insights:`` of
config/analysis.yaml). Owned by the insights part; the analysis config embeds ``InsightsConfig``.

Every field has a default, so an absent ``insights:`` section (or an empty one) works.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .context import KPI_NAMES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriversConfig(_Section):
    """Root cause: which channel / country / category slice carries a change."""

    top_k: int = Field(5, ge=1, le=50, description="drivers listed per incident or change")
    min_share: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="slices with a smaller |share of the change| fold into 'other'",
    )
    pairs: bool = Field(
        True, description="also rank channel x country pairs when the raw tables allow"
    )
    baseline_weeks: int = Field(
        4,
        ge=1,
        le=26,
        description="same-weekday weeks before a window that form its baseline "
        "when the detectors give none",
    )
    focus_min: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="a change is 'concentrated' in its top slice when the rest of that "
        "dimension moved at most (1 - focus_min) as much, relatively; else 'broad'",
    )


class ForecastConfig(_Section):
    enabled: bool = True
    horizon_days: int = Field(90, ge=7, le=730)
    interval: float = Field(0.95, gt=0.5, lt=1.0, description="coverage of the forecast interval")
    recent_weeks: int = Field(
        4,
        ge=1,
        le=26,
        description="how many final weeks are held out to compare with a forecast made before them",
    )
    min_history_days: int = Field(56, ge=14, le=3650, description="no forecast on shorter history")


class ChannelsConfig(_Section):
    window_days: int = Field(
        7, ge=1, le=91, description="the recent window each channel is judged on"
    )
    baseline_weeks: int = Field(
        4, ge=1, le=26, description="the channel's own trailing baseline, in weeks"
    )
    underperform_pct: float = Field(
        15.0,
        gt=0.0,
        le=100.0,
        description="revenue or conversion this many % below baseline flags a channel",
    )


class InsightsConfig(_Section):
    enabled: bool = True
    drivers: DriversConfig = Field(default_factory=DriversConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    signature_min_share: float = Field(
        0.6,
        gt=0.33,
        le=1.0,
        description="a component carrying this share of the revenue change names "
        "the signature; otherwise 'mix'",
    )
    max_incidents: int = Field(
        200, ge=1, le=10000, description="most severe incidents kept in insights.json"
    )
    plots: bool = Field(True, description="write plots/*.png")
    plot_kpis: list[str] = Field(
        default_factory=lambda: ["revenue", "sessions", "conversion_rate", "aov"],
        min_length=1,
        max_length=9,
        json_schema_extra={"items": {"enum": list(KPI_NAMES)}},   # _known_kpis, for the schema
    )

    @field_validator("plot_kpis")
    @classmethod
    def _known_kpis(cls, v: list[str]) -> list[str]:
        bad = [k for k in v if k not in KPI_NAMES]
        if bad:
            raise ValueError(f"unknown KPI {bad[0]!r} (known: {', '.join(KPI_NAMES)})")
        return v
