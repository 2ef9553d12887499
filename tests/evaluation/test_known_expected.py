"""bench/known_expected.py (``diagnose_detect --expected``): count_likelihood with the truth's
expected value, or the truth's shape under a trailing level it still estimates."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import known_expected  # noqa: E402

from analytics.detectors import DetectorInput  # noqa: E402
from analytics.detectors import count_likelihood as clm  # noqa: E402
from analytics.detectors.baseline import trim_factor  # noqa: E402


@pytest.mark.parametrize("text, want", [("truth", ("truth", None)), ("shape:56", ("shape", 56)),
                                        (" shape:7 ", ("shape", 7))])
def test_modes_are_parsed(text, want):
    assert known_expected.parse_mode(text) == want


@pytest.mark.parametrize("text", ["shape:6", "shape:", "shape", "truths", "56", ""])
def test_a_bad_mode_names_the_accepted_forms(text):
    with pytest.raises(ValueError, match="give truth or shape:W with W >= 7 days"):
        known_expected.parse_mode(text)


def _world(days: int = 200, seed: int = 4):
    rng = np.random.default_rng(seed)
    week = np.tile([1.0, 1.2, 1.1, 1.0, 0.9, 0.7, 0.6], days // 7 + 1)[:days]
    mu = np.column_stack([800.0 * week * np.linspace(1, 1.5, days),
                          60.0 * week * np.linspace(1.2, 0.8, days)])
    x = rng.poisson(mu).astype(float)
    return mu, x


def test_truth_mode_is_the_truth_with_no_estimation_error_in_the_null():
    mu, x = _world()
    cfg = clm.CountLikelihoodConfig()
    factor, c_w, level = known_expected.parts(mu, x, cfg, "truth", None)
    np.testing.assert_allclose(factor * level.base, mu)
    assert not c_w.any() and not level.c_at(7).any() and not level.slope.any()


def test_shape_mode_is_the_truths_shape_times_a_trailing_level_of_the_ratio():
    mu, x = _world()
    cfg = clm.CountLikelihoodConfig()
    factor, c_w, level = known_expected.parts(mu, x, cfg, "shape", 28)
    ratio = x / mu
    for t in (40, 120, 199):
        w = np.sort(ratio[t - 27:t + 1, 0])   # the 28 days up to t, 20 % trimmed at each end
        want = w[5:-5].mean()
        assert factor[t, 0] * level.base[t, 0] == pytest.approx(mu[t, 0] * want, rel=1e-9)
    assert level.h0 == 14.5 and not c_w.any() and not level.slope.any()
    assert level.c_at(7)[100, 1] == pytest.approx(trim_factor(0.2) / 28)
    # from the days up to each day only
    later = x.copy()
    later[150:] *= 2.0
    _, _, other = known_expected.parts(mu, later, cfg, "shape", 28)
    np.testing.assert_array_equal(other.base[:150], level.base[:150])
    assert not np.allclose(other.base[150:], level.base[150:])


def test_the_detector_uses_it_only_while_open():
    mu, x = _world()
    dates = pd.date_range("2024-01-01", periods=len(x), freq="D")
    keys = [("orders", "overall", "all"), ("orders", "channel", "a")]
    series = pd.concat([pd.DataFrame({"date": dates, "kpi": k, "dimension": d, "segment": s,
                                      "value": x[:, j]}) for j, (k, d, s) in enumerate(keys)],
                       ignore_index=True)
    inp = DetectorInput(series=series, sensitivity=0.1)
    by_key = dict(zip(keys, mu.T, strict=True))

    def truth_of(wide):
        assert list(wide.grid) == list(dates)
        return np.column_stack([by_key[k] for k in wide.keys])

    orig = clm.expected_parts
    with known_expected.known_expected(truth_of, "truth", None):
        known = clm.CountLikelihood(clm.CountLikelihoodConfig()).detect(inp)
    assert clm.expected_parts is orig
    own = clm.CountLikelihood(clm.CountLikelihoodConfig()).detect(inp)
    scored = known["expected"].notna().to_numpy()
    assert scored.sum() > 300
    day = dates.get_indexer(pd.DatetimeIndex(known["date"]))
    want = np.array([by_key[(k, d, g)][i] for k, d, g, i in zip(
        known["kpi"], known["dimension"], known["segment"], day, strict=True)])[scored]
    np.testing.assert_allclose(known["expected"].to_numpy()[scored], want, rtol=1e-9)
    assert not np.allclose(own["expected"].to_numpy()[scored], want, rtol=1e-3)
    with pytest.raises(RuntimeError), known_expected.known_expected(truth_of, "truth", None):
        raise RuntimeError("a failing detection")
    assert clm.expected_parts is orig
