"""How a `--kpis` file was read is part of its run id: the id is the data's and the config's
identity, and `--duplicates`, `--layout`, `--step` change the data a run sees. Two runs of one
file with `--duplicates mean` and `--duplicates sum` shared an id, so the second replaced the
first's `reports/<id>` (and the API listed one run for the two)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from shocklab.cli import run_cli


def _file(tmp_path):
    """60 days of a daily count with one timestamp written twice (a double export)."""
    rng = np.random.default_rng(3)
    stamps = list(pd.date_range("2025-01-01", periods=60, freq="D").strftime("%Y-%m-%d"))
    values = list(rng.poisson(200, 60).astype(float))
    stamps.insert(30, stamps[30])
    values.insert(30, 150.0)
    path = tmp_path / "daily.csv"
    pd.DataFrame({"timestamp": stamps, "orders": values}).to_csv(path, index=False)
    return path


def _run_dirs(tmp_path, monkeypatch, *flag_sets):
    from run_analysis import main

    monkeypatch.chdir(tmp_path)
    path = _file(tmp_path)
    ids = []
    for flags in flag_sets:
        # no plots (most of each run's time): the same setting in every run, so the ids compare
        assert run_cli(main, ["--kpis", str(path), "--quiet", "--set", "insights.plots=false",
                              *flags]) == 0
        ids.append({p.name for p in (tmp_path / "reports").iterdir()})
    return ids


def test_reading_flags_make_a_new_run_id_and_defaults_do_not(tmp_path, monkeypatch):
    ids = _run_dirs(tmp_path, monkeypatch, [], ["--duplicates", "mean"],
                    ["--duplicates", "sum"], ["--step", "1D"])
    assert len(ids[0]) == 1 and ids[1] == ids[0]   # the default spelt out: the same run
    assert len(ids[2]) == 2 and len(ids[3]) == 3   # sum and a given step: runs of their own
    runs = [json.loads(p.read_text()) for p in (tmp_path / "reports").glob("*/run.json")]
    assert sorted(r["run_id"] for r in runs) == sorted(ids[3])
