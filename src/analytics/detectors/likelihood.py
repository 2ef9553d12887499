"""Score likelihood: a detector's calibrated score judged against the series' own recent scores.

A wrapper (type ``likelihood``) around any other detector, used on ``--kpis`` input only (the
config section ``external.likelihood`` wraps every voting detector; store data never sees it).
The idea is numenta's *anomaly likelihood* (Ahmad et al. 2017, NAB's ``numenta`` detector): a
score counts as anomalous relative to the recent distribution of the detector's own scores, so
a series whose scores are routinely high (spiky machine metrics: a CPU that bursts every hour)
needs a larger score than a quiet one, while a quiet series is judged exactly as before.

For each series and period ``t``, with ``s`` the wrapped detector's calibrated score:

1. evidence ``m_t``: the mean of ``|s|`` over the last ``short`` periods (1 = the point alone;
   more asks for persistence, as numenta's short averaging window does);
2. the *recent distribution*: mean ``mu_t`` and standard deviation ``sd_t`` of the same evidence
   computed on ``min(|s|, cap)``, over the previous ``window_days`` days (``t`` itself excluded;
   periods without an opinion — a score of exactly 0 — left out), once ``min_history`` such
   periods exist; the cap keeps one past event from raising the bar for a week, while a habit of
   bursts does raise it;
3. ``p_fit = P(N(0, 1) >= (m_t - mu_t) / sd_t)`` (numenta's Gaussian tail on its own scores) and
   the nominal two-sided ``p_null = 2 (1 - Phi(|s_t|))`` of the calibrated score;
4. the output score is ``sign(s_t) Phi^-1(1 - max(p_null, p_fit) / 2)``.

So the output is never larger in magnitude than the input (``p >= p_null``): on a series whose
scores behave as the calibrator's null assumes, ``p_fit`` is tiny wherever ``|s|`` reaches a
threshold, so nothing changes (the sensitivity knob keeps its meaning as an upper bound on false
alerts); before ``min_history`` periods the input passes through unchanged. A flag needs the
wrapped detector's flag (its mutes, direction, calendar and gaps) and ``|output| >=`` its
threshold. Vectorized over series (``calibrate.Wide``, pandas rolling windows); linear in the
number of periods.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtr, ndtri

from shocklab.configio import validate
from shocklab.errors import InputError

from .base import Detector, DetectorConfig, DetectorInput, get_detector_class, register
from .calibrate import MAX_SCORE, Wide, rolling, shift


class LikelihoodSettings(BaseModel):
    """The wrapper's own settings (also the shape of ``external.likelihood``)."""

    model_config = ConfigDict(extra="forbid")

    window_days: float = Field(
        7.0, gt=0, le=10_000, description="days of the series' own past scores the current one "
        "is judged against"
    )
    min_history: int = Field(
        48, ge=2, le=1_000_000,
        description="past scored periods before the recent distribution is used (before: the "
        "score passes through)",
    )
    short: int = Field(
        1, ge=1, le=10_000,
        description="periods averaged into the current evidence (1 = the point alone)",
    )
    cap: float = Field(
        10.0, gt=0, le=MAX_SCORE,
        description="past |scores| are capped here before they enter the recent distribution "
        "(the current evidence is not capped)",
    )


class LikelihoodConfig(LikelihoodSettings, DetectorConfig):
    type: Literal["likelihood"] = "likelihood"
    enabled: bool = Field(
        False, description="off unless `external.likelihood` wraps the voters of --kpis input"
    )
    inner: dict[str, Any] | None = Field(
        default_factory=lambda: {"type": "rolling_zscore"},
        description="settings of the wrapped detector (as under `detectors`); its sensitivity, "
        "threshold, direction, KPIs and calibration apply (the wrapper's own are not read)",
    )


def likelihood_scores(
    score: np.ndarray, ppd: int, settings: LikelihoodSettings
) -> np.ndarray:
    """[period, series] calibrated scores -> the same judged against each series' own recent
    scores (module docstring). NaN stays NaN."""
    s = np.asarray(score, dtype=float)
    a = np.where(np.abs(s) > 0, np.abs(s), np.nan)   # exactly 0: no opinion (warm-up, gaps)
    a_cap = np.minimum(a, settings.cap)

    def mean_short(x: np.ndarray) -> np.ndarray:
        return rolling(x, settings.short, 1, "mean") if settings.short > 1 else x

    m = mean_short(a)                          # the current evidence is not capped
    past = shift(mean_short(a_cap), 1)
    win = max(int(round(settings.window_days * ppd)), settings.min_history)
    mu = rolling(past, win, settings.min_history, "mean")
    sd = rolling(past, win, settings.min_history, "std")
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (m - mu) / np.maximum(sd, 1e-9)
    p_fit = np.where(np.isfinite(z), ndtr(-z), 0.0)   # no distribution yet: no evidence against
    p_null = 2 * ndtr(-np.abs(s))
    p = np.maximum(p_null, p_fit)
    out = np.sign(s) * np.minimum(-ndtri(np.maximum(p / 2, 1e-300)), MAX_SCORE)
    return np.where(np.isfinite(s), out, np.nan)


@register
class LikelihoodDetector(Detector):
    """Wraps ``config.inner`` (module docstring); the output keeps the inner detector's name,
    baseline and mode."""

    type_name = "likelihood"
    config_class = LikelihoodConfig

    def _inner(self) -> Detector:
        raw = self.config.inner
        if not raw or "type" not in raw:
            raise InputError(f"detector {self.name}: likelihood needs `inner` with a `type`")
        if raw["type"] == self.type_name:
            raise InputError(f"detector {self.name}: likelihood cannot wrap itself")
        cls = get_detector_class(raw["type"])
        cfg = validate(cls.config_class, raw, f"detector {self.name}.inner")
        return cls(cfg, name=self.name)

    @property
    def mode(self) -> str:
        return self._inner().mode

    def detect(self, inp: DetectorInput) -> pd.DataFrame:
        inner = self._inner()
        out = inner.detect(inp)
        if out.empty:
            return out
        wide = Wide.of(out)   # rows come sorted by series, then date (Detector.detect)
        s = out["score"].to_numpy(float)
        adj = wide.back(likelihood_scores(wide.to(s), inp.periods_per_day, self.config))
        adj = np.where(np.isfinite(adj), adj, s)
        out = out.copy()
        out["score"] = np.round(adj, 4)
        thr = inner.threshold(inp) + np.where(
            out["dimension"].to_numpy() != "overall", inp.slice_threshold_add, 0.0
        )
        out["flag"] = out["flag"].to_numpy(bool) & (np.abs(adj) >= thr)
        return out

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        raise NotImplementedError  # detect() delegates to the wrapped detector
