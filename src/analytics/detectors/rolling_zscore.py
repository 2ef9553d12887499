"""Rolling z-score: distance of each point from a trailing window that excludes the point itself.

Optional weekday adjustment divides each value by its weekday factor (mean of the same weekday
over the last ``weekday_weeks`` weeks / mean of all days over those weeks, both before the point),
so the weekly cycle neither inflates the spread nor biases the score. Planned marketing-calendar
days are kept out of the baselines and, with ``calendar: mute``, never flagged.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import SERIES_KEYS, Detector, DetectorConfig, DetectorInput, calendar_mask, register


class RollingZScoreConfig(DetectorConfig):
    type: Literal["rolling_zscore"] = "rolling_zscore"
    threshold: float = Field(4.0, gt=0, le=100)
    window: int = Field(28, ge=3, le=10_000, description="trailing periods in the baseline")
    min_periods: int = Field(14, ge=2, le=10_000, description="no score before this many baseline periods")
    method: Literal["mean_std", "median_mad"] = "median_mad"
    same_weekday: bool = Field(False, description="baseline from the same weekday (and time of day) only; "
                                                   "window then counts those periods")
    weekday_adjust: bool = Field(True, description="divide by a trailing weekday factor first (daily data)")
    weekday_weeks: int = Field(8, ge=2, le=520, description="weeks behind the weekday factor")
    smooth: int = Field(1, ge=1, le=90, description="score the mean of the last `smooth` periods against the "
                                                    "baseline before them (catches slow, small shifts)")
    calendar: Literal["ignore", "exclude", "mute"] = Field(
        "exclude", description="planned calendar days: ignore | exclude from baselines | exclude and never flag")
    min_rel_std: float = Field(0.0, ge=0, le=1, description="floor on the spread as a fraction of the "
                                                             "baseline level (stops tiny-variance series from exploding)")


def _roll(x: pd.Series, keys: list, w: int, mp: int, how: str) -> pd.Series:
    return x.groupby(keys, sort=False).transform(lambda s: getattr(s.rolling(w, min_periods=mp), how)())


@register
class RollingZScore(Detector):
    type_name = "rolling_zscore"
    config_class = RollingZScoreConfig

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: RollingZScoreConfig = self.config  # type: ignore[assignment]
        keys = [series[k] for k in SERIES_KEYS]
        value = series["value"].astype(float)
        planned = calendar_mask(series, inp.calendar) if cfg.calendar != "ignore" else np.zeros(len(series), bool)
        clean = value.where(~planned)      # what baselines may learn from
        factor = pd.Series(1.0, index=series.index)
        if cfg.weekday_adjust:
            d = series["date"]
            wd_keys = [*keys, d.dt.day_of_week * 1440 + d.dt.hour * 60 + d.dt.minute]
            per_week = 7 * inp.periods_per_day
            wd_mean = _roll(clean.groupby(wd_keys, sort=False).shift(1), wd_keys, cfg.weekday_weeks, 2, "mean")
            all_mean = _roll(clean.groupby(keys, sort=False).shift(1), keys, per_week * cfg.weekday_weeks,
                             per_week, "mean")
            factor = (wd_mean / all_mean.where(all_mean != 0)).fillna(1.0)
            factor = factor.where(factor > 0, 1.0)
        adj = value / factor
        adj_clean = clean / factor
        if cfg.smooth > 1:   # planned days stay out of the smoothed mean too (unless ignored)
            src = adj if cfg.calendar == "ignore" else adj_clean
            adj = _roll(src, keys, cfg.smooth, (cfg.smooth + 1) // 2, "mean")
            lagged = adj_clean.groupby(keys, sort=False).shift(cfg.smooth)  # baseline ends before the smoothed span
        else:
            lagged = adj_clean.groupby(keys, sort=False).shift(1)
        key2 = list(keys)
        if cfg.same_weekday:
            d = series["date"]
            key2.append(d.dt.day_of_week * 1440 + d.dt.hour * 60 + d.dt.minute)
            lagged = adj_clean.groupby(key2, sort=False).shift(1)
        w, mp = cfg.window, min(cfg.min_periods, cfg.window)
        if cfg.method == "mean_std":
            centre = _roll(lagged, key2, w, mp, "mean")
            spread = _roll(lagged, key2, w, mp, "std")
        else:
            centre = _roll(lagged, key2, w, mp, "median")
            # MAD approximated by the rolling median of each past point's deviation from the
            # current trailing median — exact per-window MAD would need a Python call per point
            spread = 1.4826 * _roll((lagged - centre).abs(), key2, w, mp, "median")
        spread = np.maximum(spread, cfg.min_rel_std * centre.abs())
        spread = spread.where(spread > 0)
        score = (adj - centre) / spread
        if cfg.smooth > 1:   # the spread is of single periods; a mean of k has 1/sqrt(k) of it
            score = score * np.sqrt(cfg.smooth)
        out = pd.DataFrame({"score": score, "expected": centre * factor}, index=series.index)
        if cfg.calendar == "mute":
            out["flag"] = (score.abs() >= cfg.threshold) & ~planned
        return out
