"""Shared base class, input object and registry of the anomaly detectors.

The detector contract is **raw score -> calibration -> threshold** (``calibrate.py``):

1. a subclass's ``_detect_core`` returns a *raw* score per point (signed: the sign is the
   direction; NaN where it has no opinion), the detector's baseline (``expected``) and optionally
   ``mute`` (points that must never be flagged, e.g. planned calendar days). It never flags;
2. ``detect`` passes the raw scores through the shared causal calibrator (each series against its
   own past raw scores), so ``score`` in the output is the signed z-equivalent of the point's tail
   probability under that series' null;
3. the flag is ``|score| >= threshold``, the threshold coming from the one knob
   ``sensitivity`` (expected false alerts per series per 90 days; ``threshold`` overrides it).

Walk-forward refitting is written once here (``WalkForwardConfig``, ``Detector.fit_blocks``): fit
after ``min_train`` periods, again whenever the history has doubled, then every ``refit_every``
days; each fit sees only earlier periods (at most ``max_train_days`` of them, so the cost stays
linear in the length of the series).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from scipy.special import ndtr, ndtri

from shocklab.catalogue import PRODUCT_DIMENSION, product_watched
from shocklab.errors import InputError

from .calendar import calendar_mask, mute_grid, scope_pairs  # noqa: F401 (re-exported)
from .calibrate import (
    MAX_SCORE,
    SERIES_KEYS,
    CalibrationConfig,
    Wide,
    calibrate_wide,
    threshold_for,
)

OUTPUT_COLUMNS = ["date", "kpi", "dimension", "segment", "detector", "score", "flag",
                  "direction", "expected", "actual", "mode"]
DEFAULT_SENSITIVITY = 0.1


class DetectorConfig(BaseModel):
    """Parameters every detector has; subclasses add their own and pin ``type``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str
    enabled: bool = True
    sensitivity: float | None = Field(
        None,
        gt=0,
        le=90,
        description="expected false alerts per series per 90 "
        "days (null = the analysis-wide `sensitivity`)",
    )
    threshold: float | None = Field(
        None,
        gt=0,
        le=100,
        description="flag when |calibrated score| >= this; "
        "overrides sensitivity (null = from sensitivity)",
    )
    direction: Literal["both", "up", "down"] = "both"
    kpis: list[str] | None = Field(
        None, description="restrict to these KPIs (default: all analysed KPIs; product_watch: "
        "its own series orders, price)"
    )
    dimensions: list[str] | None = Field(
        None, description="restrict to these analysed dimensions (default: all analysed; "
        "product_watch: product, and category / overall for the list-price indexes)"
    )
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    mute_calendar: bool = Field(
        True,
        description="never flag a planned marketing-calendar day of the series' "
        "slice (expected moves; a flag there is a false alarm)",
    )

    @model_validator(mode="before")
    @classmethod
    def _calibration_onto_defaults(cls, data: Any) -> Any:
        """A calibration mapping that names only some settings (``--set
        detectors.rolling_zscore.calibration.tail_gain=1.2``, or one line of YAML) keeps this
        detector's shipped values for the others: without this, the unnamed ones fell back to
        ``CalibrationConfig``'s plain defaults (a normal tail instead of the fitted Student-t),
        silently. Applies to ``calibration`` and to per-window maps of calibrations (a window not
        named keeps its shipped calibration)."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, fld in cls.model_fields.items():
            given = data.get(name)
            if not isinstance(given, dict) or fld.default_factory is None:
                continue
            default = fld.default_factory()
            if isinstance(default, CalibrationConfig):
                out[name] = {**default.model_dump(exclude_defaults=True), **given}
            elif isinstance(default, dict) and default and all(
                isinstance(v, CalibrationConfig) for v in default.values()
            ):
                named = {str(k): k for k in given}   # windows: YAML/--set keys may be text
                merged: dict[Any, Any] = {}
                for key, base in default.items():    # shipped windows first, in their order
                    value = given.get(named.get(str(key), key), base)
                    merged[key] = ({**base.model_dump(exclude_defaults=True), **value}
                                   if isinstance(value, dict) else value)
                done = {str(k) for k in default}
                merged.update({k: v for k, v in given.items() if str(k) not in done})
                out[name] = merged
        return out


def check_min_periods(cfg: Any) -> None:
    """``min_periods`` ("no score before this many days") counted inside the trailing ``window``:
    more than ``window`` never comes together, so every score was 0 (count_likelihood,
    product_watch's orders), exit 0 and the consensus short of that detector's votes."""
    if cfg.min_periods > cfg.window:
        raise ValueError(f"min_periods ({cfg.min_periods}) exceeds window ({cfg.window}): a score "
                         "needs min_periods days within the trailing window, so there would "
                         "never be one (raise window or lower min_periods)")


class WalkForwardConfig(DetectorConfig):
    """Settings of detectors that fit a model: walk-forward (causal) or in-sample."""

    mode: Literal["walk_forward", "in_sample"] = "walk_forward"
    min_train: int = Field(
        28, ge=14, le=1_000_000, description="periods of history before the first fit"
    )
    refit_every: int = Field(
        182,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("refit_every", "retrain_every"),
        description="longest gap between walk-forward refits, in days (refits also "
        "happen whenever the history has doubled)",
    )
    max_train_days: float | None = Field(
        None,
        ge=1,   # under a day, daily data's fits saw no period at all: every score 0, run ok
        le=100_000,
        description="each fit sees at most this many days before it, at least 1 (null = all "
        "history)",
    )


@dataclass
class DetectorInput:
    """What a detector may look at.

    series : long DataFrame (date, kpi, dimension, segment, value), sorted, one regular date grid
        per series (no gaps; the loader guarantees it).
    calendar : the observable marketing calendar (date, name, kind) — may be empty.
    baseline : long DataFrame like ``series`` with the truth baseline (oracle only), or None.
    seed : master seed for seeded detectors.
    periods_per_day : 1 for daily data, 24 for hourly …; windows are counted in periods.
    sensitivity : expected false alerts per series per 90 days (detectors without their own).
    counts : optional (date, dimension, segment, orders, sessions) of every slice: the
        count-aware noise floors of ratio KPIs (conversion, AOV, revenue) read them.
    exposure : optional (date, dimension, segment, parent, parent_orders) of product series:
        the orders of the product's category each day (``watch.product_grid``,
        ``ProductGrid.frames``).
    """

    series: pd.DataFrame
    calendar: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["date", "name", "kind"])
    )
    baseline: pd.DataFrame | None = None
    seed: int = 0
    periods_per_day: int = 1
    slice_threshold_add: float = 0.0  # flags on non-overall slices need |score| >= threshold + this
    sensitivity: float = DEFAULT_SENSITIVITY
    counts: pd.DataFrame | None = None
    exposure: pd.DataFrame | None = None
    price_indexes: bool = False  # series of KPI ``price`` are the list-price indexes (products)


class Detector(ABC):
    """Base class: ``detect`` (validate, calibrate, threshold) around ``_detect_core`` (raw
    scores)."""

    type_name: ClassVar[str]
    config_class: ClassVar[type[DetectorConfig]]
    needs_truth: ClassVar[bool] = False  # reads truth/ (oracle) — never votes in consensus
    votes: ClassVar[bool] = True
    calibrated_raw: ClassVar[bool] = False  # the core already emits the calibrated scale (oracle)
    # product series (dimension ``product``) and the price indexes are judged only by detectors
    # made for them; the others leave them out unless their ``dimensions`` name ``product``
    # (``sees_products``)
    watches_products: ClassVar[bool] = False
    only_products: ClassVar[bool] = False   # and nothing else (product series, price indexes)

    def __init__(self, config: DetectorConfig, name: str | None = None) -> None:
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.name = name or self.type_name

    @property
    def mode(self) -> str:
        """ "causal" when each point is judged only from earlier data, else "in_sample". Detectors
        whose config has a ``mode`` setting follow it; an always-in-sample one overrides this."""
        return "in_sample" if getattr(self.config, "mode", None) == "in_sample" else "causal"

    @property
    def window_power(self) -> float:
        """Exponent of the number of windows in ``combine_windows`` (1 = Bonferroni)."""
        return 1.0

    def threshold(self, inp: DetectorInput) -> float:
        """The cut on the calibrated scale: ``threshold`` if set, else from the sensitivity."""
        if self.config.threshold is not None:
            return float(self.config.threshold)
        sens = self.config.sensitivity if self.config.sensitivity is not None else inp.sensitivity
        return threshold_for(sens, inp.periods_per_day, self.config.direction)

    def fit_blocks(self, n: int, ppd: int = 1) -> list[tuple[int, int, int]]:
        """Walk-forward plan over ``n`` periods: (train_start, train_end = block start, block end).
        ``in_sample``: one block, trained and scored on everything."""
        cfg = self.config
        if getattr(cfg, "mode", "walk_forward") == "in_sample":
            return [(0, n, 0)] if n else []
        # the first fit after min_train periods (at least one day), then doubling, then every
        # refit_every days
        first = max(cfg.min_train, ppd if ppd > 1 else 0)  # type: ignore[attr-defined]
        pts = refit_points(n, first, max(1, int(cfg.refit_every * ppd)))  # type: ignore[attr-defined]
        cap = getattr(cfg, "max_train_days", None)
        out = []
        for s, e in zip(pts, [*pts[1:], n][: len(pts)], strict=True):
            lo = max(0, s - int(cap * ppd)) if cap else 0
            out.append((lo, s, e))
        return out

    def detect(self, inp: DetectorInput) -> pd.DataFrame:
        """Score every point of every series; returns the ``detections`` table (OUTPUT_COLUMNS)."""
        series = inp.series
        missing = {"date", "value", *SERIES_KEYS} - set(series.columns)
        if missing:
            raise InputError(f"detector {self.name}: input lacks columns {sorted(missing)}")
        if self.config.kpis is not None:
            series = series[series["kpi"].isin(self.config.kpis)]
        theirs = product_watched(series["dimension"], series["kpi"], inp.price_indexes)
        if self.only_products:   # its own series, also on the dimensions it names
            series = series[theirs]
        elif not sees_products(type(self), self.config):
            series = series[~theirs]   # also on dimensions it names: a category's price index
        if self.config.dimensions is not None:
            series = series[series["dimension"].isin(self.config.dimensions)]
        # a series that is all NaN (e.g. sessions where traffic is unknown) has nothing to judge
        series = series[series.groupby(SERIES_KEYS, sort=False)["value"].transform("count") > 0]
        series = series.sort_values([*SERIES_KEYS, "date"], kind="stable").reset_index(drop=True)
        if self.needs_truth and inp.baseline is None:
            raise InputError(
                f"detector {self.name}: needs truth/baseline_daily (simulated data only)"
            )
        if series.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
        try:
            core = self._detect_core(series, inp)
            if "flag" in core:
                raise TypeError(
                    f"detector {self.name}: _detect_core returns raw scores only, not flags"
                )
            return self._finish(series, core, inp)
        finally:
            self._wide = None

    def wide(self, series: pd.DataFrame) -> Wide:
        """``Wide.of(series)``, built once per ``detect`` call for the series it judges (the core
        and the calibration of each score column share it)."""
        cached = getattr(self, "_wide", None)
        if cached is not None and cached[0] is series:
            return cached[1]
        wide = Wide.of(series)
        self._wide = (series, wide)
        return wide

    @abstractmethod
    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        """Return a frame aligned with ``series`` (same index) with columns ``score`` (raw, signed,
        NaN where the detector has no opinion) and ``expected``; optionally ``mute`` (bool),
        ``score@<label>`` (more raw scores, each calibrated on its own and Bonferroni-combined)
        and ``keep@<label>`` (bool: where False, that score counts as 0 after calibration — its
        raw values still set the series' calibration scale, so a veto cannot shrink it)."""

    def calibration_for(self, column: str) -> CalibrationConfig:
        """Calibration of one score column of the core (``score`` or ``score@<window>``)."""
        return self.config.calibration

    def calibrate(
        self, series: pd.DataFrame, raw: np.ndarray, ppd: int = 1, column: str = "score"
    ) -> np.ndarray:
        """Raw scores (aligned with ``series``) -> calibrated scores, each series on its own
        past."""
        if self.calibrated_raw:
            return raw
        wide = self.wide(series)
        return wide.back(calibrate_wide(wide.to(raw), self.calibration_for(column), ppd))

    def _finish(self, series: pd.DataFrame, core: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cols = ["score", *sorted(c for c in core.columns if c.startswith("score@"))]
        cals = [
            self.calibrate(
                series,
                core[c].astype(float).replace([np.inf, -np.inf], np.nan).to_numpy(),
                inp.periods_per_day,
                c,
            )
            for c in cols
        ]
        for i, c in enumerate(cols):  # evidence the core vetoed after calibration (see below)
            keep = "keep" + c[len("score"):]
            if keep in core:
                cals[i] = np.where(core[keep].fillna(True).to_numpy(bool), cals[i], 0.0)
        cal = cals[0] if len(cals) == 1 else combine_windows(np.vstack(cals), self.window_power)
        score = pd.Series(cal, index=series.index).replace([np.inf, -np.inf], np.nan).fillna(0.0)
        direction = np.where(score >= 0, "up", "down")
        thr = self.threshold(inp)
        flag = np.array(score.abs() >= thr, dtype=bool)
        if "mute" in core:
            flag &= ~np.asarray(core["mute"].fillna(False), dtype=bool)
        if self.config.mute_calendar and inp.calendar is not None and len(inp.calendar):
            flag &= ~calendar_mask(series, inp.calendar)
        if self.config.direction != "both":
            flag &= direction == self.config.direction
        if inp.slice_threshold_add:
            on_slice = (series["dimension"] != "overall").to_numpy()
            flag &= ~on_slice | (score.abs() >= thr + inp.slice_threshold_add).to_numpy()
        flag &= series["value"].notna().to_numpy()
        n = len(series)
        out = pd.DataFrame(
            {
                "date": series["date"].to_numpy(),
                "kpi": _text_column(series["kpi"]),
                "dimension": _text_column(series["dimension"]),
                "segment": _text_column(series["segment"]),
                "detector": _repeated_text([self.name], np.zeros(n, dtype=np.intp)),
                "score": score.round(4).to_numpy(),
                "flag": flag,
                "direction": _repeated_text(["up", "down"], (direction != "up").view(np.int8)),
                "expected": core["expected"].astype(float).to_numpy(),
                "actual": series["value"].astype(float).to_numpy(),
                "mode": _repeated_text([self.mode], np.zeros(n, dtype=np.intp)),
            }
        )
        return out


# the dtype pandas gives a column of Python strings (the output's text columns)
_TEXT_DTYPE = pd.Series(np.array(["a"], dtype=object)).dtype


def _text_column(col: pd.Series) -> Any:
    """``col.to_numpy()`` for a column of the output frame: a text column already of the dtype
    pandas would give those strings is passed as its array (same column, without a round trip
    through Python objects)."""
    return col.array if col.dtype == _TEXT_DTYPE else col.to_numpy()


def _repeated_text(values: list[str], codes: np.ndarray) -> Any:
    """``np.array(values, dtype=object)[codes]`` as a column of the dtype pandas gives text
    (the strings taken in Arrow, not one Python object per row)."""
    if isinstance(_TEXT_DTYPE, pd.StringDtype):
        return pd.array(values, dtype=_TEXT_DTYPE).take(codes.astype(np.intp, copy=False))
    return np.asarray(values, dtype=object)[codes]


def sees_products(cls: type[Detector], config: DetectorConfig) -> bool:
    """Does a detector of class ``cls`` with ``config`` judge product series and the list-price
    indexes (``shocklab.catalogue.product_watched``)? Its class is made for them, or its
    ``dimensions`` name ``product``; every other detector leaves them out."""
    dims = config.dimensions
    return cls.watches_products or (dims is not None and PRODUCT_DIMENSION in dims)


def combine_windows(scores: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Calibrated scores of several windows [window, point] -> one calibrated score per point:
    the window with the smallest two-sided tail probability p, Bonferroni-adjusted for the
    windows that have a score at that point (``min(1, m p)``), as the signed normal score of
    that probability. Under the null ``P(|s| >= t) <= 2 (1 - Phi(t))`` whatever the correlation
    of the windows (conservative), so the sensitivity knob keeps its meaning. ``power`` < 1
    counts ``m ** power`` tests instead (correlated windows are fewer independent looks; a
    detector setting it must show its knob still holds on shock-free data)."""
    a = np.abs(scores)
    m = np.isfinite(a).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN points
        best = np.nanargmax(np.where(np.isfinite(a), a, -1.0), axis=0)
    top = np.take_along_axis(scores, best[None, :], axis=0)[0]
    p = np.minimum(2 * ndtr(-np.abs(top)) * np.maximum(m, 1) ** power, 1.0)
    s = np.sign(top) * -ndtri(np.maximum(p / 2, 1e-300))
    return np.where(m > 0, np.clip(s, -MAX_SCORE, MAX_SCORE), np.nan)


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
        raise InputError(
            f"unknown detector type {type_name!r} (known: {', '.join(sorted(REGISTRY))})"
        ) from None


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
