"""Rolling z-score: distance of each point from a trailing window that excludes the point itself."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import SERIES_KEYS, Detector, DetectorConfig, DetectorInput, register


class RollingZScoreConfig(DetectorConfig):
    type: Literal["rolling_zscore"] = "rolling_zscore"
    window: int = Field(28, ge=3, le=10_000, description="trailing periods in the baseline")
    min_periods: int = Field(14, ge=2, le=10_000, description="no score before this many baseline periods")
    method: Literal["mean_std", "median_mad"] = "mean_std"
    same_weekday: bool = Field(False, description="baseline from the same weekday (and time of day) only; "
                                                   "window then counts those periods")
    min_rel_std: float = Field(0.0, ge=0, le=1, description="floor on the spread as a fraction of the "
                                                             "baseline level (stops tiny-variance series from exploding)")


@register
class RollingZScore(Detector):
    type_name = "rolling_zscore"
    config_class = RollingZScoreConfig

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: RollingZScoreConfig = self.config  # type: ignore[assignment]
        keys = [series[k] for k in SERIES_KEYS]
        if cfg.same_weekday:
            d = series["date"]
            keys.append(d.dt.day_of_week * 1440 + d.dt.hour * 60 + d.dt.minute)
        value = series["value"].astype(float)
        # shift(1) inside each group: the window ends the period before the one judged (causal)
        past = value.groupby(keys, sort=False).shift(1)
        grouped = past.groupby(keys, sort=False)
        w, mp = cfg.window, min(cfg.min_periods, cfg.window)
        if cfg.method == "mean_std":
            centre = grouped.transform(lambda s: s.rolling(w, min_periods=mp).mean())
            spread = grouped.transform(lambda s: s.rolling(w, min_periods=mp).std())
        else:
            centre = grouped.transform(lambda s: s.rolling(w, min_periods=mp).median())
            # MAD approximated by the rolling median of each past point's deviation from the
            # current trailing median — exact per-window MAD would need a Python call per point
            dev = (past - centre).abs()
            spread = 1.4826 * dev.groupby(keys, sort=False).transform(
                lambda s: s.rolling(w, min_periods=mp).median())
        spread = np.maximum(spread, cfg.min_rel_std * centre.abs())
        spread = spread.where(spread > 0)
        score = (value - centre) / spread
        return pd.DataFrame({"score": score, "expected": centre}, index=series.index)
