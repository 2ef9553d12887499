"""One contract test per registered detector, plus causality and registry errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.conftest import spike_series

from analytics.detectors import REGISTRY, DetectorInput, get_detector_class
from analytics.detectors.base import OUTPUT_COLUMNS, refit_points
from evaluation.oracle import IMPLEMENTATIONS
from shocklab.errors import InputError

# prophet: serial in tests (no worker processes)
TEST_PARAMS = {"prophet_residual": {"n_jobs": 1}}


def _make(name: str, **over):
    cls = IMPLEMENTATIONS.get(name, REGISTRY[name])  # the oracle: declared here, runs in evaluation
    params = {**TEST_PARAMS.get(name, {}), **over}
    return cls(cls.config_class(**params), name=name)


def _input(series: pd.DataFrame) -> DetectorInput:
    """150 days of two series is little history for the calibrator and the forest: a knob of one
    false alert per series per 90 days (threshold 2.54) instead of the shipped 0.1."""
    base = series[["date", "kpi", "dimension", "segment", "baseline"]].rename(
        columns={"baseline": "value"}
    )
    return DetectorInput(
        series=series.drop(columns="baseline"), baseline=base, seed=11, sensitivity=1.0
    )


# made for product series (dimension product, with category exposure): their contract tests are in
# tests/analytics/test_product_watch.py
PRODUCT_ONLY = {n for n, c in REGISTRY.items() if c.watches_products and not c.needs_truth}
GENERAL = sorted(set(REGISTRY) - PRODUCT_ONLY)


def _params(name: str):
    return pytest.param(name, marks=pytest.mark.slow) if name == "prophet_residual" else name


@pytest.mark.parametrize("name", [_params(n) for n in GENERAL])
def test_detector_contract(name):
    series = spike_series()
    det = _make(name)
    out = det.detect(_input(series))
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) == len(series)
    assert np.isfinite(out["score"]).all()
    assert out["flag"].dtype == bool
    assert set(out["direction"]) <= {"up", "down"}
    assert set(out["mode"]) == {det.mode} and det.mode in ("causal", "in_sample")
    assert (out["detector"] == name).all()
    # rows come back sorted by series, then date
    expected = series.sort_values(["kpi", "dimension", "segment", "date"], kind="stable")
    np.testing.assert_allclose(out["actual"].to_numpy(), expected["value"].to_numpy())
    # the injected spike is flagged, upward, on every KPI, and it is the top score of its series
    spike_day = pd.Timestamp("2025-01-01") + pd.Timedelta(days=120)
    hit = out[out["date"] == spike_day]
    if name == "level_shift":  # window medians: one spike is no shift
        assert not hit["flag"].any(), hit
        return
    assert hit["flag"].all() and (hit["direction"] == "up").all(), hit
    for _, g in out.groupby("kpi"):
        assert g.loc[g["score"].idxmax(), "date"] == spike_day
    # a flag agrees with the sign of the score
    assert ((out["score"] >= 0) == (out["direction"] == "up")).all()


@pytest.mark.parametrize("name", [_params(n) for n in GENERAL])
def test_too_short_history_scores_nothing(name):
    """A series shorter than any warm-up gives zero scores and no flags — not an error."""
    series = spike_series(n=12, spike_at=10)
    out = _make(name).detect(_input(series))
    assert len(out) == len(series) and np.isfinite(out["score"]).all()
    if name != "oracle":
        assert not out["flag"].any()


@pytest.mark.parametrize("name", [_params(n) for n in GENERAL if n != "oracle"])
def test_causal_detectors_ignore_the_future(name):
    """Changing the last 20 days must not change any score before them."""
    series = spike_series(kpis=("revenue",))
    det = _make(name)
    assert det.mode == "causal"
    a = det.detect(_input(series))
    changed = series.copy()
    changed.loc[changed.index[-20:], "value"] *= 3.0
    b = det.detect(_input(changed))
    cut = len(series) - 20
    np.testing.assert_array_equal(a["score"].to_numpy()[:cut], b["score"].to_numpy()[:cut])
    assert not np.array_equal(a["score"].to_numpy()[cut:], b["score"].to_numpy()[cut:])


def test_isolation_forest_is_seeded():
    series = spike_series()
    a = _make("isolation_forest").detect(_input(series))
    b = _make("isolation_forest").detect(_input(series))
    pd.testing.assert_frame_equal(a, b)
    other = DetectorInput(series=series.drop(columns="baseline"), seed=12)
    c = _make("isolation_forest").detect(other)
    assert not np.array_equal(a["score"].to_numpy(), c["score"].to_numpy())


def test_isolation_forest_scores_a_block_in_one_call(monkeypatch):
    """Each fit's reference rows and its block's rows are scored in one ``score_samples`` call
    (each call walks every tree again): the same floats as separate calls, a row's score being
    its own."""
    from sklearn.ensemble import IsolationForest

    fits, calls = [], []
    fit, score = IsolationForest.fit, IsolationForest.score_samples

    def counted_fit(self, X, *a, **k):
        fits.append(len(X))
        return fit(self, X, *a, **k)

    def counted_score(self, X):
        calls.append(len(X))
        out = score(self, X)
        cut = len(X) // 3
        np.testing.assert_array_equal(out, np.concatenate([score(self, X[:cut]),
                                                           score(self, X[cut:])]))
        return out

    monkeypatch.setattr(IsolationForest, "fit", counted_fit)
    monkeypatch.setattr(IsolationForest, "score_samples", counted_score)
    _make("isolation_forest").detect(_input(spike_series()))
    assert fits and len(calls) == len(fits)
    assert all(c > f for c, f in zip(calls, fits, strict=True))  # the reference and the block


def test_in_sample_modes_are_labelled():
    series = spike_series(kpis=("revenue",))
    out = _make("isolation_forest", mode="in_sample").detect(_input(series))
    assert set(out["mode"]) == {"in_sample"}


def test_direction_filter_and_threshold():
    series = spike_series(kpis=("revenue",), factor=0.4)  # a drop
    down = _make("rolling_zscore", direction="up", threshold=4.0).detect(_input(series))
    assert not down["flag"].any()
    both = _make("rolling_zscore", threshold=4.0).detect(_input(series))
    assert both["flag"].any() and set(both.loc[both["flag"], "direction"]) == {"down"}


def test_the_threshold_is_inclusive_and_no_value_is_no_flag():
    """|score| >= threshold flags (the base class's cut), either sign; a point without a value
    never flags, whatever its score."""
    from typing import Literal

    from analytics.detectors.base import Detector, DetectorConfig

    class FixedConfig(DetectorConfig):
        type: Literal["fixed_test"] = "fixed_test"

    class Fixed(Detector):   # the core's scores are already calibrated: they pass unchanged
        type_name, config_class, calibrated_raw = "fixed_test", FixedConfig, True

        def _detect_core(self, series, inp):
            return pd.DataFrame({"score": [1.0, 3.0, -3.0, 2.99, 5.0], "expected": 0.0},
                                index=series.index)

    series = pd.DataFrame({"date": pd.date_range("2025-01-01", periods=5, freq="D"),
                           "kpi": "orders", "dimension": "overall", "segment": "all",
                           "value": [1.0, 2.0, 3.0, 4.0, np.nan]})
    out = Fixed(FixedConfig(threshold=3.0)).detect(DetectorInput(series=series))
    assert out["flag"].tolist() == [False, True, True, False, False]


def test_rolling_zscore_same_weekday_and_mad():
    series = spike_series(kpis=("revenue",))
    for params in ({"same_weekday": True, "window": 6, "min_periods": 4}, {"method": "median_mad"}):
        out = _make("rolling_zscore", **params).detect(_input(series))
        assert out.loc[out["score"].idxmax(), "date"] == pd.Timestamp("2025-05-01")


def test_oracle_needs_truth():
    series = spike_series(kpis=("revenue",)).drop(columns="baseline")
    with pytest.raises(InputError, match="needs truth"):
        _make("oracle").detect(DetectorInput(series=series))


def test_unknown_detector_lists_known():
    with pytest.raises(
        InputError,
        match=r"unknown detector type 'nope' \(known: count_likelihood, isolation_forest, "
        r"level_shift, likelihood, oracle, product_watch, prophet_residual, rolling_zscore\)",
    ):
        get_detector_class("nope")


def test_refit_points_double_then_cap():
    assert refit_points(700, 28, 182) == [28, 56, 112, 224, 406, 588]
    assert refit_points(20, 28, 182) == []


@pytest.mark.slow
def test_prophet_failure_is_reported_not_fatal(monkeypatch):
    """Every series failing raises (the pipeline records it); one failing leaves NaN scores."""
    from analytics.detectors import prophet_residual as pr

    def boom(*a, **k):
        raise RuntimeError("cannot fit")

    monkeypatch.setattr(pr, "_fit_predict", boom)
    with pytest.raises(RuntimeError, match="Prophet failed on every series"):
        _make("prophet_residual").detect(_input(spike_series(kpis=("revenue",))))


def test_prophet_worker_count_never_nests_pools(monkeypatch):
    import multiprocessing

    from analytics.detectors.prophet_residual import _worker_count

    assert _worker_count(3) == 3
    monkeypatch.setattr(
        multiprocessing, "parent_process", lambda: object()
    )  # inside a sweep worker
    assert _worker_count(0) == 1 and _worker_count(2) == 2


def test_slice_threshold_add_only_raises_the_bar_on_slices():
    overall = spike_series(kpis=("revenue",))
    sliced = overall.assign(dimension="channel", segment="web")
    both = pd.concat([overall, sliced], ignore_index=True)
    det = _make("rolling_zscore")
    plain = det.detect(_input(both))
    strict = det.detect(
        DetectorInput(
            series=both.drop(columns="baseline"), slice_threshold_add=100.0, sensitivity=1.0
        )
    )
    assert plain.loc[plain["dimension"] == "channel", "flag"].any()
    assert not strict.loc[strict["dimension"] == "channel", "flag"].any()
    pd.testing.assert_series_equal(
        plain.loc[plain["dimension"] == "overall", "flag"],
        strict.loc[strict["dimension"] == "overall", "flag"],
    )


@pytest.mark.parametrize("name", ["rolling_zscore", "count_likelihood", "isolation_forest"])
def test_wide_matrix_built_once_per_detect(name, monkeypatch):
    """The core and the calibration of each score column share one ``Wide`` of the judged
    series (``Detector.wide``), dropped when ``detect`` returns: the same detections as with a
    fresh ``Wide.of`` each time."""
    from analytics.detectors import base, calibrate

    series = spike_series()
    fresh = _make(name)
    monkeypatch.setattr(base.Detector, "wide", lambda self, s: calibrate.Wide.of(s))
    ref = fresh.detect(_input(series))
    monkeypatch.undo()
    calls = []
    real = calibrate.Wide.of.__func__
    monkeypatch.setattr(calibrate.Wide, "of",
                        classmethod(lambda cls, s: calls.append(1) or real(cls, s)))
    det = _make(name)
    out = det.detect(_input(series))
    assert len(calls) == 1
    assert det._wide is None
    pd.testing.assert_frame_equal(out, ref, check_exact=True)


@pytest.mark.parametrize("segment_dtype", ["str", "object", "category"])
def test_output_text_columns_typed_as_pandas_infers(segment_dtype):
    """The detections' text columns (kpi, dimension, segment, detector, direction, mode) are
    taken from the series' arrays or built in Arrow, not from Python objects: the same frame,
    dtypes included, as one built from object arrays."""
    series = spike_series()
    series["segment"] = series["segment"].astype(segment_dtype)
    out = _make("rolling_zscore").detect(_input(series))
    rebuilt = pd.DataFrame({c: (out[c].to_numpy(object) if out[c].dtype != "datetime64[s]"
                                and not pd.api.types.is_numeric_dtype(out[c])
                                and out[c].dtype != bool else out[c].to_numpy())
                            for c in out.columns})
    pd.testing.assert_frame_equal(out, rebuilt, check_exact=True)
    assert set(out["direction"]) <= {"up", "down"} and (out["mode"] == "causal").all()


def test_a_channel_scoped_planned_day_concerns_only_that_channels_cells():
    """``calendar_mask``: a planned day scoped ``channel=email`` concerns the email slice and
    the slices containing it (overall, countries, categories, products), not the other channels
    -- nor the channel x country cells of the other channels (``paid|DE`` is inside channel
    paid, as scoring places a cell: ARCHITECTURE.md "Scoring"). A cell of another channel was
    muted and left out of its baselines on every email campaign day."""
    from analytics.detectors.base import calendar_mask

    day = pd.Timestamp("2025-01-10")
    rows = [("overall", "all"), ("channel", "email"), ("channel", "paid"), ("country", "DE"),
            ("channel_country", "email|DE"), ("channel_country", "paid|DE"),
            ("channel_country", "email|FR")]
    series = pd.DataFrame({"date": day, "kpi": "orders", "dimension": [d for d, _ in rows],
                           "segment": [s for _, s in rows], "value": 1.0})
    cal = pd.DataFrame({"date": [day], "name": ["mail"], "kind": ["campaign"],
                        "scope": ["channel=email"]})
    got = dict(zip(rows, calendar_mask(series, cal), strict=True))
    assert got == {("overall", "all"): True, ("channel", "email"): True,
                   ("channel", "paid"): False, ("country", "DE"): True,
                   ("channel_country", "email|DE"): True, ("channel_country", "paid|DE"): False,
                   ("channel_country", "email|FR"): True}
    cal["scope"] = "channel=email,country=DE"
    got = dict(zip(rows, calendar_mask(series, cal), strict=True))
    assert [r for r, m in got.items() if m] == [("overall", "all"), ("channel", "email"),
                                                ("country", "DE"),
                                                ("channel_country", "email|DE")]
