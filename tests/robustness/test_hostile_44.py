"""Audit-hostile 44, data loss: an --out that took a user's files or another output with it
(exit 0), and an --out on a mount point that failed after the whole run (exit 3). Each is now
exit 2 with one line before any work, and what was there is kept byte for byte (or, with
--force, moved aside to <out>.kept-N)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tests.dirs import snapshot
from tests.robustness.test_hostile_paths import _one_line  # exit 2, one line naming …
from tests.simulation.simtools import tiny_config

from shocklab.atomic import atomic_dir
from shocklab.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--set", "customers.enabled=false", "--set", "insights.plots=false")


def _earlier_run(path: Path) -> Path:
    """A run directory as run_analysis.py leaves it (marker, run.json), without the analysis."""
    with atomic_dir(path, kind="run") as tmp:
        (tmp / "run.json").write_text(json.dumps({"schema": "shocklab.run/1"}))
        (tmp / "kpis_daily.csv").write_text("date\n")
    return path


# 1. run_analysis.py --config inside --out --------------------------------------------------

def test_an_analysis_config_inside_out_is_an_input_and_kept(cli, tiny_world, tmp_path):
    """The rerun replaced the run directory and the config file the user kept in it (exit 0);
    generate_data.py already refused its --config there."""
    run = _earlier_run(tmp_path / "run")
    cfg = run / "my_analysis.yaml"
    cfg.write_text((ROOT / "config" / "analysis.yaml").read_text())
    before = snapshot(run)
    _one_line(cli("analysis", "--data", tiny_world, "--config", cfg, "--out", run, *FAST),
              f"--out {run}", "contains the input", str(cfg))
    assert snapshot(run) == before


def _tiny_experiment(tmp_path: Path, name: str = "tiny") -> Path:
    (tmp_path / "tiny_world.yaml").write_text(yaml.safe_dump(tiny_config()))
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "scenario": str(tmp_path / "tiny_world.yaml"),
        "analysis": str(ROOT / "config/analysis.yaml"), "seeds": [1],
        "analysis_overrides": {"detectors.prophet_residual.enabled": False,
                               "customers.enabled": False, "insights.plots": False}}))
    return path


def _experiment(capsys, *args) -> tuple[int, str]:
    from run_experiment import main

    rc = run_cli(main, [str(a) for a in args] + ["--no-progress", "--no-plots", "--executor",
                                                  "serial"])
    return rc, capsys.readouterr().err.strip()


# 5. run_experiment.py --baseline inside --out -------------------------------------------------

def test_a_baseline_inside_out_is_refused_and_kept(tmp_path, capsys):
    """The run rewrote the results.parquet it had just read as its baseline (exit 0)."""
    exp = _tiny_experiment(tmp_path)
    out = tmp_path / "x"
    rc, err = _experiment(capsys, "--config", exp, "--out", out)
    assert rc == 0, err
    before = snapshot(out)
    for baseline in (out / "results.parquet", out):
        rc, err = _experiment(capsys, "--config", exp, "--out", out, "--baseline", baseline)
        assert rc == 2 and len(err.splitlines()) == 1, err
        assert f"--baseline {baseline}: is inside --out {out}" in err
    assert snapshot(out) == before
