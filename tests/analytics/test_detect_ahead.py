"""Detectors run beside the chain (``analytics.detect_ahead``): ``stage_detect`` leaves the
isolation forest a place, its job fills it (here, or in the stage scheduler's worker:
tests/analytics/test_schedule.py), and ``settle`` gives the detections and statuses of a run in
order — the same frame, the same order, a failure reported the same way."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics import detect_ahead
from analytics.config import load_analysis_config
from analytics.context import RunContext
from analytics.detectors.isolation_forest import IsolationForestDetector
from analytics.loading import load_data_dir
from analytics.pipeline import select_detectors, stage_detect, stage_kpis


def _ctx(synth_dir, tmp_path, detectors: list[str] | None = None) -> RunContext:
    """The synthetic data's KPIs; the shipped detectors (the oracle left to its stage)."""
    cfg = select_detectors(load_analysis_config(), detectors)
    ctx = RunContext(config=cfg, data=load_data_dir(synth_dir), out_dir=tmp_path)
    stage_kpis(ctx)
    return ctx


def _status(ctx: RunContext) -> list[tuple[str, dict]]:
    return [(n, {k: v for k, v in st.items() if k != "seconds"})
            for n, st in ctx.detector_status.items()]


def _deferred(synth_dir, tmp_path, appended: pd.DataFrame | None = None,
              watched: bool = True) -> RunContext:
    """The deferred path in one process: defer, detect, (the oracle's rows), the job, settle;
    ``watched=False``: the job builds the watched series itself, as the worker does."""
    ctx = _ctx(synth_dir, tmp_path)
    jobs = detect_ahead.defer(ctx)
    assert [name for name, _ in jobs] == ["detect.isolation_forest"]
    stage_detect(ctx)
    assert ctx.detections is None  # assembled once the deferred frame is in
    assert ctx.detector_status["isolation_forest"]["skipped"]  # its place, in the config's order
    if appended is not None:
        ctx.detections = appended
    inp = ctx.watched
    if not watched:
        ctx.watched = None
    for _, job in jobs:
        job(ctx)
    ctx.watched = inp
    detect_ahead.settle(ctx)
    assert not {detect_ahead.DEFERRED, detect_ahead.PIECES} & set(ctx.ahead)
    return ctx


@pytest.mark.parametrize("watched", [True, False])
def test_deferred_detections_equal_those_in_order(synth_dir, tmp_path, watched):
    ref = _ctx(synth_dir, tmp_path)
    stage_detect(ref)
    ctx = _deferred(synth_dir, tmp_path, watched=watched)
    pd.testing.assert_frame_equal(ctx.detections, ref.detections)
    assert _status(ctx) == _status(ref)
    assert ctx.detector_status["isolation_forest"]["ok"]


def test_rows_appended_before_settle_follow_the_detectors(synth_dir, tmp_path):
    """What the stages between detect and the join append (the oracle's rows) comes after every
    detector's, as when the oracle stage appends to the whole frame in order."""
    ref = _ctx(synth_dir, tmp_path)
    stage_detect(ref)
    oracle = ref.detections.iloc[:50].assign(detector="oracle").reset_index(drop=True)
    ctx = _deferred(synth_dir, tmp_path, appended=oracle)
    pd.testing.assert_frame_equal(
        ctx.detections, pd.concat([ref.detections, oracle], ignore_index=True))


def test_a_deferred_detector_that_fails_is_reported_as_in_order(synth_dir, tmp_path,
                                                                monkeypatch):
    def boom(self, series, inp):
        raise RuntimeError("no forest today")

    monkeypatch.setattr(IsolationForestDetector, "_detect_core", boom)
    ref = _ctx(synth_dir, tmp_path)
    stage_detect(ref)
    ctx = _deferred(synth_dir, tmp_path)
    pd.testing.assert_frame_equal(ctx.detections, ref.detections)
    assert _status(ctx) == _status(ref)
    assert ctx.detector_status["isolation_forest"]["error"] == "RuntimeError: no forest today"
    assert "isolation_forest" not in set(ctx.detections["detector"])


def test_settle_without_a_deferred_result_fails_loudly(synth_dir, tmp_path):
    ctx = _ctx(synth_dir, tmp_path)
    detect_ahead.defer(ctx)
    stage_detect(ctx)
    with pytest.raises(RuntimeError, match="isolation_forest"):
        detect_ahead.settle(ctx)


def test_nothing_is_deferred_when_no_detector_qualifies(synth_dir, tmp_path):
    ctx = _ctx(synth_dir, tmp_path, ["rolling_zscore"])
    assert detect_ahead.defer(ctx) == [] and not ctx.ahead
    stage_detect(ctx)
    assert ctx.detections is not None and detect_ahead.PIECES not in ctx.ahead
    detect_ahead.settle(ctx)   # nothing to do
    assert set(ctx.detections["detector"]) == {"rolling_zscore"}
