"""Oracle: z of each point against the simulator's noise-free, shock-free baseline.

Only possible on simulated data (reads truth/baseline_daily through ``DetectorInput.baseline``).
It is the reference for the best achievable recall and never votes in the consensus.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .base import SERIES_KEYS, Detector, DetectorConfig, DetectorInput, register, robust_scale


class OracleConfig(DetectorConfig):
    type: Literal["oracle"] = "oracle"


@register
class Oracle(Detector):
    type_name = "oracle"
    config_class = OracleConfig
    needs_truth = True
    votes = False

    @property
    def mode(self) -> str:
        return "in_sample"  # the residual spread is estimated on the whole series

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        base = inp.baseline
        assert base is not None  # checked in detect()
        merged = series[["date", *SERIES_KEYS]].merge(
            base[["date", *SERIES_KEYS, "value"]].rename(columns={"value": "expected"}),
            on=["date", *SERIES_KEYS], how="left", validate="one_to_one")
        merged.index = series.index
        resid = series["value"].astype(float) - merged["expected"].astype(float)
        # noise scale per series: robust spread of the residuals (shocks are rare, so MAD ignores them)
        scale = resid.groupby([series[k] for k in SERIES_KEYS], sort=False).transform(robust_scale)
        score = resid / scale.where(scale > 0)
        return pd.DataFrame({"score": score.replace([np.inf, -np.inf], np.nan),
                             "expected": merged["expected"]}, index=series.index)
