"""Isolation Forest on engineered, scale-free daily features.

Features per point (all from data before the point, except the point's own value): z against the
trailing window, ratio to the trailing median, change versus one week earlier, day of week, and
the slice's share of the overall KPI relative to its trailing share (channel mix). All series
are pooled into one model, refitted walk-forward on past rows
only (one model per refit for all series: the features are scale-free, and fits are the cost).
The raw isolation score is put on a z-like scale against the training scores.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.ensemble import IsolationForest as _SkIsolationForest

from shocklab.seeding import derive_int_seed

from .base import (
    SERIES_KEYS,
    Detector,
    DetectorConfig,
    DetectorInput,
    refit_points,
    register,
    robust_scale,
)

FEATURES = ["z", "ratio_median", "change_week", "dow", "share_dev"]


class IsolationForestConfig(DetectorConfig):
    type: Literal["isolation_forest"] = "isolation_forest"
    threshold: float = Field(3.0, gt=0, le=100)
    contamination: float = Field(0.005, gt=0, le=0.5, description="share of training points treated as anomalous; "
                                                                  "a point is flagged only above that training quantile")
    n_estimators: int = Field(100, ge=10, le=2000)
    max_samples: int = Field(256, ge=16, le=100_000)
    window: int = Field(28, ge=7, le=10_000, description="trailing periods for the z / median features")
    mode: Literal["walk_forward", "in_sample"] = "walk_forward"
    min_train: int = Field(28, ge=14, le=100_000, description="periods of history before the first fit")
    refit_every: int = Field(182, ge=1, le=100_000, description="longest gap between walk-forward refits")


def _features(series: pd.DataFrame, window: int, week: int) -> pd.DataFrame:
    keys = [series[k] for k in SERIES_KEYS]
    value = series["value"].astype(float)
    past = value.groupby(keys, sort=False).shift(1)
    g = past.groupby(keys, sort=False)
    mean = g.transform(lambda s: s.rolling(window, min_periods=window // 2).mean())
    std = g.transform(lambda s: s.rolling(window, min_periods=window // 2).std())
    med = g.transform(lambda s: s.rolling(window, min_periods=window // 2).median())
    week_ago = value.groupby(keys, sort=False).shift(week)
    overall = series[series["dimension"] == "overall"][["date", "kpi", "value"]].rename(columns={"value": "tot"})
    tot = series[["date", "kpi"]].merge(overall, on=["date", "kpi"], how="left")["tot"].to_numpy()
    share = value / np.where(tot == 0, np.nan, tot)
    share_past = share.groupby(keys, sort=False).shift(1)
    share_med = share_past.groupby(keys, sort=False).transform(
        lambda s: s.rolling(window, min_periods=window // 2).median())
    with np.errstate(divide="ignore", invalid="ignore"):
        feats = pd.DataFrame({
            "z": (value - mean) / std.where(std > 0),
            "ratio_median": value / med.where(med != 0) - 1,
            "change_week": value / week_ago.where(week_ago != 0) - 1,
            "dow": series["date"].dt.day_of_week.astype(float),
            "share_dev": (share / share_med.where(share_med != 0) - 1).where(series["dimension"] != "overall", 0.0),
        }, index=series.index)
    return feats.clip(-20, 20)


@register
class IsolationForestDetector(Detector):
    type_name = "isolation_forest"
    config_class = IsolationForestConfig

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: IsolationForestConfig = self.config  # type: ignore[assignment]
        feats = _features(series, cfg.window, week=7 * inp.periods_per_day)
        ok = feats.notna().all(axis=1).to_numpy() & series["value"].notna().to_numpy()
        score = np.full(len(series), np.nan)
        flag = np.zeros(len(series), dtype=bool)
        dates = series["date"].to_numpy()
        X_all = feats.to_numpy()
        rows = np.flatnonzero(ok)
        grid = np.unique(dates[rows])
        if cfg.mode == "in_sample":
            blocks = [(rows, rows)]
        else:
            pts = refit_points(len(grid), cfg.min_train, cfg.refit_every)
            blocks = []
            for s, e in zip(pts, [*pts[1:], len(grid)][:len(pts)], strict=True):
                lo, hi = grid[s], grid[e - 1]
                blocks.append((rows[dates[rows] < lo], rows[(dates[rows] >= lo) & (dates[rows] <= hi)]))
        for train, test in blocks:
            if train.size < 20 or test.size == 0:
                continue
            # contamination="auto": sklearn then skips scoring the training set; the cut below
            # applies ``contamination`` to the training scores computed here anyway
            model = _SkIsolationForest(
                n_estimators=cfg.n_estimators, max_samples=min(cfg.max_samples, train.size),
                contamination="auto", random_state=derive_int_seed(inp.seed, f"detector.{self.name}"))
            model.fit(X_all[train])
            raw_train = -model.score_samples(X_all[train])   # higher = more isolated
            raw_test = -model.score_samples(X_all[test])
            z = np.maximum((raw_test - float(np.median(raw_train))) / robust_scale(raw_train), 0.0)
            cut = float(np.quantile(raw_train, 1 - cfg.contamination))
            sign = np.where(X_all[test, FEATURES.index("ratio_median")] < 0, -1.0, 1.0)
            score[test] = sign * z
            flag[test] = (raw_test >= cut) & (z >= cfg.threshold)
        expected = series["value"].astype(float) / (1 + feats["ratio_median"])  # trailing median
        return pd.DataFrame({"score": score, "expected": expected, "flag": flag}, index=series.index)
