"""The oracle: calibrated on shock-free worlds, and a true bound (the consensus never beats it)."""

from __future__ import annotations

import numpy as np
import pytest

from analytics.detectors import DetectorInput
from analytics.kpis import compute_kpis_daily, to_long
from analytics.loading import load_data_dir
from evaluation.oracle import ExactOracle, OracleConfig, baseline_long
from evaluation.pipeline import analyse
from evaluation.truth import find_truth
from shocklab.configio import load_yaml
from simulation.api import generate

KPIS = ["revenue", "orders", "sessions", "conversion_rate", "aov"]
SMALL = {
    "period_days": [240, 240],
    "sessions_per_day": [3000, 8000],
    "products": [150, 200],
    "warmup_days": 60,
    "shocks": [12, 12],
    "channels": [2, 4],
    "countries": [2, 4],
    "min_gap_days": 2,
}


def world(tmp_path, seed: int, **over):
    raw = load_yaml("config/scenarios/random_world.yaml")
    raw["seed"] = seed
    raw["world"] = {**raw["world"], **SMALL, **over}
    out = tmp_path / f"w{seed}"
    generate(raw, out, fmt="parquet")
    return out


def test_scores_are_calibrated_on_a_shock_free_world(tmp_path):
    ds = load_data_dir(world(tmp_path, 5, shocks=[0, 0]))
    series = to_long(compute_kpis_daily(ds), KPIS, ["overall", "channel", "country", "category"])
    out = ExactOracle(OracleConfig(windows=[])).detect(
        DetectorInput(series=series, baseline=baseline_long(find_truth(ds.path).baseline, KPIS))
    )
    out = out[out["actual"].notna()]
    assert len(out) > 10_000
    for kpi, g in out.groupby("kpi"):
        s = g["score"].to_numpy()
        # N(0, 1) under the null: P(|s| >= 3) = 0.27 %
        assert abs(s.mean()) < 0.15 and 0.85 < s.std() < 1.15, (kpi, s.mean(), s.std())
        assert np.mean(np.abs(s) >= 3) < 0.008, kpi
    # the multi-day windows are Bonferroni-adjusted: never more false alarms than nominal × 1.5
    out3 = ExactOracle(OracleConfig(windows=[3, 7])).detect(
        DetectorInput(series=series, baseline=baseline_long(find_truth(ds.path).baseline, KPIS))
    )
    assert np.mean(np.abs(out3["score"]) >= 3) < 0.0027 * 1.5


def test_oracle_sees_a_shock_in_its_slice(tmp_path):
    ds = load_data_dir(world(tmp_path, 6))
    series = to_long(compute_kpis_daily(ds), KPIS, ["overall", "channel", "country", "category"])
    out = ExactOracle(OracleConfig()).detect(
        DetectorInput(series=series, baseline=baseline_long(find_truth(ds.path).baseline, KPIS))
    )
    big = [
        e
        for e in find_truth(ds.path).events
        if not e["expected"]
        and e["type"] in ("channel_outage", "site_outage")
        and abs(e["scope_effects"].get("sessions", 0)) > 0.3
        and len(e["scope"]) < 2
    ]  # watched slices
    assert big
    for e in big:
        w = out[
            (out["date"] >= e["start"]) & (out["date"] <= e["end"]) & (out["kpi"] == "sessions")
        ]
        assert (w["score"] <= -5).any(), e


@pytest.mark.slow
@pytest.mark.parametrize("seed", [21, 22, 23])
def test_consensus_never_beats_the_oracle_at_equal_false_positives(tmp_path, seed):
    raw = load_yaml("config/analysis.yaml")
    raw["detectors"]["prophet_residual"]["enabled"] = False   # minutes per world; the others vote
    raw["insights"]["plots"] = raw["customers"]["plots"] = False   # the scorecard reads none
    card = analyse(world(tmp_path, seed), raw)
    oe = card["strict"]["oracle_equal_fp"]
    assert oe is not None and card["strict"]["consensus"]["events"] > 0
    assert oe["consensus_recall"] <= oe["oracle_recall"], oe
    # and no event the consensus alone found is one the bound's null scored at its cut (its
    # incidents lost none: evaluation.bound_check)
    assert oe["seen_at_cut"] == 0, oe


@pytest.mark.parametrize("extra", [[], ["channel_country"], ["product"]])
def test_the_oracle_scores_every_watched_series_with_the_exact_null(tmp_path, extra):
    """Coverage: the oracle stage scores exactly the series the detectors watch (whatever
    ``detector_input`` returns: channel x country cells and products too when watched), and the
    truth baseline
    has the exact null (expected value and noise) for every one of their points — no series falls
    back to the robust z."""
    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.pipeline import detector_input, stage_kpis
    from evaluation.oracle import stage_oracle
    from shocklab.errors import InputError

    dims = ["overall", "channel", "country", "category", *extra]
    try:
        cfg = load_analysis_config(None, [f"dimensions={dims}", "customers.enabled=false"])
    except InputError:
        pytest.skip("this analysis cannot watch " + ", ".join(extra))
    ds = load_data_dir(world(tmp_path, 8))
    ctx = RunContext(config=cfg, data=ds, out_dir=tmp_path, truth=find_truth(ds.path))
    stage_kpis(ctx)
    ctx.detections = None
    stage_oracle(ctx)
    keys = ["kpi", "dimension", "segment"]
    watched = detector_input(ctx).series
    watched = watched[watched.groupby(keys)["value"].transform("count") > 0]
    assert set(map(tuple, ctx.detections[keys].drop_duplicates().to_numpy())) == set(
        map(tuple, watched[keys].drop_duplicates().to_numpy())
    )
    assert set(watched["dimension"]) == set(dims)
    prods = sorted(set(watched.loc[watched["dimension"] == "product", "segment"]))
    base = baseline_long(ctx.truth.baseline, [*KPIS, "price"], ctx.truth.product_null, prods)
    m = watched.merge(base, on=["date", *keys], how="left", suffixes=("", "_null"))
    assert m["value_null"].notna().all() and m["noise"].notna().all()


def test_series_without_noise_fall_back_to_the_robust_z_of_their_whole_residual():
    """Truth without a noise model for a series (older layouts): that series is scored by the
    robust z of its residual, its scale taken over the whole series; a series with the exact null
    next to it keeps its exact scores."""
    import pandas as pd

    from analytics.detectors.base import robust_scale

    rng = np.random.default_rng(3)
    dates = pd.date_range("2025-01-01", periods=60, freq="D")
    rows, base = [], []
    for seg, noise in (("a", np.nan), ("b", 400.0)):
        mu = np.full(60, 400.0)
        val = rng.poisson(mu).astype(float)
        rows.append(pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "channel",
                                  "segment": seg, "value": val}))
        base.append(pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "channel",
                                  "segment": seg, "value": mu, "noise": noise}))
    series = pd.concat(rows, ignore_index=True)
    det = ExactOracle(OracleConfig(windows=[]), name="oracle")
    out = det._detect_core(series, DetectorInput(series=series,
                                                 baseline=pd.concat(base, ignore_index=True)))
    a = (series["segment"] == "a").to_numpy()
    resid = series.loc[a, "value"].to_numpy() - 400.0
    assert np.allclose(out.loc[a, "score"].to_numpy(), resid / robust_scale(resid))
    # the exact series: 1-day negative binomial (Poisson here) scores, not the robust z
    b = ~a
    resid_b = series.loc[b, "value"].to_numpy() - 400.0
    assert not np.allclose(out.loc[b, "score"].to_numpy(), resid_b / robust_scale(resid_b))
    assert np.all(np.sign(out.loc[b, "score"].to_numpy()[resid_b != 0])
                  == np.sign(resid_b[resid_b != 0]))


@pytest.mark.parametrize("dtype", ["str", "object"])
def test_labels_are_the_column_as_objects_one_string_per_value(dtype):
    """``_labels``: the same values as ``to_numpy(object)`` (missing ones NaN), one string
    object per distinct label (memory), for the oracle's per-row KPI and dimension arrays."""
    import pandas as pd

    from evaluation.oracle import _labels

    col = pd.Series(["orders", "aov", None, "orders", "price"] * 3, dtype=dtype)
    got, want = _labels(col), col.to_numpy(object)
    assert got.dtype == object and len(got) == len(want)
    assert [None if pd.isna(v) else v for v in got] == [None if pd.isna(v) else v for v in want]
    assert got[0] is got[3] and pd.isna(got[2])


def test_trailing_sums_match_a_grouped_running_sum_bit_for_bit():
    """The oracle's window sums (one running sum per group, built once) equal the grouped
    cumsum-and-shift they replaced, bit for bit: groups of different lengths, interleaved rows,
    NaN (counted as 0) and an infinity."""
    import pandas as pd

    from evaluation.oracle import _Trailing

    g = np.random.default_rng(5)
    codes = g.integers(0, 7, 400)
    codes[:7] = np.arange(7)               # every group present
    vals = g.lognormal(3, 2, 400)
    vals[g.random(400) < 0.1] = np.nan
    vals[17] = np.inf
    pos = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
    tr = _Trailing(codes, pos)
    for w in (1, 2, 3, 7, 60, 500):
        c = pd.Series(vals).fillna(0.0).groupby(codes, sort=False).cumsum()
        ref = np.array(c - c.groupby(codes, sort=False).shift(w), float)
        ref[pos == w - 1] = c.to_numpy()[pos == w - 1]
        ref[pos < w - 1] = np.nan
        got = tr.window(tr.running(vals), w)
        assert np.array_equal(got, ref, equal_nan=True), w


def test_count_tails_are_mid_p_and_sums_have_their_point_mass_at_zero():
    """Counts: P(X >= x) and P(X <= x) each take half the point's own probability (mid-p, so
    they add to 1). Revenue: P(no order) at 0 plus a gamma given any order, whose moments are
    those given at least one order, so the whole sum keeps the null's mean."""
    from scipy import stats

    from evaluation.oracle import _tails

    up, lo = _tails(np.array(["orders"]), np.array([10.0]), np.array([10.0]), np.array([10.0]),
                    np.array([np.nan]), np.array([np.nan]))
    pmf = stats.poisson.pmf(10, 10.0)
    assert up[0] == pytest.approx(stats.poisson.sf(10, 10.0) + pmf / 2)
    assert up[0] + lo[0] == pytest.approx(1.0)
    xs = np.linspace(0.0, 1500.0, 150_001)
    n = len(xs)
    up, lo = _tails(np.full(n, "revenue"), xs, np.full(n, 40.0), np.full(n, 900.0),
                    np.full(n, 1.0), np.full(n, 1.0))
    assert lo[0] == pytest.approx(np.exp(-1.0))           # P(no order), Poisson(1)
    assert np.allclose(up[1:] + lo[1:], 1.0)              # a continuous part: tails add to 1
    mean = float(np.sum((up[1:] + up[:-1]) / 2 * np.diff(xs)))   # E[X] = integral of P(X >= x)
    assert mean == pytest.approx(40.0, rel=1e-3)


def test_price_moves_beyond_half_a_cent_are_decisive_and_one_day_is_tested_once():
    """Price has no noise: more than half a cent off the list price scores MAX_SCORE in the
    direction of the change, anything within it 0. A configured window of 1 day is the 1-day
    test already (Bonferroni counts it once)."""
    import pandas as pd

    from evaluation.oracle import MAX_SCORE

    dates = pd.date_range("2025-01-01", periods=4, freq="D")
    price = pd.DataFrame({"date": dates, "kpi": "price", "dimension": "product", "segment": "7",
                          "value": [10.0, 10.004, 10.01, 9.99]})
    base = price.assign(value=10.0, noise=0.0)
    out = ExactOracle(OracleConfig(windows=[]), name="oracle")._detect_core(
        price, DetectorInput(series=price, baseline=base))
    assert out["score"].tolist() == [0.0, 0.0, MAX_SCORE, -MAX_SCORE]
    rng = np.random.default_rng(4)
    dates = pd.date_range("2025-01-01", periods=40, freq="D")
    orders = pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "overall",
                           "segment": "all", "value": rng.poisson(50, 40).astype(float)})
    base = orders.assign(value=50.0, noise=50.0)
    inp = DetectorInput(series=orders, baseline=base)
    with_one = ExactOracle(OracleConfig(windows=[1, 3]), name="oracle")._detect_core(orders, inp)
    plain = ExactOracle(OracleConfig(windows=[3]), name="oracle")._detect_core(orders, inp)
    assert np.array_equal(with_one["score"].to_numpy(), plain["score"].to_numpy(), equal_nan=True)


def test_each_point_takes_its_smallest_window_p_value():
    """A one-day spike is most surprising on its own day: the score there is the 1-day tail
    probability Bonferroni-adjusted for the two windows, not the diluted 3-day window's."""
    import pandas as pd
    from scipy import stats

    dates = pd.date_range("2025-01-01", periods=40, freq="D")
    value = np.full(40, 50.0)
    value[30] = 90.0
    orders = pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "overall",
                           "segment": "all", "value": value})
    inp = DetectorInput(series=orders, baseline=orders.assign(value=50.0, noise=50.0))
    one = ExactOracle(OracleConfig(windows=[]), name="oracle")._detect_core(orders, inp)
    two = ExactOracle(OracleConfig(windows=[3]), name="oracle")._detect_core(orders, inp)
    p1 = stats.norm.sf(one["score"].iloc[30])
    assert two["score"].iloc[30] == pytest.approx(stats.norm.isf(2 * p1), rel=1e-9)


def test_the_baseline_of_the_watched_dimensions_only(tmp_path):
    """``baseline_long(..., dimensions=...)``: the rows of those dimensions only (the oracle asks
    for the watched ones), the same rows and values as the whole table's, in the same order."""
    import pandas as pd

    truth = find_truth(world(tmp_path, 8))
    full = baseline_long(truth.baseline, KPIS)
    dims = {"overall", "category"}
    part = baseline_long(truth.baseline, KPIS, dimensions=dims)
    assert set(part["dimension"]) == dims and set(full["dimension"]) > dims
    pd.testing.assert_frame_equal(part.reset_index(drop=True),
                                  full[full["dimension"].isin(dims)].reset_index(drop=True))


def test_the_conversion_mix_variance_is_the_generative_models():
    """``conversion_mix_cv2`` against a Monte-Carlo of the simulator's cells: sessions H_i ~
    Poisson(λ_i·D·G_i) with a shared day factor D and a cell factor G_i per day, orders a binomial
    thinning at the cell's own conversion q_i. Given the slice's sessions the null expects q·ΣH
    orders; what the cells' mix adds to the variance of ΣO − q·ΣH beyond the thinning's own is
    the mix term × M² (M: expected orders)."""
    from simulation.noise_model import _mix_cv2

    lam = np.array([4000.0, 6000.0, 850.0])
    q = np.array([0.045, 0.008, 0.016])
    cv_d, disp = 0.05, 0.033
    mix = float(_mix_cv2(lam[None, :], (lam * q)[None, :], cv_d**2, disp)[0])
    g = np.random.default_rng(11)
    n = 400_000
    d = g.gamma(1 / cv_d**2, cv_d**2, size=(n, 1))
    h = g.poisson(lam * d * g.gamma(1 / disp, disp, size=(n, 3)))
    o = g.binomial(h, q)
    m = float((lam * q).sum())
    r = o.sum(axis=1) - m / lam.sum() * h.sum(axis=1)
    thinning = float((lam * q * (1 - q)).sum())
    assert r.var() - thinning == pytest.approx(mix * m**2, rel=0.04)
    assert mix * m**2 > thinning      # here the mix is most of the variance: it matters
    # one cell, or cells converting alike: no mix
    assert _mix_cv2(lam[None, :1], (lam * q)[None, :1], cv_d**2, disp)[0] == 0.0
    assert _mix_cv2(lam[None, :], (lam * 0.02)[None, :], cv_d**2, disp)[0] == pytest.approx(0.0)


def test_conversion_scores_are_calibrated_where_the_cells_convert_unlike(tmp_path):
    """A shock-free store whose channels convert at 6 %, 2 % and 0.5 % with dispersed cells:
    each country's conversion mixes them, and without the mix term its oracle scores were too
    wide (a day with little low-converting traffic read as a shock)."""
    raw = load_yaml("config/scenarios/small.yaml")
    raw["channels"] = {"organic": {"share": 0.3, "conversion": 0.06, "new_customer_share": 0.4},
                       "paid_search": {"share": 0.3, "conversion": 0.02,
                                       "new_customer_share": 0.5},
                       "referral": {"share": 0.4, "conversion": 0.005,
                                    "new_customer_share": 0.5}}
    raw["traffic"] = {**raw["traffic"], "base_sessions": 40000, "cell_dispersion": 0.08}
    raw["events"], raw["calendar"] = [], []
    out = tmp_path / "mixed"
    generate(raw, out, fmt="parquet")
    ds = load_data_dir(out)
    # sessions watched too: conversion is judged given the slice's observed sessions
    kpis = ["sessions", "conversion_rate"]
    series = to_long(compute_kpis_daily(ds), kpis, ["overall", "country"])
    base = find_truth(ds.path).baseline

    def scores(b):
        got = ExactOracle(OracleConfig(windows=[])).detect(
            DetectorInput(series=series, baseline=baseline_long(b, kpis)))
        got = got[got["actual"].notna() & (got["kpi"] == "conversion_rate")]
        return got["score"].to_numpy()

    s = scores(base)
    assert len(s) > 500
    assert 0.85 < s.std() < 1.15 and np.mean(np.abs(s) >= 3) < 0.01, s.std()
    old = scores(base.drop(columns="conversion_mix_cv2"))   # the null before the mix term
    assert old.std() > 1.3, old.std()
