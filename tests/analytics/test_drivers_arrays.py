"""``drivers.explain`` on arrays (analytics.driver_arrays) gives exactly the pandas reference
``rank(attribute(window_table(...)))``: same slices, same floats bit for bit, same ranking."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tests.analytics.insights_synth import Shock, kpis_from_cube, make_cube, raw_tables

from analytics import driver_arrays as da
from analytics import drivers as dr

SHOCKS = [
    Shock("2025-05-12", "2025-05-16", "sessions", 0.4, {"channel": "paid_social"}),
    Shock("2025-05-20", "2025-05-21", "conversion", 0.5, {"country": "DE"}),
    Shock("2025-05-26", "2025-05-30", "aov", 1.6, {"category": "electronics"}),
]


@pytest.fixture(scope="module")
def panel() -> dr.SlicePanel:
    cube = make_cube(SHOCKS)
    kpis = kpis_from_cube(cube)
    # detectors' expected values on the channel slices of revenue, one day missing on one slice
    ch = kpis.loc[kpis["dimension"] == "channel"].reset_index(drop=True)
    det = pd.DataFrame({"date": ch["date"], "kpi": "revenue", "dimension": "channel",
                        "segment": ch["segment"], "detector": "d1", "score": 0.0, "flag": False,
                        "direction": "up", "expected": ch["revenue"] * 1.05,
                        "actual": ch["revenue"], "mode": "causal"}).drop(index=[7])
    return dr.SlicePanel(kpis, det, dr.pair_daily(raw_tables(cube)))


def _same(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or x == y
    if isinstance(x, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, list):
        return len(x) == len(y) and all(_same(u, v) for u, v in zip(x, y, strict=True))
    return type(x) is type(y) and x == y


def _reference(panel, kpi, start, end, expected, shift_days, pairs, **kw) -> dr.DriverResult:
    table = dr.window_table(panel, kpi, start, end, expected, 4, shift_days)
    if not table.empty and not pairs:
        table = table.loc[table["dimension"] != dr.PAIR_DIMENSION]
    return dr.rank(dr.attribute(table, kpi), **kw)


WINDOWS = [("2025-05-12", "2025-05-16"), ("2025-05-20", "2025-05-21"), ("2025-05-26", "2025-05-30"),
           ("2025-05-14", "2025-05-14"), ("2025-05-10", "2025-06-02")]


@pytest.mark.parametrize("kpi", ["revenue", "sessions", "orders", "conversion_rate", "aov"])
@pytest.mark.parametrize("expected", ["auto", "baseline", "detector", "shift"])
def test_explain_equals_the_pandas_reference(panel, kpi, expected):
    n_concentrated = 0
    for start, end in WINDOWS:
        s, e = pd.Timestamp(start), pd.Timestamp(end)
        shift = 7 if expected == "shift" else None
        for pairs, kw in [(True, {}), (False, {}), (True, {"top_k": 2, "min_share": 0.2})]:
            got = dr.explain(panel, kpi, s, e, expected=expected, shift_days=shift, pairs=pairs,
                             **kw)
            ref = _reference(panel, kpi, s, e, expected, shift, pairs, **kw)
            assert _same(got.__dict__, ref.__dict__), (kpi, expected, start, pairs, kw)
            n_concentrated += got.scope == "concentrated"
    if kpi in ("revenue", "sessions", "orders") and expected in ("auto", "baseline"):
        assert n_concentrated  # the comparison covers named drivers, not only empty results


def test_slice_driver_is_the_slice_row_of_the_reference(panel):
    s, e = pd.Timestamp("2025-05-12"), pd.Timestamp("2025-05-16")
    ref = dr.attribute(dr.window_table(panel, "revenue", s, e, "baseline"), "revenue")
    row = ref.loc[(ref["dimension"] == "channel") & (ref["segment"] == "paid_social")]
    got = dr.slice_driver(panel, "revenue", s, e, "channel", "paid_social", "baseline")
    assert got["concentration"] == float(row["concentration"].iloc[0]) > 0.3
    assert got["actual"] == float(row["actual"].iloc[0])
    assert dr.slice_driver(panel, "sessions", s, e, "category", "electronics") is None


@pytest.mark.parametrize("values, groups", [
    ([1e16, 1.0, 1.0, 1.0, -1e16, 3.0], [(0, 5), (5, 6)]),
    ([6502.43015635281, 4630.232470999999, 13890.697414, 10186.511437, 8334.418448,
      2778.139483], [(0, 6)]),
    ([1e16, 1.0, np.nan, 1.0, -1e16, np.nan, np.nan], [(0, 5), (5, 7)]),
    ([np.inf, 1.0, 2.0, 5.0], [(0, 3), (3, 4)]),
])
def test_group_sum_is_pandas_grouped_sum(values, groups):
    v = np.array(values, dtype=float)
    codes = np.concatenate([[k] * (hi - lo) for k, (lo, hi) in enumerate(groups)])
    ref = pd.Series(v).groupby(codes).transform("sum").to_numpy()
    np.testing.assert_array_equal(da.group_sum(v, groups), ref)


def test_nanmedian0_is_numpys_nanmedian_bit_for_bit():
    rng = np.random.default_rng(7)
    for k in (1, 2, 4, 7, 8):
        stack = rng.lognormal(5, 2, size=(k, 30, 9))
        stack[rng.random(stack.shape) < 0.3] = np.nan
        stack[:, 0, 0] = np.nan  # a slice with no value at all
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            ref = np.nanmedian(stack, axis=0)
        np.testing.assert_array_equal(dr.nanmedian0(stack), ref)


def test_nanmedian0_on_long_columns_with_inf_and_empty_input():
    """The calibrator's 182-day windows: long columns, all-NaN ones, an inf, no rows."""
    import warnings

    rng = np.random.default_rng(3)
    for trial in range(300):
        rows, cols = int(rng.integers(1, 400)), int(rng.integers(1, 30))
        x = np.abs(rng.standard_t(3, size=(rows, cols))) * rng.choice([1e-3, 1.0, 1e3])
        x[rng.random((rows, cols)) < rng.random()] = np.nan
        x[:, 0] = np.nan if trial % 3 == 0 else x[:, 0]  # an all-NaN column
        if trial % 5 == 0:
            x[0, -1] = np.inf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(x, axis=0)
        assert np.array_equal(dr.nanmedian0(x), want, equal_nan=True), trial
    assert np.isnan(dr.nanmedian0(np.empty((0, 3)))).all()



def test_slices_that_first_appear_late_keep_their_dimension_together():
    """A real transactions file: a country (and its channel x country cell) that first trades
    weeks after the first day. The panel's columns came in order of first appearance, so the
    late cell sat after "overall" and explaining a window was an internal error ("rows are not
    grouped by dimension")."""
    days = pd.date_range("2025-01-01", periods=70, freq="D")
    rows = []
    for i, d in enumerate(days):
        rev = {"FR": 100.0}
        if i >= 30:   # UK first trades on day 30, and jumps on day 60
            rev["UK"] = 140.0 if i >= 60 else 100.0
        for c, r in rev.items():
            rows += [(d, "country", c, r), (d, "channel_country", f"online|{c}", r)]
        total = sum(rev.values())
        rows += [(d, "channel", "online", total), (d, "overall", "all", total)]
    k = pd.DataFrame(rows, columns=["date", "dimension", "segment", "revenue"])
    k["orders"] = k["revenue"] / 50.0
    panel = dr.SlicePanel(k)
    dims = [d for d, _ in panel.values["revenue"].columns]
    assert dims == sorted(dims)
    got = dr.explain(panel, "revenue", days[60], days[69], expected="baseline")
    assert got.scope == "concentrated"
    assert (got.top["dimension"], got.top["value"], got.top["change"]) == ("country", "UK", 400.0)


def test_group_sum_of_opposite_infinities_is_nan_without_a_warning():
    """Shares of a zero total change are +-inf; their folded 'other' sum is NaN, as pandas
    gives it, but numpy's reduceat also printed 'RuntimeWarning: invalid value encountered in
    reduceat' on the stderr of a --quiet run (a small store whose last week had no order;
    edge-worlds audit)."""
    import warnings

    v = np.array([np.inf, -np.inf, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = da.group_sum(v, [(0, 2), (2, 4)])
    assert np.isnan(out[:2]).all() and out[2:].tolist() == [3.0, 3.0]
