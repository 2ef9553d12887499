"""RunStore's listing (runstore.store), in-process: which directories are runs and in what order.
Each test failed against a hand-made mutant that tests/api/test_api.py let pass (audit-mutcli)."""

from __future__ import annotations

import os

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
