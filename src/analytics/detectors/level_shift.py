"""Level shift and variance change: two adjacent windows compared with robust statistics.

For every period ``t`` of a series, the *recent* window is the last ``window`` periods (``t``
included) and the *reference* window the ``reference`` periods just before it. Two raw scores:

- **level** (``score``): ``(median(recent) - median(reference)) / spread(reference)``; a median
  of ``window`` periods moves only when at least half of them moved, so an isolated spike (the
  flood on spiky machine metrics) does not move it, while a step does after ``window // 2 + 1``
  periods;
- **variance** (``score@var``): ``log(spread(recent') / spread(reference))`` with ``recent'`` the
  last ``variance_window`` periods: the series became noisier (positive) or quieter (negative).

``spread`` is 1.4826 x the median absolute deviation from the window's median (approximated, as
in ``rolling_zscore``, by the rolling median of each point's deviation from the rolling median),
never below ``floor_frac`` x the mean absolute step |x_t - x_(t-1)| of the previous
``floor_window`` periods (a series that sat still for a while but moves in general is not judged
against a zero spread) nor below a tiny absolute value.

Both columns are calibrated on the series' own past by the shared calibrator (base class) and
combined by Bonferroni (``base.combine_windows``), so the sensitivity knob keeps its meaning. The
detector never flags: the base class thresholds the calibrated score.

``daily_reference`` (sub-daily data, on by default): the recent window must also differ from the
same window one day earlier (median and spread), in the same direction (the smaller of the two
scores is kept), so a daily cycle's regular ramps and steps (a square wave) are not read as
shifts. (A variant scoring against the range of the previous day's medians within ``window``
periods, for phase jitter, was tried on artificialNoAnomaly and raised more false alarms: its
many exact zeros shrink the calibrator's scale.)

``seasonal_adjust``: divide by the seasonal factor first (``slots.slot_factors``: clock hour x
weekday for sub-daily data, the hour-of-day factor until the hour-of-week one is known; each row
scored with its reference windows on its own factor's scale, so the switch between the two does
not read as a shift) and score only where a factor is known (from two days on); off (the default)
the detector scores within the first ``window + reference`` periods and the calibrator's
``min_history``, which is what short files need (``rolling_zscore`` needs two days).

Windows count periods of the series' own step. Off on store data: it is switched on for
``--kpis`` input by the config section ``external.detectors`` (``analytics.external``).
Vectorized over series (``calibrate.Wide``); cost linear in the number of periods.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import Detector, DetectorConfig, DetectorInput, register
from .calibrate import CalibrationConfig, rolling, shift

RAW_CAP = 1e6  # raw scores are clipped here (a step off a perfectly flat stretch stays finite)


class LevelShiftConfig(DetectorConfig):
    type: Literal["level_shift"] = "level_shift"
    enabled: bool = Field(
        False,
        description="off unless switched on (the config section `external.detectors` does for "
        "--kpis input)",
    )
    window: int = Field(6, ge=1, le=100_000, description="recent periods (the judged one included)")
    reference: int = Field(
        36, ge=4, le=1_000_000, description="periods just before the recent window"
    )
    variance: bool = Field(True, description="also score a change of spread (score@var)")
    variance_window: int = Field(
        24, ge=3, le=100_000, description="recent periods whose spread is compared"
    )
    floor_window: int = Field(
        288, ge=2, le=1_000_000,
        description="periods behind the spread floor (mean absolute step)",
    )
    floor_frac: float = Field(
        0.5, ge=0, le=10, description="spread >= this x the mean absolute step of the past"
    )
    seasonal_adjust: bool = Field(
        False,
        description="divide by the trailing hour-of-day x weekday factor first and score only "
        "where it is known (two days of history)",
    )
    weekday_weeks: int = Field(8, ge=2, le=520, description="weeks behind that factor")
    daily_reference: bool = Field(
        True,
        description="sub-daily data: a change must also hold against the same time of the "
        "previous day (the smaller of the two scores when both point the same way, else 0), so "
        "a daily cycle's regular steps are not shifts; the first day is judged on the "
        "adjacent reference alone",
    )
    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(tail_df=15),
        description="t(15): at or below the nominal false-alert rate on synthetic normal, t(3) "
        "and AR(1) noise (chosen on those, not on NAB)",
    )


def _mad(x: np.ndarray, window: int, centre: np.ndarray) -> np.ndarray:
    """1.4826 x the rolling median of |x - centre| over ``window`` periods (approximate MAD)."""
    return 1.4826 * rolling(np.abs(x - centre), window, max(window // 2, 1), "median")


def _both(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Evidence against two references: the smaller score when both point the same way, 0 when
    they disagree, ``a`` alone where ``b`` is unknown."""
    same = np.sign(a) == np.sign(b)
    return np.where(np.isfinite(b), np.where(same, np.sign(a) * np.fmin(np.abs(a), np.abs(b)),
                                              0.0), a)


@register
class LevelShift(Detector):
    type_name = "level_shift"
    config_class = LevelShiftConfig

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: LevelShiftConfig = self.config  # type: ignore[assignment]
        wide = self.wide(series)
        x = wide.to(series["value"].to_numpy(dtype=float))
        pairs = [(np.ones_like(x), np.ones(x.shape, dtype=bool))]
        if cfg.seasonal_adjust:
            from .slots import slot_factors

            # each row scored on its own factor's scale, its reference windows included (the
            # hour-of-day factor, then the hour-of-week one: two scales, NAB audit 2026-12-05)
            pairs = slot_factors(x, inp.periods_per_day, cfg.weekday_weeks,  # NaN until known
                                 start=wide.grid[0] if len(wide.grid) else None)
        level = np.full(x.shape, np.nan)
        var = np.full(x.shape, np.nan)
        expected = np.full(x.shape, np.nan)
        for factor, rows in pairs:
            lv, vr, centre = self._scores(x / factor, inp.periods_per_day)
            level = np.where(rows, lv, level)
            var = np.where(rows, vr, var) if vr is not None else var
            expected = np.where(rows, centre * factor, expected)
        cols = {"score": wide.back(np.clip(level, -RAW_CAP, RAW_CAP))}
        if cfg.variance:
            cols["score@var"] = wide.back(np.clip(var, -RAW_CAP, RAW_CAP))
        expected = wide.back(expected)
        return pd.DataFrame({**cols, "expected": expected}, index=series.index)

    def _scores(self, a: np.ndarray, ppd: int
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Raw level and variance scores of the [period, series] values ``a`` and the reference
        centre (the variance score None when ``variance`` is off)."""
        cfg: LevelShiftConfig = self.config  # type: ignore[assignment]
        w, ref = cfg.window, cfg.reference
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            recent = rolling(a, w, w // 2 + 1, "median")
            lagged = shift(a, w)  # the reference ends where the recent window starts
            centre = rolling(lagged, ref, ref // 2, "median")
            spread = _mad(lagged, ref, centre)
            step = np.abs(np.diff(a, axis=0, prepend=np.nan))
            floor = cfg.floor_frac * rolling(
                shift(step, w), cfg.floor_window, 2, "mean"
            )
            tiny = 1e-9 * (1.0 + np.abs(centre))
            base = np.fmax(np.fmax(spread, floor), tiny)  # NaN only where the spread is unknown
            base = np.where(np.isfinite(spread), base, np.nan)
            daily = cfg.daily_reference and ppd > 1
            level = (recent - centre) / base
            if daily:
                level = _both(level, (recent - shift(recent, ppd)) / base)
            var = None
            if cfg.variance:
                vw = cfg.variance_window
                rc = rolling(a, vw, vw // 2 + 1, "median")
                now = np.fmax(_mad(a, vw, rc), np.fmax(floor, tiny))
                var = np.log(now / base)
                if daily:
                    var = _both(var, np.log(now / shift(now, ppd)))
        return level, var, centre
