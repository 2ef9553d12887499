"""Train/test split of seeds: the leaderboard and summary report test seeds only."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from tests.experiments.exp_fakes import fake_cell

from experiments.config import load_experiment
from experiments.experiment import run
from shocklab.errors import InputError


def _split_file(write_experiment, **split):
    path = write_experiment()
    doc = yaml.safe_load(path.read_text())
    del doc["seeds"]
    doc["split"] = split
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_leaderboard_and_summary_use_test_seeds_only(write_experiment, tmp_path):
    exp = load_experiment(
        _split_file(write_experiment, train=[1, 2], test={"count": 3, "start": 10})
    )
    assert exp.config.seed_list == [1, 2, 10, 11, 12]
    out = run(
        exp, tmp_path / "out", cell_fn=fake_cell, progress=False, plots=False, executor="serial"
    )
    assert set(out.results["seed"]) == {1, 2, 10, 11, 12}
    assert out.leaderboard["n_seeds"].tolist() == [3]
    train = pd.read_csv(tmp_path / "out" / "leaderboard_train.csv")
    assert train["n_seeds"].tolist() == [2]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    row = summary[summary["metric"] == "consensus.recall"].iloc[0]
    test_rows = out.results[out.results["seed"] >= 10]
    assert row["n"] == 3 and row["mean"] == pytest.approx(test_rows["consensus.recall"].mean())
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_run_only_the_test_seeds(write_experiment):
    path = _split_file(write_experiment, train=[1, 2], test=[7, 8])
    assert load_experiment(path, ["split.run=test"]).config.seed_list == [7, 8]
    assert load_experiment(path, ["split.run=train"]).config.seed_list == [1, 2]


def test_a_seed_in_train_and_test_or_seeds_beside_split_is_a_config_error(write_experiment):
    with pytest.raises(InputError, match="train and test share seed 2"):
        load_experiment(_split_file(write_experiment, train=[1, 2], test=[2, 3]))
    path = _split_file(write_experiment, train=[1], test=[2])
    doc = yaml.safe_load(path.read_text())
    doc["seeds"] = [1, 2]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="either seeds: or split:"):
        load_experiment(path)


def test_shipped_benchmark_files_split_disjoint_seeds():
    for name in ("random_world", "null_world"):
        cfg = load_experiment(f"config/experiments/{name}.yaml").config
        assert cfg.split is not None and len(cfg.split.test_seeds) >= 10
        assert not set(cfg.split.train_seeds) & set(cfg.split.test_seeds)


def test_the_gate_judges_the_test_seeds_the_leaderboard_reports(write_experiment, tmp_path):
    """The gate took every seed (train included) while leaderboard.csv and summary.csv reported
    the test seeds only: its interval and verdict disagreed with the reported figures."""
    from experiments.config import parse_check

    exp = load_experiment(_split_file(write_experiment, train=[1, 2], test=[10, 11, 12]))
    out = run(exp, tmp_path / "out", cell_fn=fake_cell, progress=False, plots=False,
              executor="serial", checks=[parse_check("consensus.recall>=0.0")])
    assert len(out.gate) == 1 and out.gate[0].passed
    assert "over 3 seeds" in out.gate[0].detail, out.gate[0].detail
    test_mean = out.results[out.results["seed"] >= 10]["consensus.recall"].mean()
    assert f"{test_mean:.4f}" in out.gate[0].detail or f"{test_mean:.3f}" in out.gate[0].detail


def test_a_gate_that_cannot_be_evaluated_leaves_no_earlier_verdict(write_experiment, tmp_path):
    """A rerun whose check names a metric the results lack is exit 2 — and the previous run's
    gate.json (a PASS) stayed beside the rewritten results, where the API and dashboard read it."""
    from experiments.config import parse_check

    exp = load_experiment(_split_file(write_experiment, train=[1], test=[10]))
    kw = dict(cell_fn=fake_cell, progress=False, plots=False, executor="serial")
    run(exp, tmp_path / "out", checks=[parse_check("consensus.recall>=0.0")], **kw)
    assert (tmp_path / "out" / "gate.json").is_file()
    with pytest.raises(InputError, match="not in the results"):
        run(exp, tmp_path / "out", checks=[parse_check("consensus.nosuch>=0.5")], **kw)
    assert not (tmp_path / "out" / "gate.json").exists()


def test_the_summary_line_counts_the_test_seeds_the_leaderboard_is_over(write_experiment,
                                                                         tmp_path):
    """A 1-train + 2-test run printed "over 3 of 2 seeds (the others have no value)": the line
    counted the train seed's cell beside the leaderboard's test seeds (n_seeds). A test seed
    without a value is still said (the train seed's value does not hide it)."""
    from experiments.experiment import summary_lines

    exp = load_experiment(_split_file(write_experiment, train=[1], test=[10, 11]))
    out = run(exp, tmp_path / "out", cell_fn=fake_cell, progress=False, plots=False,
              executor="serial")
    assert out.leaderboard["n_seeds"].tolist() == [2]
    assert out.results["consensus.recall"].notna().all()
    line = summary_lines(out, "consensus.recall")[1]
    assert line.startswith("  #1 ") and line.endswith(" over 2 seeds"), line
    out.reported.loc[out.reported["seed"] == 11, "consensus.recall"] = float("nan")
    line = summary_lines(out, "consensus.recall")[1]
    assert line.endswith(" over 1 of 2 seeds (the others have no value)"), line


def test_a_rerun_killed_while_writing_its_tables_has_each_of_them_named_missing(
        write_experiment, tmp_path, monkeypatch):
    """A rerun of a split experiment killed while it rewrote its tables was left without
    leaderboard.csv, summary.csv and leaderboard_train.csv, but GET /experiments (and the
    dashboard) named only leaderboard.csv as missing."""
    from fastapi.testclient import TestClient

    import experiments.experiment as experiment
    from api.app import Settings, create_app

    exp = load_experiment(_split_file(write_experiment, train=[1], test=[10, 11]))
    runs = tmp_path / "runs"
    kw = {"cell_fn": fake_cell, "progress": False, "plots": False, "executor": "serial"}
    run(exp, runs / "t", **kw)
    written = experiment.atomic_write_text

    def killed(path, text, *a, **k):
        if path.name == "leaderboard_train.csv":   # the first table this run writes
            raise KeyboardInterrupt
        return written(path, text, *a, **k)

    monkeypatch.setattr(experiment, "atomic_write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        run(exp, runs / "t", **kw)
    tables = ["leaderboard.csv", "leaderboard_train.csv", "summary.csv"]
    assert [n for n in tables if (runs / "t" / n).exists()] == []
    with TestClient(create_app(Settings(reports=tmp_path / "reports", runs=runs))) as c:
        listed = c.get("/experiments").json()
        one = c.get("/experiments/t").json()
    assert [e["missing"] for e in listed] == [tables], listed
    assert one["missing"] == tables, one
