"""Damaged run directories (audit 51b F1–F3 and its minor item): each case failed on the code
before it.

A run directory whose known entries have the wrong type (a file replaced by a directory, ``cells``
or ``worlds`` a file or a dangling link), or whose experiment.json is nested thousands deep or is
not an experiment record, is bad input: exit 2 with one stderr line naming the entry, before any
cell runs and before anything is deleted or written (was exit 3, after leaderboard.csv was deleted
or results.parquet was replaced by error rows).

One finished two-seed run of the small scenario (the real simulator and pipeline, Prophet off) is
made once for the module; each case damages a copy and runs the CLI in-process on it again.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from run_experiment import main

import experiments.experiment as experiment_module
from shocklab.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
CLI_FLAGS = ("--executor", "serial", "--no-plots", "--no-progress")


def _cli(config: Path, out: Path) -> int:
    try:
        return run_cli(main, ["--config", str(config), "--out", str(out), *CLI_FLAGS])
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(experiment file, a finished run of it): built once, copied by each case."""
    root = tmp_path_factory.mktemp("rundir")
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny", "kind": "sweep",
        "scenario": str(ROOT / "config/scenarios/small.yaml"),
        "analysis": str(ROOT / "config/analysis.yaml"),
        "analysis_overrides": {"detectors.prophet_residual.enabled": False},
        "seeds": [1, 2], "metrics": ["consensus.recall", "consensus.precision"]}))
    base = root / "base"
    assert _cli(config, base) == 0
    assert (base / "results.parquet").is_file() and len(list((base / "cells").glob("*.json"))) == 2
    return config, base


def _state(d: Path) -> dict[str, object]:
    """Every entry under ``d`` (links not followed): a file's bytes, a link's target, 'dir'."""
    out: dict[str, object] = {}
    for top, dirs, files in os.walk(d):
        for name in dirs + files:
            p = Path(top) / name
            rel = str(p.relative_to(d))
            out[rel] = (("link", os.readlink(p)) if p.is_symlink()
                        else "dir" if p.is_dir() else p.read_bytes())
    return out


def _seed2(d: Path) -> Path:
    return next((d / "cells").glob("*-seed2.json"))


def _dir_for_file(rel: str):
    def damage(d: Path) -> Path:
        target = _seed2(d) if rel == "<seed2 record>" else d / rel
        target.unlink()
        target.mkdir()
        return target
    return damage


def _cells_file(d: Path) -> Path:
    shutil.rmtree(d / "cells")
    (d / "cells").write_text("hi\n")
    return d / "cells"


def _cells_dangling(d: Path) -> Path:
    shutil.rmtree(d / "cells")
    (d / "cells").symlink_to(d.parent / "nonexistent")
    return d / "cells"


def _worlds(kind: str):
    def damage(d: Path) -> Path:
        shutil.rmtree(d / "worlds")
        for p in (d / "cells").iterdir():   # every cell needs its world again
            p.unlink()
        if kind == "file":
            (d / "worlds").write_text("x\n")
        else:
            (d / "worlds").symlink_to(d.parent / "nonexistent")
        return d / "worlds"
    return damage


def _experiment_json(text: str):
    def damage(d: Path) -> Path:
        (d / "experiment.json").write_text(text)
        return d / "experiment.json"
    return damage


CASES = {
    # F1: a file of the run directory replaced by a directory; cells/ a file or a dangling link
    "results.parquet-dir": (_dir_for_file("results.parquet"), "is a directory, not a file"),
    "leaderboard.csv-dir": (_dir_for_file("leaderboard.csv"), "is a directory, not a file"),
    "experiment.json-dir": (_dir_for_file("experiment.json"), "is a directory, not a file"),
    "cell-record-dir": (_dir_for_file("<seed2 record>"), "is a directory, not a file"),
    "cells-file": (_cells_file, "is a file, not a directory"),
    "cells-dangling-link": (_cells_dangling, "is a symbolic link to a missing"),
    # F2: the run's own world cache a file or a dangling link (every cell failed on it)
    "worlds-file": (_worlds("file"), "output path exists and is not a directory"),
    "worlds-dangling-link": (_worlds("link"), "is a symbolic link to a missing"),
    # F3: nested deeper than the JSON decoder recurses (RecursionError, exit 3)
    "experiment.json-deep": (_experiment_json("[" * 100_000 + "]" * 100_000 + "\n"),
                             "experiment.json cannot be read (RecursionError)"),
    # minor: was "holds the experiment None (kind None)"
    "experiment.json-null": (_experiment_json("null\n"),
                             "experiment.json that is not an experiment record (null)"),
    "experiment.json-list": (_experiment_json("[]\n"),
                             "experiment.json that is not an experiment record (a list)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_run_directory_is_exit_2_naming_the_entry_and_nothing_changes(
        finished, tmp_path, capsys, monkeypatch, case):
    config, base = finished
    d = tmp_path / "d"
    shutil.copytree(base, d, symlinks=True)
    damage, says = CASES[case]
    entry = damage(d)
    before = _state(d)

    def no_cell(task):
        raise AssertionError(f"cell {task.cell_id} ran on a damaged run directory")

    monkeypatch.setattr(experiment_module, "run_cell", no_cell)
    capsys.readouterr()
    rc = _cli(config, d)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    # the entry by its path, or experiment.json by its name after --out's path (other_experiment)
    assert (str(entry) in err or f"--out {d}: holds an {entry.name}" in err
            or f"--out {d}: holds an experiment whose {entry.name}" in err), err
    assert says in err, err
    assert "None (kind None)" not in err
    assert _state(d) == before   # nothing deleted, written or moved aside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_the_undamaged_copy_resumes(finished, tmp_path, capsys, monkeypatch):
    """The check refuses only damage: a copy of the finished run resumes with no cell run."""
    config, base = finished
    d = tmp_path / "d"
    shutil.copytree(base, d, symlinks=True)

    def no_cell(task):
        raise AssertionError(f"cell {task.cell_id} ran again on a resume")

    monkeypatch.setattr(experiment_module, "run_cell", no_cell)
    assert _cli(config, d) == 0, capsys.readouterr().err
    assert (d / "leaderboard.csv").is_file() and (d / "results.parquet").is_file()


def test_a_read_only_cache_lacking_a_world_is_refused_before_any_cell(finished, tmp_path, capsys,
                                                                       monkeypatch):
    """Audit 51b F8 through the CLI: a read-only --cache-dir that holds seed 1's world but not
    seed 3's is exit 2 naming it, before any cell runs (every cell ran and failed on its lock);
    one holding every world it needs is read as it is. Root ignores modes: os.access says it."""
    config, base = finished
    cache = tmp_path / "cache"
    shutil.copytree(base / "worlds", cache, symlinks=True)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if (
        Path(p).resolve() == cache.resolve() and mode & os.W_OK) else real(p, mode, *a, **k))
    wider = tmp_path / "wider.yaml"
    wider.write_text(yaml.safe_dump(dict(yaml.safe_load(config.read_text()), seeds=[1, 3])))

    def no_cell(task):
        raise AssertionError(f"cell {task.cell_id} ran")

    monkeypatch.setattr(experiment_module, "run_cell", no_cell)
    code = run_cli(main, ["--config", str(wider), "--out", str(tmp_path / "o"), "--cache-dir",
                          str(cache), *CLI_FLAGS])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"--cache-dir {cache}" in err and "not writable" in err, err
    assert not (tmp_path / "o").exists()
    monkeypatch.undo()   # the same read-only cache holding both worlds of seeds 1-2: it runs
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if (
        Path(p).resolve() == cache.resolve() and mode & os.W_OK) else real(p, mode, *a, **k))
    assert run_cli(main, ["--config", str(config), "--out", str(tmp_path / "o2"), "--cache-dir",
                          str(cache), *CLI_FLAGS]) == 0, capsys.readouterr().err
