"""End to end with the real simulator and pipeline (small scenario, Prophet off). Slow: each
cell generates a six-month world and analyses it (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from run_experiment import main

from experiments.config import load_experiment
from experiments.experiment import run
from shocklab.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

BASE = {
    "scenario": str(ROOT / "config/scenarios/small.yaml"),
    "analysis": str(ROOT / "config/analysis.yaml"),
    "analysis_overrides": {
        "detectors.prophet_residual.enabled": False,
        "detectors.isolation_forest.enabled": False,
        "consensus.min_votes": 1,
    },
}


def _write(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"name": "real", **BASE, **fields}, sort_keys=False))
    return path


def test_detectability_on_a_tiny_grid_recovers_monotone_recall(tmp_path):
    events = [{"type": "site_outage", "start": s, "duration_days": 1, "drop_pct": 0.5}
              for s in ("2025-02-11", "2025-03-25", "2025-05-06", "2025-06-10")]
    exp = load_experiment(_write(tmp_path, kind="detectability", seeds=[1, 2], detectability={
        "targets": [{"event_type": "site_outage", "magnitude_key": "drop_pct",
                     "magnitudes": [0.01, 0.1, 0.6], "events": events}]}))
    out = run(exp, tmp_path / "out", executor="local", workers=2, progress=False)
    assert (out.results["status"] == "ok").all(), out.results["error"].dropna().tolist()
    curve = out.detectability
    assert {"consensus", "rolling_zscore", "oracle"} <= set(curve["entity"])
    for entity, g in curve.groupby("entity"):
        r = g["recall"].to_numpy()
        if entity == "product_watch":  # a store-wide outage moves every product alike: not its job
            assert (r == 0).all(), r
            continue
        assert np.all(np.diff(r) >= 0), (entity, r)
        assert r[0] < r[-1], (entity, r)
        if entity in ("consensus", "oracle", "rolling_zscore"):
            assert r[-1] == 1.0 and r[0] == 0.0, (
                entity,
                r,
            )  # a 60 % outage is always caught, 1 % never
    mde = out.mde.set_index("entity")
    assert mde.loc["oracle", "mde"] <= mde.loc["rolling_zscore", "mde"]


def test_cli_gate_exit_codes_and_resume(tmp_path, capsys):
    exp = _write(tmp_path, seeds=[1, 2])
    out = tmp_path / "out"
    args = [
        "--config",
        str(exp),
        "--out",
        str(out),
        "--workers",
        "2",
        "--no-progress",
        "--no-plots",
    ]
    assert run_cli(main, [*args, "--gate", "consensus.recall>=0.3"]) == 0
    first = pd.read_parquet(out / "results.parquet")
    assert (first["status"] == "ok").all() and len(first) == 2
    # what a real cell wrote is what --gate is checked against before any cell runs
    from experiments.metric_names import producible_metrics
    from experiments.results import META_COLUMNS, TIMING_COLUMNS

    written = set(first.columns) - set(META_COLUMNS) - set(TIMING_COLUMNS)
    assert written and written <= producible_metrics(load_experiment(exp).analysis), sorted(
        written - producible_metrics(load_experiment(exp).analysis))
    stamp = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    # the rerun resumes (no cell runs again); a bar these results do not meet fails with exit 1
    # (consensus.recall>1 is exit 2 since 2026-12-05: no recall can ever meet it)
    gate = "consensus.median_delay_days<=-100"
    assert run_cli(main, [*args, "--executor", "serial", "--gate", gate]) == 1
    said = capsys.readouterr()
    err = said.err
    assert f"FAILED: 1 of 1 gate checks failed: {gate}" in err and "entirely" in err, err
    # --workers 2 with a serial executor did nothing, without a word: now it says so
    assert "--workers 2 has no effect with --executor serial" in said.out, said.out
    assert {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == stamp
    # comparing with itself as the baseline passes: the paired change is exactly zero (a copy:
    # the run rewrites its own results.parquet, so a --baseline inside --out is refused)
    baseline = tmp_path / "baseline.parquet"
    baseline.write_bytes((out / "results.parquet").read_bytes())
    assert run_cli(main, [*args, "--baseline", str(baseline)]) == 0


def test_serial_and_local_pool_agree_bit_for_bit_on_real_cells(tmp_path):
    from experiments.results import IDENTITY_EXCLUDED

    exp = load_experiment(_write(tmp_path, seeds=[4],
                                 grid={"analysis.detectors.rolling_zscore.threshold": [3.0, 4.0]}))
    serial = run(exp, tmp_path / "serial", executor="serial", progress=False, plots=False)
    local = run(exp, tmp_path / "local", executor="local", workers=2, progress=False, plots=False)
    assert (serial.results["status"] == "ok").all()
    assert int(serial.results["cache_hit"].sum()) == 1  # one world for both thresholds
    pd.testing.assert_frame_equal(serial.results.drop(columns=IDENTITY_EXCLUDED),
                                  local.results.drop(columns=IDENTITY_EXCLUDED), check_exact=True)


def test_a_cached_world_of_other_simulator_code_is_generated_again(tmp_path, monkeypatch):
    """A shared --cache-dir kept worlds whatever code wrote them (the key is the scenario's hash):
    after a fix to the simulator, experiments were scored on the old worlds. Each world's stamp
    (the fingerprint of the simulator's source, beside it as .<hash>.code) must match."""
    import experiments.cell as cell

    exp = load_experiment(_write(tmp_path, seeds=[4]))
    cache = tmp_path / "worlds"
    first = run(exp, tmp_path / "a", executor="serial", progress=False, plots=False,
                cache_dir=cache)
    (world,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    stamp = cache / f".{world.name}.code"
    from shocklab.hashing import code_fingerprint

    assert stamp.read_text() == code_fingerprint("simulation", "shocklab")
    again = run(exp, tmp_path / "b", executor="serial", progress=False, plots=False,
                cache_dir=cache)
    assert bool(again.results["cache_hit"].iloc[0]) and not bool(first.results["cache_hit"][0])
    monkeypatch.setattr(cell, "simulator_stamp", lambda: "other code")
    other = run(exp, tmp_path / "c", executor="serial", progress=False, plots=False,
                cache_dir=cache)
    assert not bool(other.results["cache_hit"].iloc[0]) and stamp.read_text() == "other code"
    pd.testing.assert_frame_equal(   # the same simulator in fact: the same figures
        first.results.filter(like="consensus."), other.results.filter(like="consensus."))
