"""A worker's memos (world tables + KPIs, unchanged detectors' outputs) never change a cell's
result."""

from __future__ import annotations

import pytest

from experiments import cell


@pytest.fixture()
def world(tmp_path_factory):
    from simulation.api import generate, load_scenario

    raw = load_scenario("config/scenarios/small.yaml")
    out = tmp_path_factory.mktemp("memo") / "world"
    generate(raw, out, fmt="parquet")
    return out


def _analysis(threshold: float) -> dict:
    import yaml
    raw = yaml.safe_load(open("config/analysis.yaml", encoding="utf-8"))
    dets = raw.setdefault("detectors", {})
    dets.setdefault("prophet_residual", {})["enabled"] = False
    dets.setdefault("rolling_zscore", {})["threshold"] = threshold
    return raw


def test_memoized_cells_equal_fresh_analyses(world, monkeypatch):
    from analytics.detectors import REGISTRY
    from evaluation.oracle import IMPLEMENTATIONS
    from evaluation.pipeline import STAGES, analyse

    scoring = [s for s in STAGES if s[0] in cell.SCORING_STAGES]
    monkeypatch.setattr(cell, "_WORLDS", type(cell._WORLDS)())
    monkeypatch.setattr(cell, "_DETECTIONS", type(cell._DETECTIONS)())
    monkeypatch.setattr(cell, "_CORES", type(cell._CORES)())
    monkeypatch.setattr(cell, "_CALIBRATED", type(cell._CALIBRATED)())
    monkeypatch.setattr(cell, "_INPUTS", type(cell._INPUTS)())
    rz = REGISTRY["rolling_zscore"]
    cores, core = [], rz._detect_core   # rolling_zscore's raw scores: computed how often?
    monkeypatch.setattr(rz, "_detect_core", lambda self, s, i: cores.append(1) or core(self, s, i))
    registry, oracles = dict(REGISTRY), dict(IMPLEMENTATIONS)
    first = cell.analyse_for_scorecard(world, _analysis(3.0))     # fills the memos
    assert len(cell._WORLDS) == 1 and len(cell._DETECTIONS) >= 2
    n_cores = len(cores)
    assert n_cores >= 1
    again = cell.analyse_for_scorecard(world, _analysis(3.0))  # every detector from the memo
    other = cell.analyse_for_scorecard(
        world, _analysis(2.0)
    )  # rolling_zscore re-thresholded on its memoized raw scores, others reused whole
    assert len(cores) == n_cores   # only its threshold changed: no raw score was recomputed
    assert len(cell._CALIBRATED) >= 1   # nor calibrated again
    assert REGISTRY == registry and IMPLEMENTATIONS == oracles    # the registries are restored
    assert first == again == analyse(world, _analysis(3.0), stages=scoring)
    assert len(cores) == 2 * n_cores   # the fresh analysis (no memo) computed them again
    assert other == analyse(world, _analysis(2.0), stages=scoring)
    assert other != first   # the threshold matters, so a wrong reuse would show


def test_adding_products_reuses_the_other_detectors(world, monkeypatch):
    """A cell that only adds the product dimension recomputes no raw score of the detectors that
    never see product series, and its scorecard equals a fresh analysis."""
    from analytics.detectors import REGISTRY
    from evaluation.pipeline import STAGES, analyse

    scoring = [s for s in STAGES if s[0] in cell.SCORING_STAGES]
    for name in ("_WORLDS", "_DETECTIONS", "_CORES", "_CALIBRATED", "_INPUTS"):
        monkeypatch.setattr(cell, name, type(getattr(cell, name))())
    rz = REGISTRY["rolling_zscore"]
    cores, core = [], rz._detect_core
    monkeypatch.setattr(rz, "_detect_core", lambda self, s, i: cores.append(1) or core(self, s, i))
    plain = _analysis(3.0)   # the shipped dimensions hold product: plain leaves it out
    plain["dimensions"] = [d for d in plain["dimensions"] if d != "product"]
    with_products = _analysis(3.0)
    with_products["dimensions"] = [*plain["dimensions"], "product"]
    cell.analyse_for_scorecard(world, plain)
    n_cores = len(cores)
    got = cell.analyse_for_scorecard(world, with_products)
    assert len(cores) == n_cores   # rolling_zscore came from the memo
    assert "product_watch" in got["strict"]["detectors"]
    assert got == analyse(world, with_products, stages=scoring)


def test_watched_series_built_once_per_world_and_settings(world, monkeypatch):
    """The watched series (analytics.pipeline.detector_input) are built once per world and per
    the settings they read: a cell that changes only a detector reuses them; one that changes
    what is watched (here the store-wide sensitivity, a field of the input) gets its own, and
    its scorecard equals a fresh analysis."""
    import analytics.pipeline as ap
    from evaluation.pipeline import STAGES, analyse

    scoring = [s for s in STAGES if s[0] in cell.SCORING_STAGES]
    for name in ("_WORLDS", "_DETECTIONS", "_CORES", "_CALIBRATED", "_INPUTS"):
        monkeypatch.setattr(cell, name, type(getattr(cell, name))())
    built, build = [], ap.detector_input
    monkeypatch.setattr(ap, "detector_input", lambda ctx: built.append(1) or build(ctx))
    first = cell.analyse_for_scorecard(world, _analysis(3.0))
    cell.analyse_for_scorecard(world, _analysis(2.0))
    assert len(built) == 1
    other = _analysis(3.0)
    other["sensitivity"] = 0.5
    got = cell.analyse_for_scorecard(world, other)
    assert len(built) == 2
    assert got != first
    assert got == analyse(world, other, stages=scoring)


@pytest.mark.parametrize("mask_flagged, computed", [(False, 1), (True, 2)])
def test_a_core_that_reads_the_threshold_is_not_reused_across_thresholds(monkeypatch,
                                                                         mask_flagged, computed):
    """prophet_residual with ``mask_flagged`` leaves points beyond its threshold out of later
    fits, so its raw scores depend on the threshold; a sweep cell changing only that reused
    another cell's raw scores (no class set ``core_reads_threshold``; docs audit 2026-12-05)."""
    import pandas as pd

    from analytics.detectors import DetectorInput
    from analytics.detectors.prophet_residual import ProphetResidual

    monkeypatch.setattr(cell, "_CORES", type(cell._CORES)())
    calls = []

    def fake_core(self, series, inp):
        calls.append(self.config.sensitivity)
        return pd.DataFrame({"score": 0.0, "expected": 1.0}, index=series.index)

    monkeypatch.setattr(ProphetResidual, "_detect_core", fake_core)
    memo = cell._memoized(ProphetResidual)
    series = pd.DataFrame({"date": pd.date_range("2025-01-01", periods=40), "kpi": "orders",
                           "dimension": "overall", "segment": "all", "value": 10.0})
    inp = DetectorInput(series=series)
    for sensitivity in (0.1, 0.2):
        cfg = ProphetResidual.config_class(mask_flagged=mask_flagged, sensitivity=sensitivity)
        memo(cfg, name="prophet_residual")._detect_core(series, inp)
    assert len(calls) == computed, calls
