"""likelihood: a detector's calibrated score judged against the series' own recent scores —
unchanged on null-like scores, lowered on a series whose scores are routinely high (bursts), a
new extreme still flagged; causal; wraps the voters of --kpis input only
(``external.likelihood``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.config import load_analysis_config
from analytics.detectors import DetectorInput
from analytics.detectors.calibrate import threshold_for
from analytics.detectors.likelihood import (
    LikelihoodConfig,
    LikelihoodDetector,
    LikelihoodSettings,
    likelihood_scores,
)
from analytics.external import external_profile
from shocklab.errors import InputError

PPD = 288
N = PPD * 10
THR = threshold_for(10, PPD)


def _null(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, N)


def test_null_scores_pass_through_and_never_grow():
    s = _null()
    out = likelihood_scores(s[:, None], PPD, LikelihoodSettings())[:, 0]
    assert np.all(np.abs(out) <= np.abs(s) + 1e-9)
    assert np.array_equal(np.sign(out), np.sign(s))
    big = np.abs(s) >= 2.8
    assert big.sum() >= 5
    np.testing.assert_allclose(out[big], s[big], atol=1e-6)   # the nominal tail dominates


def test_bursty_series_needs_a_larger_score_but_a_new_extreme_still_counts():
    rng = np.random.default_rng(1)
    s = rng.normal(0, 1, N)
    bursts = rng.random(N) < 0.1
    s[bursts] = rng.uniform(3, 10, bursts.sum())          # routine high scores
    s[N - 100] = 25.0                                     # something new
    out = likelihood_scores(s[:, None], PPD, LikelihoodSettings())[:, 0]
    late = np.arange(N) > 2 * PPD
    before = int((np.abs(s[late]) >= THR).sum())
    after = int((np.abs(out[late]) >= THR).sum())
    assert after < before / 2
    assert abs(out[N - 100]) >= THR


def test_pass_through_before_min_history_and_causal():
    s = _null(2)
    s[10] = 6.0
    cfg = LikelihoodSettings(min_history=48)
    out = likelihood_scores(s[:, None], PPD, cfg)[:, 0]
    assert out[10] == pytest.approx(6.0)
    s2 = s.copy()
    s2[2000:] = 40.0   # the future cannot change the past
    out2 = likelihood_scores(s2[:, None], PPD, cfg)[:, 0]
    np.testing.assert_array_equal(out[:2000], out2[:2000])


def test_nan_and_zero_are_no_opinion():
    s = _null(3)
    s[:50] = 0.0
    s[60:70] = np.nan
    out = likelihood_scores(s[:, None], PPD, LikelihoodSettings())[:, 0]
    assert np.isnan(out[60:70]).all()
    assert (out[:50] == 0).all()


def _series(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=len(values), freq="5min"),
                         "kpi": "value", "dimension": "overall", "segment": "all",
                         "value": values})


def test_wrapper_flags_are_a_subset_of_the_inner_detector_flags():
    rng = np.random.default_rng(4)
    x = 20 + rng.normal(0, 1, N)
    x[rng.random(N) < 0.02] += 15
    inner = {"type": "level_shift", "enabled": True, "window": 1, "reference": 12,
             "variance": False}
    inp = DetectorInput(series=_series(x), periods_per_day=PPD, sensitivity=10)
    from analytics.detectors.level_shift import LevelShift, LevelShiftConfig

    raw = LevelShift(LevelShiftConfig(**inner), name="ls").detect(inp)
    out = LikelihoodDetector(LikelihoodConfig(enabled=True, inner=inner), name="ls").detect(inp)
    assert list(out.columns) == list(raw.columns)
    assert (out["detector"] == "ls").all()
    assert not (out["flag"] & ~raw["flag"]).any()
    assert out["flag"].sum() < raw["flag"].sum()


def test_external_likelihood_wraps_the_voters_of_kpis_input_only():
    cfg = load_analysis_config(None, ["external.likelihood={window_days: 3}"])
    assert cfg.detectors["rolling_zscore"].type == "rolling_zscore"   # store runs: untouched
    ext = external_profile(cfg, 300.0)
    assert "rolling_zscore" in ext.voting_detectors()
    for name in ext.voting_detectors():
        d = ext.detectors[name]
        if name == "product_watch":   # product series only, none on --kpis input: wrapped, it
            assert d.type == "product_watch"   # ran as a voter there (docs audit 2026-12-05)
            continue
        assert d.type == "likelihood" and d.enabled and d.window_days == 3
        assert d.inner["type"] == cfg.detectors[name].type
    # every voter of store runs but the store-only ones (count_likelihood: off on --kpis input)
    assert set(ext.voting_detectors()) == set(cfg.voting_detectors()) - {"count_likelihood"}
    off = load_analysis_config(None, [
        "external.likelihood={}",
        "external.detectors={isolation_forest: {type: isolation_forest, enabled: false}}"])
    ext = external_profile(off, 300.0)   # a voter switched off is not wrapped, and does not vote
    assert ext.detectors["isolation_forest"].type == "isolation_forest"
    assert "isolation_forest" not in ext.voting_detectors()


@pytest.mark.parametrize("inner", [None, {"kind": "x"}, {"type": "likelihood"}, {"type": "nope"}])
def test_bad_inner_is_an_input_error(inner):
    det = LikelihoodDetector(LikelihoodConfig(enabled=True, inner=inner), name="w")
    inp = DetectorInput(series=_series(np.ones(100)), periods_per_day=PPD)
    with pytest.raises(InputError):
        det.detect(inp)


def test_the_reference_distribution_is_the_earlier_scores_only():
    """At t the current |score| is judged against the mean and sd of the capped |scores| before
    t (not including itself); the result is the weaker of that and the score's own tail."""
    from scipy.special import ndtr, ndtri

    s = _null(6)
    s[:100] = 3.0 + 0.5 * s[:100]                        # a bursty past: the fit decides
    s[100] = 4.0
    out = likelihood_scores(s[:, None], PPD, LikelihoodSettings())[:, 0]
    past = np.minimum(np.abs(s[:100]), 10.0)
    z = (4.0 - past.mean()) / past.std(ddof=1)
    p = max(2 * ndtr(-4.0), ndtr(-z))
    assert ndtr(-z) > 2 * ndtr(-4.0)
    assert out[100] == pytest.approx(-ndtri(p / 2), rel=1e-9)


def test_the_wrapper_never_flags_what_its_inner_detector_left_unflagged_by_direction():
    rng = np.random.default_rng(5)
    x = 20 + rng.normal(0, 1, N)
    x[2000:2010] -= 30                                   # a drop; the inner watches rises only
    inner = {"type": "level_shift", "enabled": True, "window": 1, "reference": 12,
             "variance": False, "direction": "up"}
    inp = DetectorInput(series=_series(x), periods_per_day=PPD, sensitivity=10)
    out = LikelihoodDetector(LikelihoodConfig(enabled=True, inner=inner), name="ls").detect(inp)
    drop = out.iloc[2000:2010]
    assert (drop["score"].abs() >= THR).any() and not drop["flag"].any()
