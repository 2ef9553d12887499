"""Shared base class, input object and registry of the anomaly detectors.

A detector turns KPI series into detections: per (date, kpi, dimension, segment) a score on a
common z-like scale (|score| >= ~3 is unusual; the sign is the direction), a flag, the
detector's baseline (``expected``) and the observed value (``actual``).

Subclasses implement ``_detect_core`` only; ``detect`` validates the input, restricts it to the
configured KPIs and dimensions, and turns the core's scores into the shared output table
(flags from ``threshold`` and ``direction`` unless the core supplies its own flags).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shocklab.errors import InputError

SERIES_KEYS = ["kpi", "dimension", "segment"]
OUTPUT_COLUMNS = ["date", "kpi", "dimension", "segment", "detector", "score", "flag",
                  "direction", "expected", "actual", "mode"]


class DetectorConfig(BaseModel):
    """Parameters every detector has; subclasses add their own and pin ``type``."""

    model_config = ConfigDict(extra="forbid")

    type: str
    enabled: bool = True
    threshold: float = Field(3.5, gt=0, le=100, description="flag when |score| >= threshold")
    direction: Literal["both", "up", "down"] = "both"
    kpis: list[str] | None = Field(None, description="restrict to these KPIs (default: all analysed KPIs)")
    dimensions: list[str] | None = Field(None, description="restrict to these dimensions (default: all analysed)")


@dataclass
class DetectorInput:
    """What a detector may look at.

    series : long DataFrame (date, kpi, dimension, segment, value), sorted, one regular date grid
        per series (no gaps; the loader guarantees it).
    calendar : the observable marketing calendar (date, name, kind) — may be empty.
    baseline : long DataFrame like ``series`` with the truth baseline (oracle only), or None.
    seed : master seed for seeded detectors.
    periods_per_day : 1 for daily data, 24 for hourly …; windows are counted in periods.
    """

    series: pd.DataFrame
    calendar: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["date", "name", "kind"]))
    baseline: pd.DataFrame | None = None
    seed: int = 0
    periods_per_day: int = 1
    slice_threshold_add: float = 0.0   # flags on non-overall slices need |score| >= threshold + this


class Detector(ABC):
    """Base class: ``detect`` (thin, validating) around ``_detect_core`` (the model)."""

    type_name: ClassVar[str]
    config_class: ClassVar[type[DetectorConfig]]
    needs_truth: ClassVar[bool] = False   # reads truth/ (oracle) — never votes in consensus
    votes: ClassVar[bool] = True

    def __init__(self, config: DetectorConfig, name: str | None = None) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.name = name or self.type_name

    @property
    def mode(self) -> str:
        """"causal" when each point is judged only from earlier data, else "in_sample". Detectors
        whose config has a ``mode`` setting follow it; an always-in-sample one overrides this."""
        return "in_sample" if getattr(self.config, "mode", None) == "in_sample" else "causal"

    def detect(self, inp: DetectorInput) -> pd.DataFrame:
        """Score every point of every series; returns the ``detections`` table (OUTPUT_COLUMNS)."""
        series = inp.series
        missing = {"date", "value", *SERIES_KEYS} - set(series.columns)
        if missing:
            raise InputError(f"detector {self.name}: input lacks columns {sorted(missing)}")
        if self.config.kpis is not None:
            series = series[series["kpi"].isin(self.config.kpis)]
        if self.config.dimensions is not None:
            series = series[series["dimension"].isin(self.config.dimensions)]
        # a series that is all NaN (e.g. sessions where traffic is unknown) has nothing to judge
        series = series[series.groupby(SERIES_KEYS, sort=False)["value"].transform("count") > 0]
        series = series.sort_values([*SERIES_KEYS, "date"], kind="stable").reset_index(drop=True)
        if self.needs_truth and inp.baseline is None:
            raise InputError(f"detector {self.name}: needs truth/baseline_daily (simulated data only)")
        if series.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
        core = self._detect_core(series, inp)
        return self._finish(series, core, inp.slice_threshold_add)

    @abstractmethod
    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        """Return a frame aligned with ``series`` (same index) with columns ``score`` (signed,
        z-like, NaN where the detector has no opinion) and ``expected``; optionally ``flag``."""

    def _finish(self, series: pd.DataFrame, core: pd.DataFrame, slice_add: float = 0.0) -> pd.DataFrame:
        score = core["score"].astype(float).replace([np.inf, -np.inf], np.nan).fillna(0.0)
        direction = np.where(score >= 0, "up", "down")
        if "flag" in core:
            flag = np.array(core["flag"].fillna(False).astype(bool), dtype=bool)
        else:
            flag = np.array(score.abs() >= self.config.threshold, dtype=bool)
        if self.config.direction != "both":
            flag &= direction == self.config.direction
        if slice_add:
            on_slice = (series["dimension"] != "overall").to_numpy()
            flag &= ~on_slice | (score.abs() >= self.config.threshold + slice_add).to_numpy()
        flag &= series["value"].notna().to_numpy()
        out = pd.DataFrame({
            "date": series["date"].to_numpy(),
            "kpi": series["kpi"].to_numpy(),
            "dimension": series["dimension"].to_numpy(),
            "segment": series["segment"].to_numpy(),
            "detector": self.name,
            "score": score.round(4).to_numpy(),
            "flag": flag,
            "direction": direction,
            "expected": core["expected"].astype(float).to_numpy(),
            "actual": series["value"].astype(float).to_numpy(),
            "mode": self.mode,
        })
        return out


REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make a detector available under its ``type_name``."""
    if cls.type_name in REGISTRY:
        raise ValueError(f"detector type {cls.type_name!r} registered twice")
    REGISTRY[cls.type_name] = cls
    return cls


def get_detector_class(type_name: str) -> type[Detector]:
    try:
        return REGISTRY[type_name]
    except KeyError:
        raise InputError(f"unknown detector type {type_name!r} (known: {', '.join(sorted(REGISTRY))})") from None


def robust_scale(x: np.ndarray | pd.Series, floor: float = 1e-9) -> float:
    """1.4826 × median absolute deviation (≈ std for Gaussian noise), falling back to the std
    when more than half the values are identical; never below ``floor``."""
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    if a.size < 2:
        return float("nan")
    mad = 1.4826 * float(np.median(np.abs(a - np.median(a))))
    if mad <= floor:
        mad = float(np.std(a))
    return max(mad, floor)


def calendar_mask(series: pd.DataFrame, calendar: pd.DataFrame | None) -> np.ndarray:
    """Rows of ``series`` on a planned marketing-calendar day that concerns their slice.

    A calendar scope of ``all`` concerns every slice; ``channel=email`` concerns the email slice
    and every slice of other dimensions (overall, countries …), not the other channels.
    """
    mask = np.zeros(len(series), dtype=bool)
    if calendar is None or not len(calendar):
        return mask
    dates = series["date"].dt.normalize()
    scopes = calendar["scope"].astype(str) if "scope" in calendar.columns else pd.Series("all", index=calendar.index)
    for scope, cal in calendar.groupby(scopes.to_numpy(), sort=True):
        on_day = dates.isin(pd.DatetimeIndex(cal["date"]).normalize()).to_numpy()
        concerned = np.ones(len(series), dtype=bool)
        for part in str(scope).split(","):
            dim, sep, value = part.partition("=")
            if sep:
                concerned &= ~((series["dimension"] == dim) & (series["segment"] != value)).to_numpy()
        mask |= on_day & concerned
    return mask


def refit_points(n: int, min_train: int, every: int) -> list[int]:
    """Walk-forward fit positions: the first after ``min_train`` periods, then whenever the history
    has doubled, until refits are ``every`` periods apart (early models improve fastest)."""
    points, t = [], min(min_train, n)
    while t < n:
        points.append(t)
        t = t + min(t, every)
    return points


def group_slices(series: pd.DataFrame) -> Any:
    """Iterate over ((kpi, dimension, segment), sub-frame sorted by date)."""
    return series.groupby(SERIES_KEYS, sort=True)
