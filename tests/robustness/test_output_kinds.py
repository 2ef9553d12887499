"""An output directory of one kind is never silently replaced by another kind: `run_analysis.py
--out data/` used to swap the user's generated data set for a report (both carry the ShockLab
marker), and `run_experiment.py --out` wrote its files into any existing folder. Real processes,
as a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.dirs import snapshot

ROOT = Path(__file__).resolve().parents[2]
# the analyses that run to the end draw no plots: what is checked here is which directory each
# output goes to and what is kept, the same with or without plots/ (most of an analysis' time)
NO_PLOTS = ("--set", "insights.plots=false")


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               SHOCKLAB_LOG_DIR="")
    return subprocess.run([sys.executable, str(ROOT / script), *args, "--quiet"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def test_analysis_refuses_to_replace_a_data_directory(fresh_world, tmp_path):
    other = tmp_path / "other"
    import shutil
    shutil.copytree(fresh_world, other)
    before = snapshot(other)
    r = _run("run_analysis.py", "--data", str(fresh_world), "--out", str(other), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert str(other) in line and "data directory" in line and "--force" in line
    assert snapshot(other) == before  # nothing lost


def test_generation_refuses_to_replace_a_run_directory(fresh_world, tmp_path):
    run = tmp_path / "run"
    r = _run("run_analysis.py", "--data", str(fresh_world), "--out", str(run), "--set",
             "customers.enabled=false", *NO_PLOTS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    before = snapshot(run)
    r = _run("generate_data.py", "--config", str(ROOT / "config/scenarios/small.yaml"), "--out",
             str(run), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "run directory" in r.stderr and str(run) in r.stderr
    assert snapshot(run) == before
    # --force is the way to replace it on purpose; the run directory is kept beside it, not
    # deleted (it was, until the twenty-first session)
    r = _run("generate_data.py", "--config", str(ROOT / "config/scenarios/small.yaml"), "--out",
             str(run), "--force", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (run / "manifest.json").is_file() and not (run / "run.json").exists()
    kept = tmp_path / "run.kept-1"
    assert snapshot(kept) == before
    assert "was a ShockLab run directory" in r.stderr and str(kept) in r.stderr


def test_forced_analysis_over_a_data_directory_keeps_the_data(fresh_world, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(fresh_world, other)
    before = snapshot(other)
    r = _run("run_analysis.py", "--data", str(fresh_world), "--out", str(other), "--force",
             "--set", "customers.enabled=false", *NO_PLOTS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (other / "run.json").is_file()
    assert snapshot(tmp_path / "other.kept-1") == before   # the data set, byte for byte
    # the same kind again is replaced as before (no second .kept)
    r = _run("run_analysis.py", "--data", str(fresh_world), "--out", str(other), "--force",
             "--set", "customers.enabled=false", *NO_PLOTS, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "other.kept-2").exists()


def test_regenerating_and_reanalysing_into_the_same_place_still_work(fresh_world, tmp_path):
    run = tmp_path / "run"
    for _ in range(2):
        r = _run("run_analysis.py", "--data", str(fresh_world), "--out", str(run), "--set",
                 "customers.enabled=false", *NO_PLOTS, cwd=tmp_path)
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("kind", ["user", "data"])
def test_experiment_refuses_a_folder_that_is_not_an_experiment(kind, fresh_world, tmp_path):
    if kind == "user":
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("precious\n")
    else:
        out = fresh_world
    before = snapshot(out)
    r = _run("run_experiment.py", "--config", str(ROOT / "config/experiments/ci_gate.yaml"),
             "--out", str(out), "--set", "seeds=[1]", "--no-progress", "--workers", "1",
             cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("error:") and str(out) in line and "experiment" in line
    assert snapshot(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted({k.split("/")[0] for k in before})


def test_an_experiment_that_cannot_start_leaves_no_directory(tmp_path):
    out = tmp_path / "exp"
    r = _run("run_experiment.py", "--config", str(ROOT / "config/experiments/ci_gate.yaml"),
             "--out", str(out), "--set", "seeds=[1]", "--no-progress", "--scheduler",
             "tcp://127.0.0.1:9", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert not out.exists()


def test_a_first_run_interrupted_before_its_first_cell_resumes(fresh_world, tmp_path):
    """What a first run killed while generating its first world leaves: worlds/ only."""
    out = tmp_path / "exp"
    (out / "worlds").mkdir(parents=True)
    r = _run("run_experiment.py", "--config", str(ROOT / "config/experiments/ci_gate.yaml"),
             "--out", str(out), "--set", "seeds=[1]", "--no-progress", "--workers", "1",
             "--no-plots", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (out / "results.parquet").is_file() and (out / ".shocklab-output").is_file()


@pytest.mark.parametrize("script", ["generate_data.py", "run_analysis.py"])
def test_force_help_says_what_force_does(script, tmp_path):
    """--help said --force would "replace --out even if it is an existing directory ShockLab did
    not write": it also lets one kind of output take another's place, and it moves the old one
    aside to <out>.kept-N instead of replacing it (the tests above)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    r = subprocess.run([sys.executable, str(ROOT / script), "--help"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0
    assert "another kind of ShockLab output" in text and "<out>.kept-N" in text
    assert "nothing is deleted" in text
