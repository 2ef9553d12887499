"""Isolation Forest on engineered, scale-free features, pooled over series.

Features per point (all from data before the point, except the point's own value): z against the
trailing window, ratio to the trailing median, change versus one week earlier, the slice's share
of the overall KPI relative to its trailing share (channel mix), and the position in the week —
the weekday for daily data; for sub-daily data the hour of day and the weekday, plus the change
versus one day earlier. One model for all series, refitted walk-forward on past rows only (the
base class's plan; at most ``max_train_rows`` rows per fit, so the cost stays linear).

Raw score: the tail probability of the isolation score among the training rows' scores (empirical
up to their 95th percentile, an exponential tail fitted to the top 5 % beyond it), as the normal
quantile of that probability, signed by the direction of the move. The shared calibrator then
puts it on each series' own scale.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.special import ndtri

from shocklab.seeding import derive_int_seed

from .base import Detector, DetectorInput, WalkForwardConfig, register
from .calibrate import CalibrationConfig, Wide, rolling, shift

DAILY_FEATURES = ["z", "ratio_median", "change_week", "share_dev", "dow"]
SUBDAILY_FEATURES = [*DAILY_FEATURES, "change_day", "hour"]


class IsolationForestConfig(WalkForwardConfig):
    type: Literal["isolation_forest"] = "isolation_forest"
    n_estimators: int = Field(100, ge=10, le=2000)
    max_samples: int = Field(256, ge=16, le=100_000)
    window: int = Field(
        28, ge=7, le=1_000_000, description="trailing periods for the z / median features"
    )
    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(tail_gain=1.14),
        description="tail fitted on shock-free train worlds (seeds 1-3)",
    )
    max_train_rows: int = Field(
        4096,
        ge=100,
        le=10_000_000,
        description="rows a fit and its score "
        "reference use at most (evenly thinned, the latest kept)",
    )


def features(series: pd.DataFrame, window: int, ppd: int, wide: Wide | None = None
             ) -> tuple[pd.DataFrame, list[str]]:
    """Scale-free features of every row (aligned with ``series``), computed on the wide matrix
    (``wide``: ``Wide.of(series)`` when already built)."""
    wide = Wide.of(series) if wide is None else wide
    x = wide.to(series["value"].to_numpy(dtype=float))
    mp = max(window // 2, 2)
    past = shift(x, 1)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = rolling(past, window, mp, "mean"), rolling(past, window, mp, "std")
        med = rolling(past, window, mp, "median")
        week_ago = shift(x, 7 * ppd)
        overall = {k: i for i, (k, d, _) in enumerate(wide.keys) if d == "overall"}
        tot_idx = np.array([overall.get(k, -1) for k, _, _ in wide.keys])
        tot = np.where(tot_idx >= 0, x[:, np.maximum(tot_idx, 0)], np.nan)
        share = x / np.where(tot == 0, np.nan, tot)
        share_med = rolling(shift(share, 1), window, mp, "median")
        is_overall = np.array([d == "overall" for _, d, _ in wide.keys])
        cols = {
            "z": (x - mean) / np.where(std > 0, std, np.nan),
            "ratio_median": x / np.where(med != 0, med, np.nan) - 1,
            "change_week": x / np.where(week_ago != 0, week_ago, np.nan) - 1,
            "share_dev": np.where(
                is_overall[None, :], 0.0, share / np.where(share_med != 0, share_med, np.nan) - 1
            ),
        }
        if ppd > 1:
            day_ago = shift(x, ppd)
            cols["change_day"] = x / np.where(day_ago != 0, day_ago, np.nan) - 1
    names = SUBDAILY_FEATURES if ppd > 1 else DAILY_FEATURES
    feats = pd.DataFrame({k: wide.back(v) for k, v in cols.items()}, index=series.index)
    feats["dow"] = series["date"].dt.day_of_week.astype(float).to_numpy()
    if ppd > 1:
        feats["hour"] = series["date"].dt.hour.astype(float).to_numpy()
    return feats[names].clip(-20, 20), names


def tail_z(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """|z| whose two-sided normal tail equals P(ref >= x): empirical up to the 95th percentile of
    ``ref``, exponential beyond it (fitted to the excesses over that percentile)."""
    ref = np.sort(ref)
    n = ref.size
    p = (n - np.searchsorted(ref, x, side="left") + 1) / (n + 1)
    q = float(np.quantile(ref, 0.95))
    exc = ref[ref > q] - q
    beta = float(exc.mean()) if exc.size else 0.0
    if beta > 0:
        p = np.where(x > q, 0.05 * np.exp(-(x - q) / beta), p)
    return -ndtri(np.clip(p, 1e-300, 1.0) / 2)


@register
class IsolationForestDetector(Detector):
    type_name = "isolation_forest"
    config_class = IsolationForestConfig

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        # imported on use (~0.25 s): the stage scheduler runs this detector in its worker, so the
        # analysis's main process never needs scikit-learn (analytics.detect_ahead)
        from sklearn.ensemble import IsolationForest as _SkIsolationForest

        cfg: IsolationForestConfig = self.config  # type: ignore[assignment]
        feats, names = features(series, cfg.window, inp.periods_per_day, self.wide(series))
        ok = feats.notna().all(axis=1).to_numpy() & series["value"].notna().to_numpy()
        score = np.full(len(series), np.nan)
        grid = pd.DatetimeIndex(np.unique(series["date"].to_numpy()))
        t_of = grid.get_indexer(series["date"])
        X_all = feats.to_numpy()
        rows = np.flatnonzero(ok)
        t_rows = t_of[rows]
        for t0, t1, t2 in self.fit_blocks(len(grid), inp.periods_per_day):
            if cfg.mode == "in_sample":
                train, test = rows, rows
            else:
                train = rows[(t_rows >= t0) & (t_rows < t1)]
                test = rows[(t_rows >= t1) & (t_rows < t2)]
            if train.size > cfg.max_train_rows:  # evenly thinned, always keeping the latest row
                train = train[
                    np.linspace(train.size - 1, 0, cfg.max_train_rows).round().astype(int)[::-1]
                ]
            if train.size < 20 or test.size == 0:
                continue
            model = _SkIsolationForest(
                n_estimators=cfg.n_estimators,
                max_samples=min(cfg.max_samples, train.size),
                contamination="auto",
                random_state=derive_int_seed(inp.seed, f"detector.{self.name}"),
            )
            model.fit(X_all[train])
            ref = (
                train
                if train.size <= 4096
                else train[np.linspace(0, train.size - 1, 4096).round().astype(int)]
            )
            # higher = more isolated; the reference rows (the null) and the block's in one call:
            # each row's score is its own (the same floats as two calls), and every call walks
            # the 100 trees once more (~0.2 s of the default run)
            raw = -model.score_samples(X_all[np.concatenate([ref, test])])
            raw_train, raw_test = raw[: ref.size], raw[ref.size:]
            sign = np.where(X_all[test, names.index("ratio_median")] < 0, -1.0, 1.0)
            score[test] = sign * tail_z(raw_train, raw_test)
        expected = series["value"].astype(float) / (1 + feats["ratio_median"])  # trailing median
        return pd.DataFrame({"score": score, "expected": expected}, index=series.index)
