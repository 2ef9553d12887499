"""Valid but unusual worlds through the CLIs (edge-worlds audit): what the schemas allow, the
generator writes and the analysis then reads, with exit 0 and its outputs complete."""

from __future__ import annotations

import json

import pytest
from tests.robustness.conftest import write_yaml
from tests.simulation.simtools import tiny_config


@pytest.mark.slow
def test_a_store_whose_every_order_is_cancelled_is_analysed(cli, tmp_path):
    """basket.cancel_rate 1 is valid: the world was generated (exit 0) and its analysis ran
    every stage, then exited 2 in the customer stage ('orders: no completed orders on or before
    … to compute RFM on'), writing nothing. Now the customer models are skipped with a warning
    and the KPIs, detection, insights and scorecard are written."""
    raw = tiny_config(basket={"cancel_rate": 1.0, "return_rate": 0.0})
    cfg = write_yaml(tmp_path / "all_cancelled.yaml", raw)
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data", "--quiet")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run"
    r = cli("analysis", "--data", tmp_path / "data", "--out", out, "--quiet",
            "--set", "insights.plots=false", "--set", "customers.plots=false")
    assert r.returncode == 0, r.stderr
    insights = json.loads((out / "insights.json").read_text())
    assert insights["customers"]["status"] == "skipped: no completed order"
    assert json.loads((out / "scorecard.json").read_text())["events"]["unexpected"] == 2
    assert (out / "kpis_daily.csv").exists() and not (out / "customers").exists()
