"""Hostile-input audit of run_experiment.py (session 37): each test failed on the code before it.

Real processes and files: the CLI in-process (``run_cli``), the real simulator and pipeline on
the tiny world where a case needs real cells, the fakes of ``exp_fakes`` elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from run_experiment import main
from tests.dirs import snapshot
from tests.experiments.exp_fakes import count_lines, fake_cell

from experiments.cell import run_cell
from experiments.config import load_experiment
from experiments.experiment import plan, run
from shocklab.cli import run_cli
from shocklab.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def _run(exp, out: Path, **kw):
    kw.setdefault("cell_fn", fake_cell)
    kw.setdefault("progress", False)
    kw.setdefault("plots", False)
    return run(exp, out, **kw)


def _exp(write_experiment, file: str = "exp.yaml", **fields) -> Path:
    """``write_experiment`` whose fields may hold ``name`` (its own first parameter)."""
    path = write_experiment(file)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **fields},
                                   sort_keys=False))
    return path


def _cli(capsys, *args: str) -> tuple[int, str]:
    try:
        rc = run_cli(main, [*args, "--no-progress", "--no-plots"])
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err.strip()


@pytest.fixture
def tiny(tiny_experiment):
    """``tiny_experiment`` named 'tiny' unless told."""
    return lambda name="tiny", **fields: tiny_experiment(name, **fields)


# --- the experiment file ---------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "message"), [
    # the default --out is runs/experiments/<name>: '..' was runs/ itself (and --force exit 3),
    # '.' was runs/experiments, which --force moved aside with every other experiment in it
    ({"name": ".."}, "name: String should match pattern"),
    ({"name": "."}, "name: String should match pattern"),
    ({"name": ".hidden"}, "name: String should match pattern"),
    # every cell's seed replaced it, without a word
    ({"scenario_overrides": {"seed": 5}},
     "scenario_overrides: seed: the scenario seed is set by 'seeds:'"),
    # read from the file before any override: 'base: unknown key' named the analysis file
    ({"grid": {"analysis.base": ["none"]}}, "grid: analysis.base is read from the analysis file"),
    ({"analysis_overrides": {"base": "none"}}, "analysis.base is read from the analysis file"),
    # an override that cannot apply named a '--set' never given
    ({"grid": {"scenario.events.7.params.drop_pct": [0.5]}},
     "exp.yaml: grid/settings: scenario.events.7.params.drop_pct: index 7 out of range"),
    ({"scenario_overrides": {"events.7.noise": 0.5}},
     "exp.yaml: scenario_overrides: events.7.noise: index 7 out of range"),
])
def test_bad_experiment_files_exit_2_naming_the_key(write_experiment, tmp_path, capsys, fields,
                                                   message):
    out = tmp_path / "out"
    rc, err = _cli(capsys, "--config", str(_exp(write_experiment, **fields)), "--out", str(out))
    assert rc == 2 and message in err and "\n" not in err, err
    assert "--set" not in err
    assert not out.exists()


def test_two_detectability_targets_of_one_event_type_are_refused(write_experiment, tmp_path,
                                                                 capsys):
    """A channel outage on paid_search and one on email, two targets: their recalls were pooled
    into one curve (each magnitude's seeds counted twice) and one MDE."""
    def target(channel: str) -> dict:
        return {"event_type": "channel_outage", "magnitude_key": "params.drop_pct",
                "magnitudes": [0.1, 0.5],
                "events": [{"type": "channel_outage", "start": "2025-01-10", "duration_days": 2,
                            "params": {"drop_pct": 0.3}, "scope": {"channel": channel}}]}

    path = write_experiment(kind="detectability",
                            detectability={"targets": [target("paid"), target("email")]})
    rc, err = _cli(capsys, "--config", str(path), "--out", str(tmp_path / "out"))
    assert rc == 2 and "targets[1]: event_type 'channel_outage' is swept by targets[0]" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("fields", "message"), [
    ({"metrics": ["consensus.recal", "consensus.f1"], "rank_by": "consensus.recal"},
     "metrics: metric 'consensus.recal' is not one this experiment's cells produce (did you mean "
     "consensus.recall?)"),
    ({"kind": "detectability", "detectability": {
        "recall_metrics": ["detectors.rolling_zscore.recal"],
        "targets": [{"event_type": "site_outage", "magnitude_key": "drop_pct",
                     "magnitudes": [0.5], "events": [{"type": "site_outage",
                                                      "start": "2025-02-11",
                                                      "duration_days": 1, "drop_pct": 0.5}]}]}},
     "detectability.recall_metrics: metric 'detectors.rolling_zscore.recal' is not one"),
])
def test_metric_typos_are_found_before_any_cell_runs(tiny, tmp_path, capsys, monkeypatch, fields,
                                                     message):
    """A typo in metrics: / rank_by ran every cell and ranked by an empty column, and one in
    recall_metrics wrote empty detectability.csv and mde.csv: exit 0 (one warning)."""
    import experiments.experiment as experiment

    def no_cells(*args, **kwargs):
        raise AssertionError("a cell ran before the metric names were checked")

    monkeypatch.setattr(experiment, "run_tasks", no_cells)
    out = tmp_path / "out"
    rc, err = _cli(capsys, "--config", str(tiny(**fields)), "--out", str(out))
    assert rc == 2 and message in err and "\n" not in err, err
    assert not out.exists()


def test_a_detector_list_naming_nothing_the_stores_have_is_refused_before_any_cell(
        tiny, tmp_path, capsys, monkeypatch):
    """run_analysis.py refuses a detector's ``dimensions`` naming no analysed dimension (the
    detector would watch nothing); an experiment's cells, store data too, only warned in each
    cell's log and ran every cell with the detector silent."""
    import experiments.experiment as experiment

    def no_cells(*args, **kwargs):
        raise AssertionError("a cell ran before the analysis settings were checked")

    monkeypatch.setattr(experiment, "run_tasks", no_cells)
    out = tmp_path / "out"
    path = tiny(analysis_overrides={"detectors.prophet_residual.enabled": False,
                                    "detectors.rolling_zscore.dimensions": ["foo"]})
    rc, err = _cli(capsys, "--config", str(path), "--out", str(out))
    assert rc == 2 and "detectors.rolling_zscore.dimensions" in err and "'foo'" in err, err
    assert "\n" not in err and not out.exists()


def test_metrics_without_a_voting_detector_are_still_accepted(tiny, tmp_path, monkeypatch):
    """The leaderboard's consensus columns exist (zero recall) without voters: only a gate on
    them is refused."""
    import experiments.experiment as experiment

    class Reached(Exception):
        pass

    def reached(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(experiment, "run_tasks", reached)
    (tmp_path / "none.yaml").write_text("base: none\ndetectors: {}\n")
    path = tiny(analysis=str(tmp_path / "none.yaml"), analysis_overrides={})
    with pytest.raises(Reached):
        run(load_experiment(path), tmp_path / "out", progress=False)


@pytest.mark.parametrize("source", ["file", "flag", "baseline"])
def test_a_gate_on_a_split_that_runs_no_test_seed_is_bad_input(write_experiment, tmp_path,
                                                               source):
    """split.run: train runs no test seed, and the gate judges the test seeds: no check was
    made, the run passed (exit 0) with no gate.json."""
    fields = {"split": {"train": [1, 2], "test": [3], "run": "train"}}
    if source == "file":
        fields["gate"] = {"checks": ["consensus.recall>=0.5"]}
    path = write_experiment(**fields)
    doc = yaml.safe_load(path.read_text())
    del doc["seeds"]
    path.write_text(yaml.safe_dump(doc))
    exp = load_experiment(path)
    kw = {}
    if source == "flag":
        kw["checks"] = [("consensus.recall", ">=", 0.5)]
    if source == "baseline":
        kw["baseline"] = _run(load_experiment(write_experiment("b.yaml")),
                              tmp_path / "base").results
    with pytest.raises(InputError, match="split.run: train runs no test seed"):
        _run(exp, tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


# --- the world cache and the cell records ----------------------------------------------------

@pytest.mark.slow
def test_a_cached_world_that_is_not_the_one_its_name_says_is_generated_again(tiny, tmp_path):
    """A world directory of the shared cache without its manifest (deleted, or made by hand) was
    loaded with no file checked, and seed 2's world copied under seed 1's hash was scored as
    seed 1's — both as cache hits, both silently."""
    exp = load_experiment(tiny(seeds=[1, 2]))
    cache = tmp_path / "cache"
    _, tasks = plan(exp, cache)
    first = [run_cell(t) for t in tasks]
    assert [r["status"] for r in first] == ["ok", "ok"], first
    one, two = (Path(cache) / d for d in sorted(os.listdir(cache)) if not d.startswith("."))
    seed1 = one if json.loads((one / "manifest.json").read_text())["seed"] == 1 else two
    seed2 = two if seed1 == one else one
    by_seed = {r["seed"]: r for r in first}

    shutil.rmtree(seed1)
    shutil.copytree(seed2, seed1)   # another world under this world's name
    again = run_cell(tasks[[t.seed for t in tasks].index(1)])
    assert again["status"] == "ok" and again["cache_hit"] is False
    assert again["metrics"] == by_seed[1]["metrics"]
    assert json.loads((seed1 / "manifest.json").read_text())["seed"] == 1

    (seed2 / "manifest.json").unlink()   # no manifest: nothing of it can be checked
    again = run_cell(tasks[[t.seed for t in tasks].index(2)])
    assert again["status"] == "ok" and again["cache_hit"] is False
    assert again["metrics"] == by_seed[2]["metrics"]
    assert not [p for p in Path(cache).iterdir() if ".bad-" in p.name]


@pytest.mark.parametrize("damage", ["list", "text", "metrics_text", "seed_text",
                                    "seed_edited"])
def test_a_malformed_cell_record_is_run_again_not_exit_3(write_experiment, tmp_path, capsys,
                                                         caplog, damage):
    """cells/<id>.json holding a JSON list or string, metrics that are not numbers or a seed of
    text was exit 3 (AttributeError, ValueError) on the resume; a record whose seed was edited
    was taken for that cell (then run again without the warning line the others get, audit
    2026-12-05)."""
    import logging
    calls = tmp_path / "calls.log"
    exp = load_experiment(write_experiment(seeds=[1, 2, 3],
                                           analysis_overrides={"log": str(calls)}))
    out = tmp_path / "out"
    first = _run(exp, out, executor="serial").results
    files = sorted((out / "cells").glob("*.json"))
    target = files[0]
    rec = json.loads(target.read_text())
    if damage == "list":
        target.write_text("[]")
    elif damage == "text":
        target.write_text('"done"')
    elif damage == "metrics_text":
        target.write_text(json.dumps({**rec, "metrics": {"consensus.recall": "high"}}))
    elif damage == "seed_text":
        target.write_text(json.dumps({**rec, "seed": "two"}))
    else:
        target.write_text(json.dumps({**rec, "seed": rec["seed"] + 10}))
    logger = logging.getLogger("shocklab")   # its own handler: an earlier CLI in this worker
    logger.addHandler(caplog.handler)         # may have set propagate False
    try:
        again = _run(exp, out, executor="serial").results
    finally:
        logger.removeHandler(caplog.handler)
    warned = {id(r): r.getMessage() for r in caplog.records   # one record, maybe seen twice
              if "not a cell record" in r.getMessage()}        # (here and at the root)
    assert len(warned) == 1 and target.name in next(iter(warned.values())), caplog.text
    assert count_lines(calls) == 4   # three the first time, the damaged one again
    pd.testing.assert_frame_equal(first.drop(columns=["time_generate_s", "time_analyse_s",
                                                      "time_total_s", "time_cpu_s", "cache_hit",
                                                      "worker"]),
                                  again.drop(columns=["time_generate_s", "time_analyse_s",
                                                      "time_total_s", "time_cpu_s", "cache_hit",
                                                      "worker"]))
    assert json.loads(target.read_text())["cell_id"] == target.stem


def _exiting_analyse(code: int, data_dir, analysis):
    sys.exit(code)


@pytest.mark.parametrize("code", [0, 1, 2])
def test_a_cell_calling_exit_is_a_failed_cell(write_experiment, tmp_path, code):
    """sys.exit() inside a cell (a library's) ended the whole run with its code — 0 with nothing
    written — instead of recording the cell's failure."""
    from tests.experiments.exp_fakes import fake_generate, fake_hash

    cell = partial(run_cell, generate=fake_generate, analyse=partial(_exiting_analyse, code),
                   scenario_hash=fake_hash)
    out = _run(load_experiment(write_experiment(seeds=[1, 2])), tmp_path / "out",
               executor="serial", cell_fn=cell)
    assert (out.results["status"] == "error").all()
    assert out.results["error"].str.startswith("SystemExit").all()
    assert (tmp_path / "out" / "results.parquet").is_file()


# --- --out, --cache-dir, --workers, --scheduler ---------------------------------------------

def test_out_ending_in_dotdot_with_force_moves_that_folder_aside(tiny, tmp_path, capsys):
    """--out runs/x/.. --force renamed 'runs/x/..': exit 3 (Device or resource busy)."""
    mine = tmp_path / "mine"
    (mine / "x").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep")
    rc, err = _cli(capsys, "--config", str(tiny()), "--out", str(mine / "x" / ".."), "--force",
                   "--executor", "serial")
    assert rc == 0, err
    assert (tmp_path / "mine.kept-1" / "notes.txt").read_text() == "keep"
    assert (mine / "results.parquet").is_file()


@pytest.mark.parametrize("holder", ["experiment", "data"])
def test_out_inside_another_output_is_refused(write_experiment, tmp_path, capsys, holder):
    """--out inside an experiment directory or a data set was written into it: the data set's
    next generate_data.py --out swap took the experiment with it."""
    outer = tmp_path / "outer"
    if holder == "experiment":
        _run(load_experiment(write_experiment()), outer)
    else:
        outer.mkdir()   # a data set: its manifest and ShockLab's marker
        (outer / "manifest.json").write_text("{}")
        (outer / ".shocklab-output").write_text('{"shocklab_output": true}')
    before = snapshot(outer)
    out = outer / "sub" / "exp"
    rc, err = _cli(capsys, "--config", str(_exp(write_experiment, "e.yaml", name="e")), "--out",
                   str(out))
    assert rc == 2 and f"is inside the ShockLab {holder} directory {outer}" in err, err
    assert snapshot(outer) == before


def test_more_workers_than_cpus_start_a_few_per_cpu(write_experiment, tmp_path, monkeypatch,
                                                    pool_sizes, caplog):
    """--workers 64 on a 2-CPU runner forked 64 processes for a 64-cell sweep (one per cell),
    each holding its memory, for no speed."""
    import logging

    import experiments.runner as runner

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    exp = load_experiment(write_experiment(seeds=list(range(12))))
    with caplog.at_level(logging.INFO, logger="shocklab.experiments"):
        out = _run(exp, tmp_path / "out", executor="local", workers=64)
    assert (out.results["status"] == "ok").all() and len(out.results) == 12
    assert pool_sizes == [runner.WORKERS_PER_CPU]
    assert f"12 cells (local, {runner.WORKERS_PER_CPU} workers)" in caplog.text
    assert "--workers 64: starting 4 worker processes" in caplog.text


def test_a_scheduler_nothing_listens_on_is_said_at_once(write_experiment, tmp_path, capsys,
                                                        monkeypatch):
    """A refused connection (the scheduler not started) and an unknown host were retried for the
    whole timeout and then reported as 'timed out' / 'no Dask scheduler answered'."""
    import experiments.runner as runner

    monkeypatch.setattr(runner, "SCHEDULER_TIMEOUT_S", 5.0)
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()   # nothing listens there now
    path = write_experiment()
    for address, message in ((f"tcp://127.0.0.1:{port}", "nothing listens there (connection "
                                                           "refused)"),
                             ("tcp://no-such-host.invalid:8786", "cannot resolve its host"),
                             ("tcp://127.0.0.1:99999", "the port must be 0-65535")):
        rc, err = _cli(capsys, "--config", str(path), "--out", str(tmp_path / "out"),
                       "--scheduler", address)
        assert rc == 2 and message in err and "\n" not in err, (address, err)
    assert not (tmp_path / "out").exists()


# --- --baseline ------------------------------------------------------------------------------

def _baseline_variant(results: pd.DataFrame, case: str) -> pd.DataFrame:
    df = results.copy()
    if case == "twice":
        return pd.concat([df, df])
    if case == "seed_text":
        df["seed"] = df["seed"].astype(str)
    elif case == "metric_text":
        df["consensus.recall"] = df["consensus.recall"].astype(str)
    elif case == "inf":
        df["consensus.recall"] = np.inf
    elif case == "all_failed":
        df["status"] = "error"
    return df


@pytest.mark.parametrize(("case", "message"), [
    ("twice", "appears twice"),                     # two results tables concatenated: exit 0
    ("seed_text", "seed is"),                       # never paired: compared unpaired, exit 0
    ("metric_text", "metric consensus.recall holds"),  # exit 3 (TypeError)
    ("inf", "holds an infinite value"),             # 'worse beyond noise', exit 1
    ("all_failed", "every cell of it failed"),      # 'no comparable values', exit 1
])
def test_a_baseline_that_is_not_one_results_table_is_bad_input(write_experiment, tmp_path,
                                                               capsys, monkeypatch, case,
                                                               message):
    import experiments.experiment as experiment

    def no_cells(*args, **kwargs):
        raise AssertionError("a cell ran with a baseline that cannot be compared")

    base = _run(load_experiment(write_experiment()), tmp_path / "base").results
    path = tmp_path / "baseline.parquet"
    _baseline_variant(base, case).to_parquet(path, index=False)
    monkeypatch.setattr(experiment, "run_tasks", no_cells)
    capsys.readouterr()
    rc, err = _cli(capsys, "--config", str(write_experiment()), "--out", str(tmp_path / "out"),
                   "--baseline", str(path))
    line = err.splitlines()[-1]   # (a log handler of an earlier test may complain above it)
    assert rc == 2 and f"--baseline {path}: not one experiment's results table" in line, err
    assert message in line, err


def test_a_baseline_of_another_kind_of_experiment_is_bad_input(write_experiment, tmp_path,
                                                               capsys):
    """A detectability run's results as the baseline of a sweep: refused by the experiment.json
    beside them, before any cell runs."""
    base = tmp_path / "base"
    _run(load_experiment(write_experiment()), base)
    meta = json.loads((base / "experiment.json").read_text())
    (base / "experiment.json").write_text(json.dumps({**meta, "kind": "detectability"}))
    rc, err = _cli(capsys, "--config", str(write_experiment()), "--out", str(tmp_path / "out"),
                   "--baseline", str(base))
    assert rc == 2 and "holds a detectability experiment's results" in err, err
    assert not (tmp_path / "out").exists()


# --- the bootstrap ---------------------------------------------------------------------------

def test_bootstrap_memory_is_bounded_and_the_interval_unchanged():
    """All resamples were drawn at once: resamples × seeds indices and as many values, 16 GB
    per (setting, metric) at the schema's bounds. Now drawn in chunks, the same interval."""
    import tracemalloc

    from experiments.config import Bootstrap
    from experiments.results import bootstrap_interval
    from shocklab.seeding import rng as named_rng

    x = np.random.default_rng(3).random(500)
    boot = Bootstrap(resamples=40_000, confidence=0.9, seed=4)
    tracemalloc.start()
    try:
        lo, hi = bootstrap_interval(x, boot, "s/m")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 80e6, peak   # one draw: 2 × 40,000 × 500 × 8 bytes = 320 MB
    gen = named_rng(4, "bootstrap/s/m")   # the formula of one draw
    means = x[gen.integers(0, x.size, size=(40_000, x.size))].mean(axis=1)
    assert (lo, hi) == tuple(float(q) for q in np.quantile(means, [0.05, 0.95]))

