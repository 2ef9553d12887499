"""run_experiment.py: bad experiment files and flags exit 2 with one line and write nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from run_experiment import build_parser, main
from tests.dirs import snapshot

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
        ({"rank_by": "oracle.recall"}, [], "rank_by: 'oracle.recall' is not one of metrics"),
        ({"sedes": [1]}, [], "sedes: unknown key (check spelling; schemas/"),  # no default file
        ({"analysis": None, "grid": {"analysis.threshold": [1]}}, [], "need an analysis: file"),
        ({"kind": "detectability"}, [], "kind: detectability needs a 'detectability:' section"),
        ({}, ["--workers", "0"], "--workers must be at least 1"),
        (
            {},
            ["--executor", "local", "--scheduler", "tcp://127.0.0.1:1"],
            "--scheduler needs --executor dask",
        ),
        # an unset variable ('--scheduler "$DASK_SCHEDULER"') ran every cell on this machine
        ({}, ["--scheduler", ""], "--scheduler is empty"),
        ({}, ["--executor", "dask", "--scheduler", " "], "--scheduler is empty"),
        ({}, ["--gate", "consensus.recall=>0.9"], "expected metric>=number"),
        ({}, ["--workers", "two"], "invalid int value"),
        ({}, ["--baseline", "missing.parquet"], "--baseline missing.parquet: file not found"),
        ({}, ["--set", "seeds.count"], "expected dotted.key=value"),
        # YAML true was read as seed 1 (and 2.0 as 2) by pydantic's lax int
        ({"seeds": [True, 2]}, [], "seeds[0]: Input should be a valid integer (got True)"),
        ({"seeds": [1, 2.0]}, [], "seeds[1]: Input should be a valid integer (got 2.0)"),
        ({"seeds": {"count": 2, "start": True}}, [],
         "seeds.start: Input should be a valid integer (got True)"),
        # counted before expansion (98 M settings took 5 GB and > 5 min, then no message)
        ({"grid": {"analysis.threshold": list(range(400)), "analysis.fail_seed": list(range(400))}},
         [], "grid: 160,000 settings × 3 seeds = 480,000 cells, more than the 100,000"),
        ({"settings": [{"analysis.threshold": 1}, {"analysis.threshold": 2}],
          "grid": {"analysis.fail_seed": list(range(20_000))}},
         [], "grid/settings: 40,000 settings × 3 seeds = 120,000 cells"),
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


@pytest.mark.parametrize(("flags", "label"), [
    (["--gate", "consensus.f1>=0.5"], "(with --gate overrides)"),
    (["--gate", "consensus.f1>=0.5", "--set", "seeds=[1]"], "(with --set and --gate overrides)"),
])
def test_an_error_names_the_flags_that_were_given(write_experiment, tmp_path, capsys, flags,
                                                  label):
    """--gate alone: the error said '(with --set overrides)' (audit 2026-12-05)."""
    path = write_experiment(gate={"max_drop": {"consensus.recal": 0.1}})
    rc = run_cli(main, ["--config", str(path), "--out", str(tmp_path / "o"), "--no-progress",
                        *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"{path} {label}: gate.max_drop" in err, err


@pytest.mark.parametrize("which", ["config", "scenario", "analysis"])
def test_an_out_holding_an_input_is_refused_even_with_force(write_experiment, tmp_path, capsys,
                                                             which):
    """--out around the folder of the experiment's own --config (or its scenario / analysis
    file) with --force moved the folder aside, config and all, and ran (exit 0); the next run
    was 'config file not found'. run_analysis.py and generate_data.py refuse this (audit
    2026-12-05)."""
    import shutil

    path = write_experiment()
    folder = tmp_path / "inputs"
    folder.mkdir()
    moved = folder / {"config": "exp.yaml", "scenario": "scenario.yaml",
                      "analysis": "analysis.yaml"}[which]
    if which == "config":
        shutil.move(path, moved)
        path = moved
    else:
        shutil.move(tmp_path / moved.name, moved)
        doc = yaml.safe_load(path.read_text())
        doc[which] = str(moved)
        path.write_text(yaml.safe_dump(doc))
    before = snapshot(folder)
    rc = run_cli(main, ["--config", str(path), "--out", str(folder), "--no-progress", "--force"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"contains the input {moved}" in err and "\n" not in err, err
    assert snapshot(folder) == before and not list(tmp_path.glob("inputs.kept*"))


def test_a_bad_scheduler_writes_nothing_and_moves_nothing(write_experiment, tmp_path, capsys,
                                                          monkeypatch):
    """--scheduler was probed only when the cells ran: by then --out's parents were created and
    --force had moved the user's folder aside to <out>.kept-1."""
    import socket

    import experiments.runner as runner

    monkeypatch.setattr(runner, "SCHEDULER_TIMEOUT_S", 0.5)
    server = socket.create_server(("127.0.0.1", 0))   # accepts (the backlog), never answers
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    path = write_experiment()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    try:
        for out, flags in ((tmp_path / "a" / "b" / "c", []), (mine, ["--force"])):
            rc = run_cli(main, ["--config", str(path), "--out", str(out), "--no-progress",
                                "--scheduler", address, *flags])
            err = capsys.readouterr().err.strip()
            assert rc == 2 and "no Dask scheduler answered" in err and "\n" not in err, err
    finally:
        server.close()
    assert not (tmp_path / "a").exists()
    assert (mine / "notes.txt").read_text() == "keep" and not list(tmp_path.glob("mine.kept*"))


@pytest.mark.parametrize(("fields", "key"), [
    ({"kind": "detectability"}, "kind"),
    ({"detectability": {"targets": [{"event_type": "flash_sale", "magnitude_key": "magnitude",
                                     "magnitudes": [0.1], "events": [{"type": "flash_sale"}]}]}},
     "detectability"),
    ({"analysis": None, "grid": {"analysis.threshold": [1]}}, "grid/settings"),
    ({"split": {"train": [1], "test": [2]}}, "seeds"),
    ({"rank_by": "oracle.recall"}, "rank_by"),
])
def test_a_whole_file_rule_names_the_file_and_the_key(write_experiment, tmp_path, capsys,
                                                      fields, key):
    """Rules across keys said 'exp.yaml: <root>: …' (pydantic's location of a model rule)."""
    path = write_experiment(**fields)
    assert run_cli(main, ["--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: {key}: ") and "<root>" not in err, err
    assert "\n" not in err and not (tmp_path / "o").exists()


def test_missing_and_malformed_files(tmp_path, capsys):
    assert run_cli(main, ["--config", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "scenario": str(tmp_path / "gone.yaml")}))
    assert run_cli(main, ["--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "gone.yaml: config file not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["scenario", "analysis"])
def test_a_missing_base_file_names_the_experiment_and_its_key(tmp_path, capsys, key):
    """'nope.yaml: config file not found' did not say which file named it, nor under what key."""
    small = Path(__file__).resolve().parents[2] / "config" / "scenarios" / "small.yaml"
    fields = {"name": "x", "scenario": str(small), key: "nope.yaml"}
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(fields))
    assert run_cli(main, ["--config", str(exp), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {exp}: {key}: nope.yaml: config file not found"), err
    # a directory there said '<dir>: cannot read config file (IsADirectoryError)'
    exp.write_text(yaml.safe_dump({**fields, key: str(tmp_path)}))
    assert run_cli(main, ["--config", str(exp), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {exp}: {key}: {tmp_path}: is a directory, not a config file", err


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


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        (
            "consensus.recal>=0.9",
            "--gate 'consensus.recal>=0.9': metric 'consensus.recal' is not one this experiment's "
            "cells produce (did you mean consensus.recall?",
        ),
        (   # a detector the analysis switches off: said so (it hinted at the oracle)
            "detectors.prophet_residual.recall>=0.5",
            "reads the detector 'prophet_residual', which this experiment's analysis switches "
            "off (enable it: --set analysis_overrides.detectors.prophet_residual.enabled=true)",
        ),
        (   # a detector no analysis configures: the closest name
            "detectors.prophet_residul.recall>=0.5",
            "metric 'detectors.prophet_residul.recall' is not one",
        ),
        (   # an event type that does not exist
            "consensus.by_type.site_outtage.recall>=0.5",
            "did you mean consensus.by_type.site_outage.recall",
        ),
    ],
)
def test_gate_metric_typo_is_found_before_any_cell_runs(tmp_path, capsys, monkeypatch, gate,
                                                        message):
    """A typo'd gate metric used to surface only after every cell had run (minutes to hours)."""
    import experiments.experiment as experiment

    def no_cells(*args, **kwargs):
        raise AssertionError("a cell ran before the gate's metrics were checked")

    monkeypatch.setattr(experiment, "run_tasks", no_cells)
    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "typo", "scenario": str(root / "config/scenarios/small.yaml"),
        "analysis": str(root / "config/analysis.yaml"), "seeds": [1],
        "analysis_overrides": {"detectors.prophet_residual.enabled": False}}))
    out = tmp_path / "out"
    assert run_cli(main, ["--config", str(path), "--out", str(out), "--gate", gate]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not out.exists()


def test_gate_metrics_a_cell_produces_pass_the_check(tmp_path, monkeypatch):
    """Names the scorecard does hold (oracle, false alerts, the other scoring mode, a by_type
    figure, a k-of-n level) are accepted: the check reaches the cells."""
    import experiments.experiment as experiment

    class Reached(Exception):
        pass

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(experiment, "run_tasks", reached)
    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ok", "scenario": str(root / "config/scenarios/small.yaml"),
        "analysis": str(root / "config/analysis.yaml"), "seeds": [1]}))
    gates = ["consensus.recall>=0.5", "detectors.oracle.f1>=0.1", "false_alerts.consensus<=1",
             "false_alerts.detectors.count_likelihood<=1", "lenient.consensus.recall>=0.5",
             "consensus.by_type.site_outage.recall>=0.5", "consensus_levels.k2.precision>=0.5",
             "oracle_equal_fp.ratio>=0.5", "headline.f1>=0.5", "failed_detectors.count<=0",
             "detectors.prophet_residual.recall>=0"]   # on in the shipped file? then accepted
    from experiments.config import load_experiment
    from experiments.experiment import run

    cfg = yaml.safe_load((root / "config/analysis.yaml").read_text())
    if not cfg["detectors"]["prophet_residual"].get("enabled", True):
        gates.remove("detectors.prophet_residual.recall>=0")
    from experiments.config import parse_check

    with pytest.raises(Reached):
        run(load_experiment(path), tmp_path / "out", checks=[parse_check(g) for g in gates],
            progress=False)


@pytest.mark.parametrize("case", ["user_folder", "data_set", "experiment", "same_as_out",
                                  "out_inside"])
def test_a_cache_dir_that_is_not_a_world_cache_is_refused_before_any_work(tmp_path, capsys,
                                                                         case):
    """--cache-dir took any folder: worlds were written into a user's folder, a data set or
    another experiment (whose own rerun replaces plots/ and, with --fresh, cells/), and --out
    could sit inside the cache or be it. Now exit 2 naming the flag; nothing is added anywhere."""
    from tests.simulation.simtools import tiny_config

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_config()))
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "cache", "scenario": str(tmp_path / "tiny.yaml"),
        "analysis": str(root / "config/analysis.yaml"), "seeds": [1],
        "analysis_overrides": {"detectors.prophet_residual.enabled": False}}))
    cache, out = tmp_path / "cache", tmp_path / "out"
    cache.mkdir()
    (cache / "mine.txt").write_text("keep")
    if case == "data_set":
        (cache / "manifest.json").write_text('{"generator": "shocklab"}')
        (cache / "mine.txt").unlink()
    elif case == "experiment":
        (cache / "cells").mkdir()
        (cache / "mine.txt").unlink()
    elif case == "same_as_out":
        (cache / "mine.txt").unlink()
        out = cache
    elif case == "out_inside":
        (cache / "mine.txt").unlink()
        out = cache / "exp"
    before = sorted(p.name for p in cache.rglob("*"))
    rc = run_cli(main, ["--config", str(path), "--out", str(out), "--cache-dir", str(cache),
                        "--executor", "serial", "--no-progress", "--no-plots"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "--cache-dir" in err, err
    assert sorted(p.name for p in cache.rglob("*")) == before
    assert case == "same_as_out" or not out.exists()


@pytest.fixture
def tiny_cli(tmp_path, capsys):
    """run_experiment.py in-process into tmp_path/exp: (exit code, stderr)."""
    def cli(path: Path, *flags: str) -> tuple[int, str]:
        rc = run_cli(main, ["--config", str(path), "--out", str(tmp_path / "exp"), "--executor",
                            "serial", "--no-progress", "--no-plots", "--quiet", *flags])
        return rc, capsys.readouterr().err.strip()

    return cli


def test_another_experiment_in_out_is_refused_and_force_moves_it_aside(tmp_path, tiny_experiment,
                                                                       tiny_cli):
    """AUDIT21 D4: a null_world run with --out of a ci_gate experiment replaced its
    results.parquet, leaderboard.csv and experiment.json, deleted its gate.json and plots/ and
    mixed the two experiments' cells/, exit 0. Now exit 2 with one line naming the directory,
    the experiment there and --force; nothing is touched. A rerun of the same experiment (same
    name and kind, other settings) still resumes and drops its own optional files; --force
    moves the other experiment aside to <out>.kept-N (after validation), never deletes it."""
    experiment, cli, out = tiny_experiment, tiny_cli, tmp_path / "exp"

    gate = experiment("gate", gate={"checks": ["consensus.recall>=0.0"]})
    rc, err = cli(gate)
    assert rc == 0, err
    assert (out / "gate.json").is_file()
    before = snapshot(out)
    cells = {p: b for p, b in before.items() if p.startswith("cells/")}

    rc, err = cli(experiment("other"))
    assert rc == 2 and "\n" not in err, err
    assert err == (f"error: --out {out}: holds the experiment 'gate' (kind sweep), not 'other' "
                   "(kind sweep); refusing to write into it — choose another output path, or "
                   "pass --force to move it aside to exp.kept-1 (nothing is deleted)")
    assert snapshot(out) == before

    # --force with bad input: exit 2 before the earlier experiment is moved
    rc, err = cli(experiment("other"), "--force", "--gate", "consensus.recal>=0.5")
    assert rc == 2 and "did you mean consensus.recall" in err, err
    assert snapshot(out) == before and not (tmp_path / "exp.kept-1").exists()

    # the same experiment, edited (no gate now): resumes its cell, drops its own gate.json
    rc, err = cli(experiment("gate", seeds=[1]))
    assert rc == 0, err
    assert not (out / "gate.json").exists()
    assert {p: b for p, b in snapshot(out).items() if p.startswith("cells/")} == cells  # as is
    kept = snapshot(out)

    rc, err = cli(experiment("other"), "--force")
    assert rc == 0, err
    assert snapshot(tmp_path / "exp.kept-1") == kept   # moved aside whole, not deleted
    assert json.loads((out / "experiment.json").read_text())["name"] == "other"
    assert (out / "results.parquet").is_file()


def test_force_moves_a_folder_that_is_not_an_experiment_aside(tmp_path, tiny_experiment,
                                                              tiny_cli):
    """--force over a user's folder (refused without it) keeps its files in <out>.kept-N, as
    run_analysis.py and generate_data.py's --force do."""
    out = tmp_path / "exp"
    out.mkdir()
    (out / "notes.txt").write_text("precious\n")
    rc, err = tiny_cli(tiny_experiment("mine"))
    assert rc == 2 and "a folder ShockLab did not write" in err and "--force" in err, err
    rc, err = tiny_cli(tiny_experiment("mine"), "--force")
    assert rc == 0, err
    assert (tmp_path / "exp.kept-1" / "notes.txt").read_text() == "precious\n"
    assert not (out / "notes.txt").exists() and (out / "results.parquet").is_file()


def test_help_examples_keep_their_line_continuations():
    """The module docstring was not raw, so "\\<newline>" joined the example lines in --help
    ("detector_sweep.yaml         --executor local"): the examples now print as written."""
    text = build_parser().format_help()
    assert "detector_sweep.yaml \\\n        --executor local --workers 2" in text
    assert "yaml         --" not in text


def test_help_set_example_is_one_an_experiment_file_accepts(tmp_path):
    """--help's --set example was "seed=7", which an experiment file refuses ("seed: unknown
    key"): the example is now one it takes."""
    from experiments.config import load_experiment

    text = " ".join(build_parser().format_help().split())
    example = re.search(r"e\.g\. --set (\S+) \(repeatable\)", text).group(1)
    root = Path(__file__).resolve().parents[2]
    exp = load_experiment(root / "config" / "experiments" / "ci_gate.yaml", [example])
    assert exp is not None


@pytest.mark.parametrize("gate", ["consensus.recall>=0.5", "oracle_equal_fp.ratio>=0.5",
                                  "false_alerts.consensus<=1"])
def test_a_consensus_gate_without_a_voting_detector_is_bad_input(tmp_path, capsys, gate):
    """An analysis that enables no voting detector (only the oracle) ran every cell and then
    'failed' a consensus gate on an empty consensus, exit 1 (a quality verdict); run_analysis.py
    refuses that (exit 2), and so does an experiment now, before any cell runs. A gate on a
    detector's own figures stays accepted."""
    root = Path(__file__).resolve().parents[2]
    names = yaml.safe_load((root / "config/analysis.yaml").read_text())["detectors"]
    off = {f"detectors.{n}.enabled": False for n in names if n != "oracle"}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "name": "novote", "scenario": str(root / "config/scenarios/small.yaml"),
        "analysis": str(root / "config/analysis.yaml"), "seeds": [1],
        "analysis_overrides": off}))
    out = tmp_path / "out"
    assert run_cli(main, ["--config", str(path), "--out", str(out), "--no-progress",
                          "--gate", gate]) == 2
    err = capsys.readouterr().err.strip()
    assert "judges the consensus" in err and "\n" not in err, err
    assert not out.exists()
