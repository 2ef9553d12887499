"""Audit-hostile 44, data loss: an --out that took a user's files or another output with it
(exit 0), and an --out on a mount point that failed after the whole run (exit 3). Each is now
exit 2 with one line before any work, and what was there is kept byte for byte (or, with
--force, moved aside to <out>.kept-N)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import yaml
from tests.dirs import snapshot
from tests.experiments.exp_fakes import ANALYSIS, SCENARIO, fake_cell
from tests.robustness.test_hostile_paths import _one_line  # exit 2, one line naming …
from tests.simulation.simtools import tiny_config

from shocklab.atomic import allow_replace, atomic_dir, check_resumable, validate_out
from shocklab.cli import ENV_ERRNOS, run_cli
from shocklab.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--set", "customers.enabled=false", "--set", "insights.plots=false")


def _earlier_run(path: Path) -> Path:
    """A run directory as run_analysis.py leaves it (marker, run.json), without the analysis."""
    with atomic_dir(path, kind="run") as tmp:
        (tmp / "run.json").write_text(json.dumps({"schema": "shocklab.run/1"}))
        (tmp / "kpis_daily.csv").write_text("date\n")
    return path


def _sim_config(tmp_path: Path) -> Path:
    p = tmp_path / "sim.yaml"
    p.write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    return p


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


# 2. an output inside another one ------------------------------------------------------------

def test_the_default_out_inside_a_run_directory_is_refused(cli, tiny_world, tmp_path):
    """``--out reports`` and then the default ``reports/<id>``: the second run was written into
    the first one's directory, and the first one's rerun deleted it."""
    reports = _earlier_run(tmp_path / "reports")
    before = snapshot(reports)
    _one_line(cli("analysis", "--data", tiny_world, *FAST),
              "default --out reports/", f"inside the ShockLab run directory {reports}")
    assert snapshot(reports) == before


def test_a_data_set_inside_a_data_set_is_refused(cli, fresh_world, tmp_path):
    """``--out data`` then ``--out data/seed8``: regenerating data deleted data/seed8."""
    before = snapshot(fresh_world)
    _one_line(cli("generate", "--config", _sim_config(tmp_path), "--out", fresh_world / "seed8",
                  "--seed", "8"),
              f"inside the ShockLab data directory {fresh_world}")
    assert snapshot(fresh_world) == before


def test_an_output_holding_another_one_is_not_deleted_by_its_rerun(tmp_path):
    """One written before nesting was refused: replacing the outer output deleted the inner one
    with it. Refused without --force; forced, the outer one is moved aside whole."""
    outer = _earlier_run(tmp_path / "reports")
    inner = _earlier_run(outer / "k2-0123456789ab")
    kept = snapshot(inner)
    with pytest.raises(InputError, match=f"holds another ShockLab output \\({inner}\\)"):
        validate_out(outer, kind="run")
    with pytest.raises(InputError, match="holds another ShockLab output"):
        with atomic_dir(outer, kind="run") as tmp:
            (tmp / "run.json").write_text("{}")
    assert snapshot(inner) == kept
    with allow_replace(True), atomic_dir(outer, kind="run") as tmp:
        (tmp / "run.json").write_text("{}")
    assert snapshot(tmp_path / "reports.kept-1" / inner.name) == kept
    assert (outer / "run.json").read_text() == "{}" and not (outer / inner.name).exists()


# 3. a user's folder with a copied run.json / manifest.json ----------------------------------

def test_a_user_folder_with_a_copied_run_json_is_not_an_output(cli, tiny_world, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "run.json").write_text(json.dumps({"schema": "shocklab.run/1"}))
    (proj / "paper.tex").write_text("draft")
    before = snapshot(proj)
    _one_line(cli("analysis", "--data", tiny_world, "--out", proj, *FAST),
              str(proj), "not a ShockLab output", "--force")
    assert snapshot(proj) == before


def test_a_user_folder_with_a_copied_manifest_is_moved_aside_only_with_force(cli, tiny_world,
                                                                              tmp_path):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "manifest.json").write_bytes((tiny_world / "manifest.json").read_bytes())
    (mine / "sales_2024.xlsx").write_bytes(b"PK\x03\x04 real sales")
    before = snapshot(mine)
    cfg = _sim_config(tmp_path)
    _one_line(cli("generate", "--config", cfg, "--out", mine), str(mine), "not a ShockLab output")
    assert snapshot(mine) == before
    r = cli("generate", "--config", cfg, "--out", mine, "--force")
    assert r.returncode == 0, r.stderr
    assert snapshot(tmp_path / "mydata.kept-1") == before     # moved, not deleted
    assert (mine / "orders.csv").is_file() and not (mine / "sales_2024.xlsx").exists()


# 4. a user's cells/ or worlds/ folder is not an experiment; --fresh deletes only its own ------

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


@pytest.mark.parametrize("sub", ["cells", "worlds"])
def test_a_user_folder_with_cells_or_worlds_is_not_an_experiment(sub, tmp_path, capsys):
    """A folder holding a cells/ (or only a worlds/) folder of the user's was read as an
    experiment's: the experiment wrote into it, and --fresh deleted cells/ or worlds/."""
    lab = tmp_path / "lab"
    (lab / sub).mkdir(parents=True)
    (lab / sub / "sample1.csv").write_text("a,b\n1,2\n")
    if sub == "cells":
        (lab / "notes.txt").write_text("lab notes")
    before = snapshot(lab)
    rc, err = _experiment(capsys, "--config", _tiny_experiment(tmp_path), "--out", lab, "--fresh")
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert f"--out {lab}: is a folder ShockLab did not write" in err and "--force" in err
    assert snapshot(lab) == before


def test_fresh_deletes_only_what_the_experiment_wrote(tmp_path):
    """--fresh removed cells/ and worlds/ whole, with whatever else was put there."""
    from experiments.config import load_experiment
    from experiments.experiment import run

    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(SCENARIO))
    (tmp_path / "analysis.yaml").write_text(yaml.safe_dump(ANALYSIS))
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "t", "scenario": str(tmp_path / "scenario.yaml"),
        "analysis": str(tmp_path / "analysis.yaml"), "seeds": [1, 2],
        "metrics": ["consensus.recall"], "bootstrap": {"resamples": 100}}))
    exp = load_experiment(path)
    out = tmp_path / "out"
    kw = dict(cell_fn=fake_cell, progress=False, plots=False, executor="serial")
    run(exp, out, **kw)
    worlds = sorted(p.name for p in (out / "worlds").iterdir() if p.is_dir())
    (out / "cells" / "sample1.csv").write_text("mine")
    (out / "worlds" / "earth.blend").write_text("mine")
    again = run(exp, out, fresh=True, **kw)
    assert (again.results["status"] == "ok").all() and len(again.results) == 2
    assert (out / "cells" / "sample1.csv").read_text() == "mine"
    assert (out / "worlds" / "earth.blend").read_text() == "mine"
    assert len(worlds) == 2 and all((out / "worlds" / w).is_dir() for w in worlds)


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


# 10. --out a mount point ------------------------------------------------------------------------

@pytest.fixture
def mount_point(tmp_path, monkeypatch) -> Path:
    """An empty directory that os.path.ismount says is a mount point (a Docker volume)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount",
                        lambda p: Path(p).resolve() == mnt.resolve() or real(p))
    return mnt


def test_out_a_mount_point_is_refused_before_the_work(cli, tiny_world, tmp_path, mount_point):
    """The final rename onto a mount point failed with EBUSY after the whole run: exit 3."""
    _one_line(cli("generate", "--config", _sim_config(tmp_path), "--out", mount_point),
              f"{mount_point}: output path is a mount point", "sub-directory")
    _one_line(cli("analysis", "--data", tiny_world, "--out", mount_point, *FAST),
              "mount point")
    assert not any(mount_point.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".mnt")) == []


def test_an_experiment_writes_into_a_mount_point_but_does_not_move_it_aside(tmp_path,
                                                                           mount_point):
    """Written in place, an experiment needs no rename of --out; --force over something else
    there would (set_aside): refused up front."""
    assert check_resumable(mount_point, "experiment") == (mount_point, False)
    (mount_point / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="is a mount point, which cannot be moved aside"):
        check_resumable(mount_point, "experiment", force=True)


def test_ebusy_is_the_environment_not_an_internal_error(capsys):
    def main(argv):
        raise OSError(errno.EBUSY, "Device or resource busy", "/data")

    assert errno.EBUSY in ENV_ERRNOS
    assert run_cli(main, []) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "device or resource busy" in err and "/data" in err
