"""rolling_zscore ``reference: parent`` (issue 9): a slice judged by its share of the overall
series, so the store-wide day factor, seasonality and trend cancel; ``share_gate`` keeps one
slice's shock from flagging its siblings (whose shares move, not their values)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.detectors import REGISTRY, DetectorInput
from analytics.detectors.share import parent_columns

DAYS = 240


def _store(seed: int, shares=(0.5, 0.3, 0.2), size=6000.0, day_cv=0.12, shock=None, swing=120):
    """Daily orders of a store with three channels: every channel = share x a store-wide factor
    (yearly-like swing and a day factor of ``day_cv`` shared by all) x Poisson noise; overall =
    the sum. ``shock`` = (channel index, first day, days, factor)."""
    rng = np.random.default_rng(seed)
    t = np.arange(DAYS)
    store = size * (1 + 0.3 * np.sin(2 * np.pi * t / swing)) * rng.gamma(
        1 / day_cv**2, day_cv**2, DAYS
    )
    lam = np.outer(store, shares)
    if shock is not None:
        ch, start, n, f = shock
        lam[start : start + n, ch] *= f
    x = rng.poisson(lam).astype(float)
    dates = pd.date_range("2024-01-01", periods=DAYS, freq="D")
    rows = [pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "overall",
                          "segment": "all", "value": x.sum(axis=1)})]
    for i in range(len(shares)):
        rows.append(pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "channel",
                                  "segment": f"c{i}", "value": x[:, i]}))
    return pd.concat(rows, ignore_index=True)


def _zscore(**kw):
    cls = REGISTRY["rolling_zscore"]
    return cls(cls.config_class(weekday_adjust=False, **kw), name="rolling_zscore")


def _flags(out, segment, lo, hi):
    sel = out[(out["segment"] == segment) & (out["date"] >= lo) & (out["date"] <= hi)]
    return sel


def test_a_slice_shock_hidden_by_store_noise_is_plain_in_its_share():
    """-25 % for 3 days on a channel of ~1 800 orders a day, in a store whose day factor swings
    12 %: against its own history the drop is within the noise; as a share of the store it is
    many Poisson spreads away."""
    series = _store(1, shock=(1, 200, 3, 0.75))
    inp = DetectorInput(series=series, sensitivity=0.1)
    lo, hi = pd.Timestamp("2024-07-19"), pd.Timestamp("2024-07-23")  # days 200-204
    own = _flags(_zscore().detect(inp), "c1", lo, hi)
    parent = _flags(_zscore(reference="parent").detect(inp), "c1", lo, hi)
    assert not own["flag"].any()
    assert parent["flag"].any()
    assert (parent.loc[parent["flag"], "direction"] == "down").all()
    # the expected value follows today's store: within 10 % of what the channel would have had
    day = parent[parent["date"] == pd.Timestamp("2024-07-19")].iloc[0]
    assert abs(day["actual"] / day["expected"] - 0.75) < 0.1


def test_store_noise_does_not_inflate_share_false_alarms():
    """No shock: the shipped combination (own and gated share scores) keeps the knob on slices
    (per-point flag rate at most 1.3 x the nominal rate) although every slice swings 12 % a day
    with the store."""
    flags, points = 0, 0
    for seed in range(4):
        out = _zscore(reference="both", share_gate=1.0, share_gate_ratio=0.5).detect(
            DetectorInput(series=_store(10 + seed), sensitivity=1.0)
        )
        scored = out[(out["dimension"] == "channel")
                     & (out["date"] >= pd.Timestamp("2024-03-01"))]
        flags += int(scored["flag"].sum())
        points += len(scored)
    assert 0.2 <= flags / points * 90 <= 1.3, flags / points * 90


def test_share_gate_keeps_a_sibling_quiet():
    """-60 % for 4 days on the largest channel (half the store): the other channels' shares jump
    by ~40 % although nothing happened to them. Ungated they are flagged; with the gate (their
    own values did not move) they are not, and the shocked channel still is."""
    series = _store(2, shock=(0, 180, 4, 0.4))
    inp = DetectorInput(series=series, sensitivity=0.1)
    lo, hi = pd.Timestamp("2024-06-29"), pd.Timestamp("2024-07-04")  # days 180-185
    plain = _zscore(reference="parent").detect(inp)
    gated = _zscore(reference="parent", share_gate=1.0).detect(inp)
    assert _flags(plain, "c1", lo, hi)["flag"].any()
    assert not _flags(gated, "c1", lo, hi)["flag"].any()
    assert not _flags(gated, "c2", lo, hi)["flag"].any()
    assert _flags(gated, "c0", lo, hi)["flag"].any()


def test_overall_is_still_judged_on_its_own_history():
    """A store-wide -30 % day leaves every share unchanged: the overall series carries it."""
    series = _store(3, day_cv=0.02, swing=3650)
    series.loc[series["date"] == pd.Timestamp("2024-07-01"), "value"] *= 0.7
    out = _zscore(reference="parent").detect(DetectorInput(series=series, sensitivity=0.1))
    day = out[out["date"] == pd.Timestamp("2024-07-01")]
    assert day.loc[day["dimension"] == "overall", "flag"].all()
    assert not day.loc[day["dimension"] == "channel", "flag"].any()


def test_share_scores_are_raw_only_and_deterministic():
    series = _store(4)
    det = _zscore(reference="parent", share_gate=1.0, windows=[3, 7])
    core = det._detect_core(series, DetectorInput(series=series))
    assert "flag" not in core
    assert {"score@s1", "score@s3", "score@s7", "keep@s1"} <= set(core)
    overall = (series["dimension"] == "overall").to_numpy()
    assert core.loc[overall, "score@s1"].isna().all()  # no parent: no share score
    assert core.loc[~overall, "score"].isna().all()    # slices: the share replaces their own
    a = det.detect(DetectorInput(series=series))
    b = det.detect(DetectorInput(series=series))
    pd.testing.assert_frame_equal(a, b)


def test_parent_columns():
    keys = [("orders", "channel", "a"), ("orders", "overall", "all"), ("aov", "channel", "a")]
    assert parent_columns(keys).tolist() == [1, -1, -1]


def test_a_vetoed_window_counts_as_no_evidence():
    """``keep@<label>`` False after calibration: an impossible gate vetoes every share score, so
    even a -60 % shock on a slice judged by its share alone is not flagged (``both`` keeps the
    slice's own scores, which still see it)."""
    series = _store(2, shock=(0, 180, 4, 0.4), day_cv=0.03, swing=3650)
    inp = DetectorInput(series=series, sensitivity=0.1)
    lo, hi = pd.Timestamp("2024-06-29"), pd.Timestamp("2024-07-04")
    vetoed = _zscore(reference="parent", share_gate=100.0).detect(inp)
    assert not vetoed.loc[vetoed["dimension"] == "channel", "flag"].any()
    both = _zscore(reference="both", share_gate=100.0).detect(inp)
    assert _flags(both, "c0", lo, hi)["flag"].any()


def test_the_oracle_reads_deep_lower_tails_exactly():
    """A count far below its null (z about -7.5) gets about -7.5 from the exact tails, not the
    clip at 37 that 1 - P(X >= k) underflowed to."""
    from evaluation.oracle import _tails

    m, v = np.array([4437.0]), np.array([31642.0])
    x = m - 7.5 * np.sqrt(v)
    up, lo = _tails(np.array(["sessions"], dtype=object), x, m, v, m * np.nan, m * np.nan)
    from scipy.stats import norm

    z = norm.isf(lo[0])
    assert 6.0 < z < 9.5, z
    # gamma family (revenue): same
    up, lo = _tails(np.array(["revenue"], dtype=object), x, m, v, m * np.nan, m * np.nan)
    assert 6.0 < norm.isf(lo[0]) < 9.5


def test_shipped_gate_lets_a_visible_slice_move_count():
    """-20 % for 3 days on a channel whose store swings 12 % a day: many Poisson spreads in its
    share, about 1.4 of its own past spreads. The shipped gate (config/analysis.yaml: the own
    score must reach max(1, share_gate_ratio x the share score)) lets the share evidence count
    and the drop is flagged; the earlier ratio 0.5 vetoed it. The siblings stay quiet."""
    from analytics.config import load_analysis_config

    rz = load_analysis_config(None).detectors["rolling_zscore"]
    assert rz.reference == "both"
    inp = DetectorInput(series=_store(3, shock=(1, 200, 3, 0.8)), sensitivity=0.1)
    lo, hi = pd.Timestamp("2024-07-19"), pd.Timestamp("2024-07-23")  # days 200-204
    gate = dict(reference="both", share_gate=rz.share_gate)
    shipped = _zscore(share_gate_ratio=rz.share_gate_ratio, **gate).detect(inp)
    before = _zscore(share_gate_ratio=0.5, **gate).detect(inp)
    assert _flags(shipped, "c1", lo, hi)["flag"].any()
    assert (_flags(shipped, "c1", lo, hi).query("flag")["direction"] == "down").all()
    assert not _flags(before, "c1", lo, hi)["flag"].any()
    for sib in ("c0", "c2"):
        assert not _flags(shipped, sib, lo, hi)["flag"].any()


def test_share_scores_of_a_step_are_the_anscombe_residual_over_the_binomial_floor():
    """A quiet slice (10 % of its parent, exactly) that steps to 130: its residual against the
    baseline share is 2 (sqrt(130 + 3/8) − sqrt(100 + 3/8)) each day, the spread (past residuals
    all 0) the binomial floor sqrt(1 − share); the mean of k such periods scores sqrt(k) times
    one."""
    from analytics.detectors.share import share_scores

    t, t0 = 80, 60
    value = np.c_[np.full(t, 1000.0), np.full(t, 100.0)]
    value[t0:, 1] = 130.0
    keys = [("orders", "overall", "all"), ("orders", "channel", "a")]
    out, expected = share_scores(value, np.zeros((t, 2), bool), keys, [1, 3], 28, 14, 56,
                                 np.zeros((t, 2)), None, True, 1.5)
    r = 2 * (np.sqrt(130.375) - np.sqrt(100.375))
    assert out[1][t0 + 2, 1] == pytest.approx(r / np.sqrt(0.9), rel=1e-9)
    assert out[3][t0 + 2, 1] == pytest.approx(r / np.sqrt(0.9) * np.sqrt(3), rel=1e-9)
    assert expected[t0 + 2, 1] == pytest.approx(100.0)
    assert np.isnan(out[1][:, 0]).all()                  # the overall series has no share


def test_share_gate_needs_the_slice_itself_to_move_the_same_way():
    """share_gate: a slice's share score counts only where its own score has the same sign
    (and the size); where it has no own score yet, the share score is not vetoed."""
    from analytics.detectors.rolling_zscore import RollingZScore, RollingZScoreConfig

    rng = np.random.default_rng(11)
    n = 140
    dates = pd.date_range("2025-01-01", periods=n, freq="D")
    overall = rng.poisson(1000, n).astype(float)
    mine = rng.poisson(300, n).astype(float)
    overall[120] *= 0.4                     # the store falls by 60 %, the slice by 30 %: its
    mine[120] *= 0.7                        # share rises while it fell itself
    series = pd.concat([
        pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "overall", "segment": "all",
                      "value": overall}),
        pd.DataFrame({"date": dates, "kpi": "orders", "dimension": "channel", "segment": "a",
                      "value": mine}),
    ], ignore_index=True).sort_values(["kpi", "dimension", "segment", "date"], ignore_index=True)
    det = RollingZScore(RollingZScoreConfig(reference="parent", share_gate=1.0))
    core = det._detect_core(series, DetectorInput(series=series))
    keep = core.loc[series["segment"] == "a", "keep@s1"].to_numpy(bool)
    assert not keep[120]
    assert keep[:5].all()                   # no own score yet: nothing to veto with


def test_a_day_planned_on_the_parent_stays_out_of_the_share_baseline():
    from analytics.detectors.share import share_scores

    rng = np.random.default_rng(12)
    t = 80
    value = np.c_[rng.poisson(1000, t), rng.poisson(100, t)].astype(float)
    planned = np.zeros((t, 2), bool)
    planned[40, 0] = True                    # a campaign day of the parent (the whole store)
    keys = [("orders", "overall", "all"), ("orders", "channel", "a")]
    runs = []
    for v in (100.0, 400.0):                 # what the slice did that day does not matter later
        x = value.copy()
        x[40, 1] = v
        runs.append(share_scores(x, planned, keys, [1], 28, 14, 56, np.zeros((t, 2)), None,
                                 True, 1.5)[1][41:, 1])
    assert np.array_equal(runs[0], runs[1], equal_nan=True)


def test_a_planned_days_residual_stays_out_of_the_later_scores_spread():
    """The spread of the share residuals masked the day *after* a planned day (the current day's
    flag on the shifted series), so the planned day's own residual entered the spread and moved
    the scores for weeks after (mutation audit: [29 30 31 35 37 41 42 43] changed)."""
    from analytics.detectors.share import share_scores

    rng = np.random.default_rng(1)
    t = 120
    parent, slice_ = rng.poisson(1000, t).astype(float), rng.poisson(100, t).astype(float)
    keys = [("orders", "overall", "all"), ("orders", "channel", "a")]
    planned = np.zeros((t, 2), bool)
    planned[20] = True
    runs = []
    for v in (100.0, 400.0):                 # what the slice did on its planned day
        x = np.c_[parent, np.r_[slice_[:20], v, slice_[21:]]]
        runs.append(share_scores(x, planned, keys, [1], 28, 14, 56, np.zeros((t, 2)), None,
                                 True, 1.5)[0][1][21:, 1])
    assert np.isfinite(runs[0]).sum() > 50
    assert np.array_equal(runs[0], runs[1], equal_nan=True)


def test_the_share_gate_leaves_the_overall_series_bonferroni_count_alone():
    """The overall series has no parent, so no share score (NaN): there is nothing for the gate
    to veto. A veto turns a score into a 0 that still counts in the Bonferroni penalty
    (``base.combine_windows``: windows *that have a score at that point*); the gate used to
    'veto' the overall series' missing share scores too, so its own three windows were
    combined as six looks and it needed a larger move than with ``reference: own``. Slice-only
    settings must not move the overall series' scores."""
    series = _store(5, day_cv=0.05, swing=3650)
    inp = DetectorInput(series=series, sensitivity=0.1)
    own = _zscore(windows=[3, 7]).detect(inp)
    gated = _zscore(reference="both", share_gate=1.0, share_gate_ratio=0.25,
                    windows=[3, 7]).detect(inp)
    overall = (own["dimension"] == "overall").to_numpy()
    assert (gated["dimension"] == own["dimension"]).all()
    np.testing.assert_array_equal(gated.loc[overall, "score"].to_numpy(),
                                  own.loc[overall, "score"].to_numpy())
    # on a slice, a share score the gate has nothing to judge (no share score yet) is no veto
    core = _zscore(reference="both", share_gate=1.0, windows=[3, 7])._detect_core(series, inp)
    for k in (1, 3, 7):
        assert core.loc[core[f"score@s{k}"].isna(), f"keep@s{k}"].all()


def test_a_windows_share_spread_ends_before_the_window():
    """A k-period window's spread comes from the residuals before the window, as rolling_zscore's
    own scores take theirs (``shift(err, k)``): two runs whose slice differs only inside a 3-day
    window, by residuals of +d and −d on its first two days (the window's mean unchanged), score
    that window alike. Before, its spread held the window's own earlier days (+d and −d, large:
    the MAD moved) and the 3- and 7-day scores of a lasting move were damped by the move itself."""
    from analytics.detectors.share import share_scores

    rng = np.random.default_rng(5)
    t, end = 120, 100
    parent, slice_ = rng.poisson(1000, t).astype(float), rng.poisson(100, t).astype(float)
    keys = [("orders", "overall", "all"), ("orders", "channel", "a")]
    moved = slice_.copy()
    d = 8.0                                  # Anscombe units: r = 2 (sqrt(x + 3/8) − sqrt(E + 3/8))
    for day, sign in ((end - 2, 1), (end - 1, -1)):
        moved[day] = (np.sqrt(slice_[day] + 0.375) + sign * d / 2) ** 2 - 0.375
    runs = [share_scores(np.c_[parent, x], np.zeros((t, 2), bool), keys, [1, 3], 28, 14, 56,
                         np.zeros((t, 2)), None, False, 1.5)[0] for x in (slice_, moved)]
    assert np.isfinite(runs[0][3][end, 1])
    assert runs[1][3][end, 1] == pytest.approx(runs[0][3][end, 1], rel=1e-9, abs=1e-12)
    assert runs[1][1][end - 2, 1] - runs[0][1][end - 2, 1] > 5   # the days did move
