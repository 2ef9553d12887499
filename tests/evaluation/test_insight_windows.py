"""The attribution engine on the true windows (``insight_scoring.event_windows``) on a store of
a few orders a day: a slice that sold nothing in its baseline weeks has no magnitude, it is not a
crash (random world seed 708 ended in exit 3, float division by zero)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation.insight_scoring import relative_change

ROOT = Path(__file__).resolve().parents[2]


def test_relative_change_has_no_value_on_an_empty_baseline():
    assert relative_change(6.0, 4.0) == pytest.approx(0.5)
    assert relative_change(5.0, 0.0) is None
    assert relative_change(0.0, 0.0) is None
    assert relative_change(5.0, math.nan) is None


@pytest.mark.slow
def test_a_tiny_random_world_is_analysed_and_scored(tmp_path, monkeypatch):
    import generate_data
    import run_analysis

    monkeypatch.chdir(ROOT)
    data, out = tmp_path / "w708", tmp_path / "r708"
    assert generate_data.main(["--config", "config/scenarios/random_world.yaml", "--seed", "708",
                               "--out", str(data), "--format", "parquet"]) == 0
    assert run_analysis.main(["--data", str(data), "--out", str(out), "--quiet",
                              "--set", "insights.forecast.enabled=false",
                              "--set", "detectors.prophet_residual.enabled=false"]) == 0
    card = json.loads((out / "scorecard.json").read_text())
    rows = card["insights"]["event_windows"]["per_event"]
    assert len(rows) >= 20
    assert any(r["magnitude_pct"] is None for r in rows)  # the empty baseline, no value
    assert any(r["magnitude_pct"] is not None for r in rows)
