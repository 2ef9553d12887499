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
