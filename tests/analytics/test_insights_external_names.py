"""A `--kpis` file whose columns are its own series plus one named like a store KPI (`orders`):
the episode of a +60 spike on `value` was titled "orders down -0.5%" (the funnel's biggest mover
named the episode), so an analyst or an LLM reading insights.json was told the wrong KPI moved."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from shocklab.cli import run_cli


def test_an_episode_of_a_non_funnel_series_is_named_after_that_series(tmp_path):
    from run_analysis import main

    rng = np.random.default_rng(1)
    ts = pd.date_range("2025-03-01", periods=24 * 40, freq="h")
    value = 100 + 10 * np.sin(np.arange(len(ts)) * 2 * np.pi / 24) + rng.normal(0, 2, len(ts))
    value[500:510] += 60
    csv = tmp_path / "mixed.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value.round(3),
                  "orders": rng.poisson(50, len(ts))}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    ins = json.loads((out / "insights.json").read_text())
    spike = ts[500].strftime("%Y-%m-%d")
    eps = [e for e in ins["episodes"] if e["start"] <= spike <= e["end"]]
    assert eps, [e["episode_id"] for e in ins["episodes"]]
    for ep in ins["episodes"]:
        if ep["kpis"] == ["value"]:  # incidents on `value` only
            assert ep["primary_kpi"] == "value", ep["title"]
            assert ep["title"].startswith("value "), ep["title"]
    assert any(ep["kpis"] == ["value"] for ep in eps)
    # the markdown brief says the same
    md = (out / "insights.md").read_text()
    assert "orders down -0.5%" not in md and "**value " in md


def _signups_run(tmp_path, days: int, seed: int):
    """A --kpis run on a daily file with one non-store column (signups, no revenue)."""
    from run_analysis import main

    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2025-01-01", periods=days, freq="D")
    csv = tmp_path / "daily.csv"
    pd.DataFrame({"date": stamps.strftime("%Y-%m-%d"),
                  "signups": (1000 + rng.normal(0, 20, days)).round(1)}).to_csv(csv, index=False)
    out = tmp_path / "run"
    assert run_cli(main, ["--kpis", str(csv), "--out", str(out), "--quiet"]) == 0
    return out


def test_a_run_without_truth_does_not_report_the_oracle_as_failed(tmp_path):
    """The oracle is skipped where there is no truth (--kpis, --transactions): insights.json
    listed it in ``detectors_failed`` and the brief said "oracle (FAILED)" on every such run."""
    out = _signups_run(tmp_path, days=60, seed=2)
    run = json.loads((out / "insights.json").read_text())["run"]
    assert "oracle" not in run["detectors_failed"]
    assert run["detectors_failed"] == [d["name"] for d in run["detectors"] if not d["ok"]
                                       and d["name"] != "oracle"]
    head = (out / "insights.md").read_text().splitlines()[3]
    assert head.startswith("Detectors: ") and "FAILED" not in head
    assert "oracle (skipped: no truth" in head


def test_a_long_series_without_revenue_is_not_called_too_short(tmp_path):
    """The brief's headline is revenue week over week; a 120-day --kpis file without a revenue
    column was told "Not enough history for a week-over-week comparison"."""
    out = _signups_run(tmp_path, days=120, seed=4)
    ins = json.loads((out / "insights.json").read_text())
    for text in (ins["brief"]["headline"], ins["summary"]["headline"]):
        assert "Not enough history" not in text and "no revenue" in text.lower(), text
