"""RunStore's listing (runstore.store), in-process: which directories are runs and in what order.
Each test failed against a hand-made mutant that tests/api/test_api.py let pass (audit-mutcli)."""

from __future__ import annotations

import os

import pytest

from runstore import RunStore


def _run(root, name, mtime):
    d = root / name
    d.mkdir(parents=True)
    (d / "run.json").write_text("{}")
    os.utime(d, (mtime, mtime))
    return d


def test_runs_are_listed_newest_first_and_half_written_ones_never(tmp_path):
    reports = tmp_path / "reports"
    _run(reports, "old", 1_000_000)
    _run(reports, "new", 3_000_000)
    _run(reports, "mid", 2_000_000)
    _run(reports, ".new.tmp-123-abc", 4_000_000)   # an atomic writer's temporary directory
    _run(reports, ".new.old-123", 4_000_000)       # and its set-aside copy
    assert RunStore(reports, tmp_path / "runs").run_ids() == ["new", "mid", "old"]


def test_an_experiment_under_runs_wins_over_one_of_the_same_name_in_runs_experiments(tmp_path):
    runs = tmp_path / "runs"
    for d in (runs / "sweep", runs / "experiments" / "sweep"):
        d.mkdir(parents=True)
        (d / "experiment.json").write_text('{"name": "x", "kind": "sweep", "config": {}}')
    store = RunStore(tmp_path / "reports", runs)
    assert store.experiment_ids() == ["sweep"]
    assert store.experiment("sweep").path == (runs / "sweep").resolve()


def test_consensus_levels_name_every_vote_count_of_the_voters(tmp_path):
    """The levels a filter may name: 1 … n votes of the run's n voters (the last was lost)."""
    import json

    from runstore.store import Run

    for n, want in ((3, ["single", "pairwise", "triple"]),
                    (5, ["single", "pairwise", "triple", "4_of_5", "5_of_5"])):
        d = tmp_path / f"r{n}"
        d.mkdir()
        (d / "incidents.json").write_text(json.dumps(
            {"incidents": [], "by_detector": {}, "rule": {"voters": [f"d{i}" for i in range(n)]}}))
        assert Run(d.name, d).levels() == want


def test_an_experiments_summary_counts_failed_cells_and_reads_its_gate(tmp_path):
    import json

    import pandas as pd

    from runstore.store import Experiment

    d = tmp_path / "exp"
    d.mkdir()
    (d / "experiment.json").write_text(json.dumps({"name": "e", "kind": "sweep", "config": {}}))
    pd.DataFrame({"cell_id": ["a", "b", "c"], "setting_id": ["s"] * 3, "seed": [1, 2, 3],
                  "status": ["ok", "failed", "ok"], "error": [None, "boom", None]}
                 ).to_parquet(d / "results.parquet")
    s = Experiment("exp", d).summary()
    assert (s["cells"], s["failed"], s["gate_passed"]) == (3, 1, None)
    (d / "gate.json").write_text(json.dumps({"passed": False}))
    assert Experiment("exp", d).summary()["gate_passed"] is False


def test_an_alerts_file_with_a_line_that_is_no_object_is_unreadable_not_served(tmp_path):
    """customers/alerts.jsonl holding a list or a number on a line (an edited file): the run
    names it unreadable instead of serving it to pages that read each alert's keys."""
    from runstore.store import Run

    d = tmp_path / "r"
    (d / "customers").mkdir(parents=True)
    (d / "customers" / "alerts.jsonl").write_text('{"alert_id": "a"}\n[1, 2]\n')
    run = Run("r", d)
    assert run.alerts() is None
    assert "record 2 is not a JSON object" in run.problem("customers/alerts.jsonl")


def test_the_parsed_file_cache_is_bounded_by_memory_not_only_by_count(tmp_path, monkeypatch):
    """Six runs' 70 MB tables filled ~1 GB under a 48-entry bound: the cache now keeps its
    parsed values within SHOCKLAB_CACHE_MB, the least recently read out first, the newest kept."""
    import numpy as np
    import pandas as pd

    from runstore import store as st

    monkeypatch.setattr(st, "_CACHE", type(st._CACHE)())
    monkeypatch.setattr(st, "_CACHE_BYTES", [0])
    monkeypatch.setenv("SHOCKLAB_CACHE_MB", "1")
    paths = []
    for i in range(6):  # each ~0.4 MB parsed (two float columns of 25,000 rows)
        p = tmp_path / f"t{i}.csv"
        pd.DataFrame({"a": np.arange(25_000.0), "b": np.arange(25_000.0) + i}).to_csv(
            p, index=False)
        paths.append(p)
    frames = [st._cached(p, "csv", pd.read_csv) for p in paths]
    held = sum(size for _, size in st._CACHE.values())
    assert held == st._CACHE_BYTES[0] <= 2**20
    kept = {k[0] for k in st._CACHE}
    assert str(paths[-1]) in kept and str(paths[0]) not in kept
    assert 1 <= len(kept) < 6
    assert st._cached(paths[-1], "csv", pd.read_csv) is frames[-1]  # a hit, not a re-parse

    # a small mapping derived from a big file (a run's slices, from its detections.csv) counts
    # as what it holds, not as the file: it evicted half the cache when sized by the file
    st._cached(paths[1], "slices", lambda _p: {"channel": ["email", "direct"]})
    assert st._CACHE[(str(paths[1]), "slices", *(lambda x: (x.st_mtime_ns, x.st_size))(
        paths[1].stat()))][1] < 4096
    monkeypatch.setenv("SHOCKLAB_CACHE_MB", "0.01")  # smaller than any one table
    big = st._cached(paths[0], "csv", pd.read_csv)
    assert list(st._CACHE) and [k[0] for k in st._CACHE] == [str(paths[0])]
    assert st._cached(paths[0], "csv", pd.read_csv) is big  # the newest stays whatever its size


@pytest.mark.parametrize("config, expected", [
    ({"kind": "sweep"}, []),
    ({"kind": "sweep", "split": {"train": [1], "test": [2], "run": "both"}},
     ["leaderboard_train.csv", "summary.csv"]),
    ({"kind": "sweep", "split": {"train": [1], "test": [2], "run": "test"}}, ["summary.csv"]),
    ({"kind": "sweep", "split": {"train": [1], "test": [2], "run": "train"}},
     ["leaderboard_train.csv"]),
    ({"kind": "sweep", "gate": {"checks": ["consensus.recall>=0.5"]}}, ["gate.json"]),
    ({"kind": "sweep", "gate": {"checks": []}}, []),
    ({"kind": "detectability"}, ["detectability.csv", "mde.csv"]),
])
def test_an_experiment_names_every_table_its_config_writes_when_missing(tmp_path, config,
                                                                         expected):
    """Only leaderboard.csv was ever named: a split's leaderboard_train.csv and summary.csv, a
    gate's verdict and a detectability experiment's tables were absent without a word."""
    import json

    d = tmp_path / "runs" / "e"
    d.mkdir(parents=True)
    (d / "experiment.json").write_text(json.dumps({"name": "e", "kind": config["kind"],
                                                   "config": {"name": "e", **config}}))
    exp = RunStore(tmp_path / "reports", tmp_path / "runs").experiment("e")
    assert exp.missing() == ["leaderboard.csv", "results.parquet", *expected]
    for name in ["leaderboard.csv", "results.parquet", *expected]:
        (d / name).write_text("")
    assert exp.missing() == []
