"""count_likelihood: a count-aware null learned from the store's own residuals (issue 9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.detectors import DetectorInput
from analytics.detectors.count_likelihood import (
    CountLikelihood,
    CountLikelihoodConfig,
    fit_noise,
    tail_scores,
)

SIZES = {"big": 4000.0, "mid": 400.0, "small": 12.0}


def _store(n: int = 330, seed: int = 5, shock: tuple[str, int, int, float] | None = None,
           day_cv: float = 0.04, cell_var: float = 0.01):
    """Daily sessions and orders of three channels and the whole store: a day factor shared by
    every channel (gamma, CV ``day_cv``), a channel-day factor (variance ``cell_var``), Poisson
    counts given the factors, a weekly shape. ``shock``: (channel, start, days, factor) on
    orders."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n, freq="D")
    week = 1 + 0.15 * np.sin(2 * np.pi * np.arange(n) / 7)
    d = rng.gamma(1 / day_cv**2, day_cv**2, n)
    rows, counts = [], {}
    for ch, size in SIZES.items():
        g = rng.gamma(1 / cell_var, cell_var, n)
        sess = rng.poisson(size * 10 * week * d * g).astype(float)
        orders = rng.poisson(size * week * d * g).astype(float)
        if shock and shock[0] == ch:
            s0, k, f = shock[1], shock[2], shock[3]
            orders[s0:s0 + k] = rng.poisson(size * week[s0:s0 + k] * d[s0:s0 + k]
                                             * g[s0:s0 + k] * f)
        counts[ch] = (sess, orders)
    counts["all"] = tuple(sum(counts[c][i] for c in SIZES) for i in (0, 1))
    frames, cnt = [], []
    for seg, (sess, orders) in counts.items():
        dim = "overall" if seg == "all" else "channel"
        for kpi, v in (("sessions", sess), ("orders", orders)):
            frames.append(pd.DataFrame({"date": dates, "kpi": kpi, "dimension": dim,
                                        "segment": seg, "value": v}))
        cnt.append(pd.DataFrame({"date": dates, "dimension": dim, "segment": seg,
                                 "orders": orders, "sessions": sess}))
        rows.append(seg)
    return pd.concat(frames, ignore_index=True), pd.concat(cnt, ignore_index=True)


def _run(series, counts, **cfg):
    det = CountLikelihood(CountLikelihoodConfig(**cfg))
    return det, det.detect(DetectorInput(series=series, counts=counts, sensitivity=0.1))


def test_fit_noise_recovers_the_poisson_part_and_the_overdispersion():
    """y = (r/μ)² of NB days with var = μ + φμ²: a ≈ 1 (fitted within a dimension), φ ≈ the
    truth per series (the fourth series is another dimension, with another φ)."""
    rng = np.random.default_rng(0)
    mu = np.array([5.0, 50.0, 500.0, 5000.0])
    phi = np.array([0.01, 0.01, 0.01, 0.002])
    t = 2000
    f = rng.gamma(1 / phi, phi, (t, 4))
    x = rng.poisson(mu * f)
    y = ((x - mu) / mu) ** 2
    u = np.broadcast_to(1 / mu, y.shape)
    a, est = fit_noise(y, u, np.array(["c", "c", "c", "o"]), CountLikelihoodConfig())
    assert a == pytest.approx(1.0, abs=0.25)
    np.testing.assert_allclose(est[2:], phi[2:], rtol=0.25)  # large series pin φ


def test_fit_trim_keeps_shock_residuals_out_and_stays_unbiased():
    """Residuals of 3.6-4.4 sds of the true model (a shock's days, a lagging level) pass the
    default cut and inflate φ; ``fit_trim: 3.5`` leaves them out, and on clean days its
    correction for the cut keeps φ where the default puts it (within 3 %)."""
    rng = np.random.default_rng(4)
    t, mu, phi = 3000, np.array([2000.0, 4000.0]), 0.002
    f = rng.gamma(1 / phi, phi, (t, 2))
    x = rng.poisson(mu * f).astype(float)
    y = ((x - mu) / mu) ** 2
    u = np.broadcast_to(1 / mu, y.shape)
    dims = np.array(["c", "c"])
    model = 1 / mu + phi
    dirty = y.copy()
    dirty[::20] = rng.uniform(3.6, 4.4, (len(y[::20]), 2)) ** 2 * model   # 5 % of the days
    cfg, trimmed = CountLikelihoodConfig(), CountLikelihoodConfig(fit_trim=3.5)
    _, clean_default = fit_noise(y, u, dims, cfg, 1.0)
    _, clean_trim = fit_noise(y, u, dims, trimmed, 1.0)
    np.testing.assert_allclose(clean_trim, clean_default, rtol=0.03)
    np.testing.assert_allclose(clean_default, phi, rtol=0.15)
    _, dirty_default = fit_noise(dirty, u, dims, cfg, 1.0)
    _, dirty_trim = fit_noise(dirty, u, dims, trimmed, 1.0)
    assert np.all(dirty_default > 1.5 * phi)
    np.testing.assert_allclose(dirty_trim, phi, rtol=0.15)


def test_tail_scores_are_normal_under_their_null_and_zero_revenue_is_not_extreme():
    rng = np.random.default_rng(1)
    m, phi = 30.0, 0.05
    x = rng.negative_binomial(1 / phi, 1 / (1 + phi * m), (20000, 1)).astype(float)
    s = tail_scores(np.array(["count"]), x, np.full(x.shape, m), np.full(x.shape, m + phi * m**2))
    assert abs(np.mean(s)) < 0.05 and 0.9 < np.std(s) < 1.1
    # a day without orders on a slice expecting 2 has revenue 0: P = e^-2, not a 30-sigma drop
    z = tail_scores(np.array(["rev"]), np.array([[0.0]]), np.array([[100.0]]),
                    np.array([[100.0**2]]), np.array([[2.0]]))
    assert -2.0 < z[0, 0] < -1.0


def test_null_store_stays_quiet_and_a_small_channel_drop_is_flagged():
    series, counts = _store()
    _, out = _run(series, counts)
    late = out[out["date"] >= "2024-04-01"]
    # nominal 0.1 / 90 of the days flagged; a few days of one unlucky cell draw are allowed
    assert late["flag"].mean() < 0.005
    assert 0.6 < late["score"].std() < 1.3
    # orders of the mid channel -35 % for 4 days: flagged downward; the others stay quiet there
    series, counts = _store(shock=("mid", 250, 4, 0.65))
    _, out = _run(series, counts)
    win = out[(out["date"] >= "2024-09-06") & (out["date"] <= "2024-09-12")]
    hit = win[(win["kpi"] == "orders") & (win["segment"] == "mid")]
    assert hit["flag"].any() and (hit.loc[hit["flag"], "direction"] == "down").all()
    assert not win[win["segment"] == "big"]["flag"].any()


def test_sub_daily_input_gives_no_scores_and_says_so():
    series, _ = _store(n=60)
    series = series.assign(date=pd.Timestamp("2024-01-01")
                           + pd.to_timedelta(series.groupby(["kpi", "segment"]).cumcount(), "h"))
    det = CountLikelihood(CountLikelihoodConfig())
    out = det.detect(DetectorInput(series=series, periods_per_day=24))
    assert (out["score"] == 0).all() and not out["flag"].any()
    assert det.warnings_ and "daily" in det.warnings_[0]


def test_causal():
    """Changing the last 30 days changes no earlier score."""
    series, counts = _store(n=200)
    _, a = _run(series, counts)
    late = series["date"] >= series["date"].max() - pd.Timedelta(days=29)
    s2 = series.copy()
    s2.loc[late, "value"] = s2.loc[late, "value"] * 3
    _, b = _run(s2, counts)
    early = a["date"] < series["date"].max() - pd.Timedelta(days=29)
    np.testing.assert_array_equal(a.loc[early, "score"], b.loc[early, "score"])


def test_kpis_input_switches_it_off():
    """--kpis input (external profile, chosen on NAB without it) never runs it."""
    from analytics.config import load_analysis_config
    from analytics.external import external_profile

    cfg = load_analysis_config(None, ["detectors.count_likelihood={type: count_likelihood}"])
    assert cfg.detectors["count_likelihood"].enabled
    ext = external_profile(cfg, 300.0)
    assert not ext.detectors["count_likelihood"].enabled
    assert ext.detectors["rolling_zscore"].enabled


@pytest.mark.parametrize("setting", ["detectors.count_likelihood.windows=[0]",
                                     "detectors.rolling_zscore.windows=[-3]"])
def test_window_lengths_below_one_period_are_refused(setting):
    from analytics.config import load_analysis_config
    from shocklab.errors import InputError

    with pytest.raises(InputError, match=r"windows\[0\]: Input should be greater than or equal"):
        load_analysis_config(None, [setting])


def test_fit_window_bounds_the_residuals_the_noise_is_fitted_on():
    """The noise is fitted on the last ``fit_window`` days of residuals only: a noisy stretch
    270-420 days back moves the fit with 546 days and not with the shipped 182 (a longer window
    was measured in the seventh session and not shipped: TRAIN precision up, p31-p40 F1 down)."""
    rng = np.random.default_rng(3)
    t, mu = 420, 1000.0
    phi = np.where(np.arange(t) < 150, 0.02, 0.002)[:, None]
    y = rng.normal(0.0, np.sqrt(1 / mu + phi), (t, 2)) ** 2   # (r / mu)^2 of each day
    u = np.full((t, 2), 1 / mu)
    kpis, dims = np.array(["orders", "orders"]), np.array(["overall", "channel"])
    fam = np.array(["count", "count"])
    assert CountLikelihoodConfig().fit_window == 182
    fits = {w: CountLikelihood._fit(y, u, kpis, dims, fam, CountLikelihoodConfig(fit_window=w))[1]
            for w in (182, 546)}
    late = fits[182][-1], fits[546][-1]
    assert late[0] == pytest.approx(0.002, rel=0.4)      # the last 182 days: the quiet stretch
    assert (late[1] > 2.5 * late[0]).all()                # 546 days still see the noisy one
    np.testing.assert_array_equal(fits[182][:150], fits[546][:150])  # the same until day 182



def test_shipped_scale_leaves_a_long_past_shock_out():
    """A 40-day halving of a channel's orders (day 120) sits in the 182-day history every later
    score is calibrated on. Uncapped, its days widen that series' scale and a second drop (-20 %
    for 7 days from day 249) stays below the threshold; the shipped calibrations
    (config/analysis.yaml and the detector's defaults: ``scale_cap`` 3.5 on the 1-, 3- and 7-day
    scores) leave those days out and flag it. Before the first drop nothing differs but a rare
    noise day whose raw score passes the cap itself (then that day alone leaves the scale). The
    comparison runs without the shipped catch-up (``expected.catch_up``), which since the
    sixteenth session follows such a long drop after ~7 days and so keeps most of its days out
    of the scale by itself, and with the noise fitted on trailing residuals (the shipped fit on
    centred ones, fifty-second session, keeps the drop out of the noise and flags the second
    drop even uncapped); the shipped detector flags the second drop too."""
    from analytics.config import load_analysis_config

    shipped = load_analysis_config(None).detectors["count_likelihood"]
    caps = [shipped.calibration.scale_cap,
            *(c.scale_cap for c in shipped.window_calibration.values())]
    assert caps == [3.5, 3.5, 3.5]
    series, counts = _store(shock=("mid", 120, 40, 0.5), cell_var=0.001)
    when = ("2024-09-06", "2024-09-12")
    rows = (series["kpi"] == "orders") & series["date"].between(*when)
    mid = rows & (series["segment"] == "mid")
    loss = series.loc[mid, "value"].to_numpy() * 0.2
    series.loc[mid, "value"] -= loss
    series.loc[rows & (series["segment"] == "all"), "value"] -= loss
    crow = counts["date"].between(*when)
    counts.loc[crow & (counts["segment"] == "mid"), "orders"] -= loss
    counts.loc[crow & (counts["segment"] == "all"), "orders"] -= loss
    full = shipped.model_dump(exclude={"type", "enabled"})
    assert full["expected"]["catch_up"] is not None
    assert full["fit_residuals"] == "centred"
    cfg = {**full, "expected": {**full["expected"], "catch_up": None},
           "fit_residuals": "trailing"}
    uncapped = {**cfg,
                "calibration": {**cfg["calibration"], "scale_cap": None},
                "window_calibration": {k: {**v, "scale_cap": None}
                                       for k, v in cfg["window_calibration"].items()}}
    _, capped_out = _run(series, counts, **cfg)
    _, plain_out = _run(series, counts, **uncapped)
    second = ((capped_out["kpi"] == "orders") & (capped_out["segment"] == "mid")
              & capped_out["date"].between("2024-09-06", "2024-09-14"))
    assert capped_out.loc[second, "flag"].any()
    assert (capped_out.loc[second & capped_out["flag"], "direction"] == "down").all()
    assert not plain_out.loc[second, "flag"].any()
    assert capped_out.loc[second, "score"].min() < plain_out.loc[second, "score"].min() - 0.5
    _, shipped_out = _run(series, counts, **full)
    assert (shipped_out.loc[second & shipped_out["flag"], "direction"] == "down").any()
    before = capped_out["date"].between("2024-03-01", "2024-04-28")
    gap = np.abs(capped_out.loc[before, "score"].to_numpy()
                 - plain_out.loc[before, "score"].to_numpy())
    assert np.mean(gap <= 0.05) >= 0.99 and gap.max() <= 0.15


def test_tail_scores_mid_p_counts_and_the_normal_family():
    """Counts: the signed normal score of the smaller mid-p tail (each tail takes half the
    point's own probability); a family without a discrete or gamma null: (x − m) / sqrt(v)."""
    from scipy import stats
    from scipy.special import ndtri

    from analytics.detectors.count_likelihood import tail_scores

    got = tail_scores(np.array(["count"]), np.array([[10.0]]), np.array([[10.0]]),
                      np.array([[10.0]]))
    up = stats.poisson.sf(10, 10.0) + stats.poisson.pmf(10, 10.0) / 2
    assert got[0, 0] == pytest.approx(-ndtri(up), rel=1e-9) and got[0, 0] > 0
    plain = tail_scores(np.array(["other"]), np.array([[13.0]]), np.array([[10.0]]),
                        np.array([[4.0]]))
    assert plain[0, 0] == pytest.approx(1.5)
