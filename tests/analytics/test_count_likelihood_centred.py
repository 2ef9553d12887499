"""count_likelihood's noise fitted on hindsight residuals (``fit_residuals: centred``; the
fifty-second session, docs/history/detection.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.detectors.count_likelihood import CountLikelihoodConfig, centred_residuals

from .test_count_likelihood import _run, _store


def test_a_lasting_step_does_not_widen_the_centred_fit():
    """A +35 % step of the mid channel's orders that lasts: the trailing level takes days to
    follow it, and those residuals widen the noise the trailing fit learns for months after;
    the centred fit reads them against a level on the step's own side. Read through the
    calibrated scores' mean square: before the step both fits agree, after it the trailing
    fit's null is markedly wider (its scores smaller) than the centred fit's."""
    series, counts = _store(n=420, seed=11, shock=("mid", 230, 190, 1.35), cell_var=0.002)
    ms = {}
    for how in ("trailing", "centred"):
        _, out = _run(series, counts, fit_residuals=how)
        s = out[(out["kpi"] == "orders") & (out["segment"] == "mid")]["score"].to_numpy()
        ms[how] = (np.mean(s[150:225] ** 2), np.mean(s[260:350] ** 2))
    assert ms["centred"][0] == pytest.approx(ms["trailing"][0], rel=0.25)
    assert ms["centred"][1] > 2 * ms["trailing"][1]


def test_centred_residuals_leave_the_day_out_and_need_h_days_either_side():
    """Row d's level is the median of the h rows either side (d itself not among them); rows
    without h known neighbours on both sides have no residual."""
    h, t = 3, 12
    clean = np.arange(1.0, t + 1)[:, None] * 10.0
    clean[6, 0] = 1000.0                                  # an outlier on row 6 only
    ones = np.ones_like(clean)
    y, u = centred_residuals(clean, ones, ones, np.zeros_like(clean), np.array(["count"]),
                             np.full_like(clean, 0.5), h)
    assert np.isnan(y[:h]).all() and np.isnan(y[t - h:]).all()
    level6 = np.median([40.0, 50.0, 60.0, 80.0, 90.0, 100.0])   # row 6 (70 -> 1000) left out
    kappa = 1.0 + np.pi / 2 / (2 * h)
    assert y[6, 0] == pytest.approx(((1000.0 - level6) / level6) ** 2 / kappa)
    assert u[6, 0] == pytest.approx(1 / level6)          # counts: 1 / the expected value
    # row 5's window holds the outlier: the median (50 + 80) / 2 moves one rank, not to it
    assert y[5, 0] == pytest.approx(((60.0 - 65.0) / 65.0) ** 2 / kappa)


def test_centred_fit_stays_causal():
    """Changing the last 30 days changes no earlier score with the centred fit either (a day
    enters the fit only once its h later days are past)."""
    series, counts = _store(n=240)
    _, a = _run(series, counts, fit_residuals="centred")
    cut = series["date"].max() - pd.Timedelta(days=29)
    s2 = series.copy()
    s2.loc[s2["date"] >= cut, "value"] *= 3
    _, b = _run(s2, counts, fit_residuals="centred")
    early = a["date"] < cut
    np.testing.assert_array_equal(a.loc[early, "score"], b.loc[early, "score"])


def test_the_model_default_is_the_trailing_fit_and_the_shipped_config_the_centred_one():
    """A config of its own (``base: none``) keeps the fifth session's fit; the shipped
    config/analysis.yaml fits on centred residuals (fifty-second session)."""
    from analytics.config import load_analysis_config

    assert CountLikelihoodConfig().fit_residuals == "trailing"
    shipped = load_analysis_config(None, []).detectors["count_likelihood"]
    assert (shipped.fit_residuals, shipped.centred_days) == ("centred", 14)


def test_the_level_is_the_same_whatever_the_column_chunks(monkeypatch):
    """Series are taken a few at a time (bounded memory): the result does not depend on it."""
    import analytics.detectors.count_likelihood as cl

    rng = np.random.default_rng(2)
    clean = rng.poisson(50.0, (60, 7)).astype(float)
    clean[rng.random(clean.shape) < 0.1] = np.nan
    ones = np.ones_like(clean)
    args = (clean, ones, ones, np.zeros_like(clean), np.array(["count"] * 7), ones, 5)
    whole = cl.centred_residuals(*args)
    monkeypatch.setattr(cl, "CHUNK_CELLS", 60 * 10 * 2)   # two series a chunk
    parts = cl.centred_residuals(*args)
    for a, b in zip(whole, parts, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.isfinite(whole[0][5:55]).mean() > 0.8
