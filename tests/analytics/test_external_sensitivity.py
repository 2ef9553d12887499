"""Which sensitivity a --kpis run uses. `external.sensitivity` (3 false alerts per series per 90
days; 10 until 2026-12-03) was chosen for NAB's score on NAB's files, all sub-daily; on a DAILY
export 10 flooded the analyst with alarms (pure noise: about one alert every nine days per
series). Daily or coarser input now uses the analysis-wide `sensitivity` (0.1, the store's own
knob), like store data; sub-daily input still reads `external.sensitivity`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import run_analysis

from analytics.config import load_analysis_config
from analytics.external import external_profile
from shocklab.cli import run_cli


def _cli(*args: str) -> int:
    """run_analysis.py in-process, no plots (most of a run's time; no test here reads one)."""
    return run_cli(run_analysis.main, [*args, "--set", "insights.plots=false"])


def _noise_daily(tmp_path, days=360, seed=0):
    """Three shock-free daily series: a gauge, a generic column and a count."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2025-01-01", periods=days, freq="D")
    p = tmp_path / "daily.csv"
    pd.DataFrame({"date": t.strftime("%Y-%m-%d"),
                  "revenue": rng.normal(1000, 30, days).round(2),
                  "signups": rng.normal(50, 3, days).round(2),
                  "orders": rng.poisson(200, days)}).to_csv(p, index=False)
    return p


def _incidents(out):
    return json.loads((out / "incidents.json").read_text())["incidents"]


def test_shock_free_daily_file_is_not_flooded(tmp_path, capsys):
    path = _noise_daily(tmp_path)
    out = tmp_path / "run"
    assert _cli("--kpis", str(path), "--out", str(out)) == 0
    printed = capsys.readouterr()
    inc = _incidents(out)
    # 3 series x 360 days at 0.1 per series per 90 days for each of the two voters (k = 1):
    # at most ~2.4 expected; external.sensitivity 10 gave 38 here (one every 28 series-days)
    assert len(inc) <= 5, [(i["kpi"], i["start"]) for i in inc]
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["sensitivity"] == 0.1
    rule = run["external_sensitivity"]
    assert rule["daily"] is True and rule["source"] == "sensitivity" and rule["sensitivity"] == 0.1
    assert "the analysis-wide sensitivity" in rule["why"]
    said = [ln for ln in (printed.out + printed.err).splitlines() if "--kpis: sensitivity" in ln]
    assert len(said) == 1 and "sensitivity 0.1 from sensitivity" in said[0], said  # once
    # the knob of daily input is the analysis-wide one: the NAB figure set there brings the flood
    # back, and external.sensitivity does not
    loud = tmp_path / "loud"
    assert _cli("--kpis", str(path), "--out", str(loud), "--set", "sensitivity=10") == 0
    assert len(_incidents(loud)) >= 4 * len(inc) + 10
    assert json.loads((loud / "run.json").read_text())["config"]["sensitivity"] == 10


def test_daily_input_reads_the_analysis_wide_knob_and_warns_on_the_unused_one(tmp_path, capsys):
    path = _noise_daily(tmp_path, days=120, seed=1)
    out = tmp_path / "run"
    assert _cli("--kpis", str(path), "--out", str(out), "--set", "sensitivity=0.3",
                "--set", "external.sensitivity=3", "--quiet") == 0
    err = capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["sensitivity"] == 0.3          # the user's store knob reaches daily input
    warned = [ln for ln in err.splitlines() if "--set external.sensitivity ignored" in ln]
    assert len(warned) == 1, err   # a warning: printed under --quiet


def test_sub_daily_input_still_uses_external_sensitivity(tmp_path, capsys):
    from analytics.external import sensitivity_rule

    cfg = load_analysis_config(None, [])
    assert cfg.external.sensitivity == 3 and cfg.sensitivity == 0.1
    for step in (300.0, 600.0, 3600.0, 4800.0, 86399.0):   # NAB's grids are 5 to 80 minutes
        assert external_profile(cfg, step).sensitivity == 3, step
        assert sensitivity_rule(cfg, step)["source"] == "external.sensitivity"
    assert external_profile(cfg).sensitivity == 3           # step unknown: as before
    for step in (86400.0, 7 * 86400.0):
        assert external_profile(cfg, step).sensitivity == 0.1, step
    # --set external.sensitivity still moves sub-daily runs, and only them
    set3 = load_analysis_config(None, ["external.sensitivity=5", "sensitivity=0.5"])
    assert external_profile(set3, 300.0).sensitivity == 5
    assert external_profile(set3, 86400.0).sensitivity == 0.5
    assert set3.sensitivity == 0.5 and set3.external.sensitivity == 5   # cfg itself untouched
    off = load_analysis_config(None, ["external.sensitivity=null"])     # null: the wide one
    assert external_profile(off, 300.0).sensitivity == 0.1
    # end to end: an hourly file's run records the NAB-chosen knob and why
    rng = np.random.default_rng(0)
    ts = pd.date_range("2025-03-01", periods=24 * 20, freq="h")
    p = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                  "value": (100 + rng.normal(0, 1, len(ts))).round(3)}).to_csv(p, index=False)
    out = tmp_path / "run"
    assert _cli("--kpis", str(p), "--out", str(out), "--quiet", "--set", "sensitivity=0.3") == 0
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["sensitivity"] == 3                # replaced on sub-daily input …
    assert "--set sensitivity ignored" in capsys.readouterr().err   # … and the run says so
    assert run["external_sensitivity"]["source"] == "external.sensitivity"
    assert run["external_sensitivity"]["daily"] is False
