"""run_experiment.py: bad experiment files and flags exit 2 with one line and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from run_experiment import main

from shocklab.cli import run_cli


@pytest.mark.parametrize(
    ("fields", "flags", "message"),
    [
        (
            {"grid": {"detectors.z.threshold": [3]}},
            [],
            "grid: override key 'detectors.z.threshold' must start with",
        ),
        ({"grid": {"scenario.seed": [1, 2]}}, [], "scenario.seed is set by 'seeds:'"),
        ({"seeds": []}, [], "seeds"),
        ({"rank_by": "oracle.recall"}, [], "rank_by 'oracle.recall' is not one of metrics"),
        ({"sedes": [1]}, [], "sedes: unknown key"),
        ({"analysis": None, "grid": {"analysis.threshold": [1]}}, [], "need an analysis file"),
        ({"kind": "detectability"}, [], "needs a 'detectability:' section"),
        ({}, ["--workers", "0"], "--workers must be at least 1"),
        (
            {},
            ["--executor", "local", "--scheduler", "tcp://127.0.0.1:1"],
            "--scheduler needs --executor dask",
        ),
        ({}, ["--gate", "consensus.recall=>0.9"], "expected metric>=number"),
        ({}, ["--workers", "two"], "invalid int value"),
        ({}, ["--baseline", "missing.parquet"], "--baseline missing.parquet: file not found"),
        ({}, ["--set", "seeds.count"], "expected dotted.key=value"),
    ],
)
def test_bad_input_exits_2_one_line_nothing_written(
    write_experiment, tmp_path, capsys, fields, flags, message
):
    path = write_experiment(**fields)
    out = tmp_path / "out"
    try:
        rc = run_cli(main, ["--config", str(path), "--out", str(out), "--no-progress", *flags])
    except SystemExit as exc:  # argparse's own errors
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_missing_and_malformed_files(tmp_path, capsys):
    assert run_cli(main, ["--config", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "scenario": str(tmp_path / "gone.yaml")}))
    assert run_cli(main, ["--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "gone.yaml: config file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("key", "values", "message"),
    [
        (
            "analysis.detectors.rolling_zscore.thresold",
            [3, 4],
            "analysis.yaml (with exp.yaml overrides): detectors.rolling_zscore.thresold: unknown "
            "key",
        ),
        (
            "scenario.events.0.drop_pct",
            [0.5, 1.5],
            "small.yaml (with exp.yaml overrides): events[0].drop_pct: Input should be less than "
            "or equal to 1",
        ),
    ],
)
def test_bad_override_is_caught_by_the_backends_models_before_any_work(
    tmp_path, capsys, key, values, message
):
    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bad",
                "scenario": str(root / "config/scenarios/small.yaml"),
                "analysis": str(root / "config/analysis.yaml"),
                "grid": {key: values},
            }
        )
    )
    out = tmp_path / "out"
    assert run_cli(main, ["--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()
