"""Runner mechanics on fake cells: executor parity, world cache, resume, failed cells."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.experiments.exp_fakes import count_lines, fake_cell, interrupting_cell
from tests.procs import alive, all_ended, started_workers

from experiments.config import load_experiment
from experiments.experiment import plan, run
from experiments.grid import grid_settings
from experiments.results import IDENTITY_EXCLUDED

GRID = {"analysis.threshold": [2.0, 3.0, 4.0], "scenario.events.0.params.drop_pct": [0.2, 0.5]}


def _run(exp, out: Path, **kw):
    kw.setdefault("cell_fn", fake_cell)
    kw.setdefault("progress", False)
    kw.setdefault("plots", False)
    return run(exp, out, **kw)


def test_setting_ids_are_content_hashes(write_experiment):
    a = grid_settings(load_experiment(write_experiment(grid=GRID)).config)
    b = grid_settings(load_experiment(write_experiment(
        "b.yaml", grid=dict(reversed(list(GRID.items()))))).config)
    assert len(a) == 6
    assert {s.setting_id for s in a} == {s.setting_id for s in b}
    assert len({s.setting_id for s in a}) == 6


def test_serial_local_and_dask_give_identical_results(write_experiment, tmp_path):
    exp = load_experiment(write_experiment(grid=GRID, seeds={"count": 2, "start": 5}))
    serial = _run(exp, tmp_path / "serial", executor="serial")
    local = _run(exp, tmp_path / "local", executor="local", workers=2)
    dask = _run(exp, tmp_path / "dask", executor="dask", workers=2)
    assert len(serial.results) == 12 and (serial.results["status"] == "ok").all()
    ident = serial.results.drop(columns=IDENTITY_EXCLUDED)
    pd.testing.assert_frame_equal(
        ident, local.results.drop(columns=IDENTITY_EXCLUDED), check_exact=True
    )
    pd.testing.assert_frame_equal(
        ident, dask.results.drop(columns=IDENTITY_EXCLUDED), check_exact=True
    )
    pd.testing.assert_frame_equal(serial.leaderboard, dask.leaderboard, check_exact=True)
    # and what was written equals what was returned
    on_disk = pd.read_parquet(tmp_path / "local" / "results.parquet").drop(
        columns=IDENTITY_EXCLUDED
    )
    pd.testing.assert_frame_equal(ident, on_disk, check_exact=True, check_dtype=False)


def test_forked_and_spawned_local_workers_agree(write_experiment, tmp_path, monkeypatch):
    """The local pool forks warm workers (the backend preloaded); a fresh interpreter per worker
    (SHOCKLAB_POOL_START=spawn) gives the same records."""
    exp = load_experiment(write_experiment(grid=GRID, seeds={"count": 2, "start": 5}))
    forked = _run(exp, tmp_path / "fork", executor="local", workers=2)
    monkeypatch.setenv("SHOCKLAB_POOL_START", "spawn")
    spawned = _run(exp, tmp_path / "spawn", executor="local", workers=2)
    assert (forked.results["status"] == "ok").all() and len(forked.results) == 12
    pd.testing.assert_frame_equal(forked.results.drop(columns=IDENTITY_EXCLUDED),
                                  spawned.results.drop(columns=IDENTITY_EXCLUDED),
                                  check_exact=True)


def test_cache_hit_skips_generation(write_experiment, tmp_path):
    # 3 thresholds (analysis only) x 2 seeds share 2 worlds
    exp = load_experiment(
        write_experiment(grid={"analysis.threshold": [2.0, 3.0, 4.0]}, seeds=[1, 2])
    )
    cache = tmp_path / "worlds"
    first = _run(exp, tmp_path / "a", executor="serial", cache_dir=cache)
    assert count_lines(cache / "generate_calls.log") == 2
    assert int(first.results["cache_hit"].sum()) == 4
    second = _run(exp, tmp_path / "b", executor="serial", cache_dir=cache)
    assert count_lines(cache / "generate_calls.log") == 2
    assert second.results["cache_hit"].all()


def test_resume_after_interrupt_reruns_only_unfinished_cells(write_experiment, tmp_path):
    calls = tmp_path / "analyse_calls.log"
    exp = load_experiment(write_experiment(seeds=[1, 2, 3], analysis_overrides={"log": str(calls)},
                                           grid={"analysis.threshold": [2.0, 3.0]}))
    _, tasks = plan(exp, tmp_path / "w")
    order = [t.seed for t in tasks]  # serial runs cells in plan order; seed 2 interrupts
    with pytest.raises(KeyboardInterrupt):
        _run(exp, tmp_path / "out", executor="serial", cell_fn=interrupting_cell)
    done_before = order.index(2)
    assert count_lines(calls) == done_before
    assert len(list((tmp_path / "out" / "cells").glob("*.json"))) == done_before
    outcome = _run(exp, tmp_path / "out", executor="serial")
    assert count_lines(calls) == len(tasks)  # each cell analysed exactly once over both runs
    assert (outcome.results["status"] == "ok").all() and len(outcome.results) == len(tasks)
    fresh = _run(exp, tmp_path / "fresh", executor="serial")
    pd.testing.assert_frame_equal(outcome.results.drop(columns=IDENTITY_EXCLUDED),
                                  fresh.results.drop(columns=IDENTITY_EXCLUDED), check_exact=True)


def test_failing_cell_is_recorded_and_retried(write_experiment, tmp_path):
    exp = load_experiment(write_experiment(seeds=[1, 2, 3], analysis_overrides={"fail_seed": 2}))
    out = _run(exp, tmp_path / "out", executor="local", workers=2)
    res = out.results.set_index("seed")
    assert res.loc[2, "status"] == "error"
    assert res.loc[2, "error"] == "ValueError: detector exploded on seed 2"
    assert (res.loc[[1, 3], "status"] == "ok").all()
    assert out.leaderboard.loc[0, "n_failed"] == 1 and out.leaderboard.loc[0, "n_seeds"] == 2
    # the rerun retries the failed cell only; it fails the same way
    calls = tmp_path / "calls.log"
    again = _run(
        load_experiment(write_experiment(seeds=[1, 2, 3], analysis_overrides={"fail_seed": 2})),
        tmp_path / "out",
        executor="serial",
        cell_fn=partial(fake_cell, analyse=partial(_counting_analyse, calls)),
    )
    assert count_lines(calls) == 1
    assert (again.results["status"] == ["ok", "error", "ok"]).all()


def _reading_analyse(data_dir, analysis):
    """fake_analyse that reports an unreadable world as the real loader does (InputError)."""
    import json

    from tests.experiments.exp_fakes import fake_analyse

    from shocklab.errors import InputError

    try:
        json.loads((Path(data_dir) / "world.json").read_text())
    except ValueError:
        raise InputError(f"{data_dir}/world.json: cannot read") from None
    return fake_analyse(data_dir, analysis)


def test_a_cached_world_that_no_longer_reads_is_generated_again(write_experiment, tmp_path):
    """A cached world cut short or edited after it was written was trusted by every later cell:
    each failed on it, run after run (a shared --cache-dir is never cleared by --fresh)."""
    exp = load_experiment(write_experiment(seeds=[1, 2]))
    cache = tmp_path / "worlds"
    cell = partial(fake_cell, analyse=_reading_analyse)
    first = _run(exp, tmp_path / "a", executor="serial", cache_dir=cache, cell_fn=cell)
    worlds = sorted(p for p in cache.iterdir() if p.is_dir())
    assert len(worlds) == 2 and count_lines(cache / "generate_calls.log") == 2
    (worlds[0] / "world.json").write_text('{"seed": 1, "no')   # cut short
    again = _run(exp, tmp_path / "b", executor="serial", cache_dir=cache, cell_fn=cell)
    assert (again.results["status"] == "ok").all()
    assert count_lines(cache / "generate_calls.log") == 3       # that world once more, only
    assert sorted(again.results["cache_hit"]) == [False, True]
    assert sorted(p.name for p in cache.iterdir()) == [p.name for p in worlds] + [
        "generate_calls.log"]
    pd.testing.assert_frame_equal(first.results.drop(columns=IDENTITY_EXCLUDED),
                                  again.results.drop(columns=IDENTITY_EXCLUDED), check_exact=True)


def _counting_analyse(log: Path, data_dir, analysis):
    from tests.experiments.exp_fakes import _log, fake_analyse

    _log(log, "x")
    return fake_analyse(data_dir, analysis)


def test_dask_executor_uses_an_existing_scheduler(write_experiment, tmp_path):
    from distributed import LocalCluster

    exp = load_experiment(write_experiment(grid={"analysis.threshold": [2.0, 4.0]}, seeds=[1, 2]))
    serial = _run(exp, tmp_path / "serial", executor="serial")
    with LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        remote = _run(
            exp, tmp_path / "remote", executor="dask", scheduler=cluster.scheduler_address
        )
    pd.testing.assert_frame_equal(serial.results.drop(columns=IDENTITY_EXCLUDED),
                                  remote.results.drop(columns=IDENTITY_EXCLUDED), check_exact=True)


def test_fresh_reruns_every_cell(write_experiment, tmp_path):
    calls = tmp_path / "calls.log"
    exp = load_experiment(write_experiment(seeds=[1, 2], analysis_overrides={"log": str(calls)}))
    _run(exp, tmp_path / "out", executor="serial")
    _run(exp, tmp_path / "out", executor="serial")
    assert count_lines(calls) == 2  # resumed: nothing ran the second time
    _run(exp, tmp_path / "out", executor="serial", fresh=True)
    assert count_lines(calls) == 4
    # regenerated: the fake generator's log is no world, so --fresh keeps it (2 + 2 lines)
    assert count_lines(tmp_path / "out" / "worlds" / "generate_calls.log") == 4


def test_a_rerun_after_a_change_of_code_runs_every_cell_again(write_experiment, tmp_path,
                                                              monkeypatch):
    """Resume trusted a finished cell of the same configs whatever code computed it: CI on a kept
    workspace judged the earlier commit's cells. The cell's config hash holds the fingerprint of
    the source (shocklab.hashing.code_fingerprint), so other code runs every cell again."""
    import experiments.runner as runner

    calls = tmp_path / "calls.log"
    exp = load_experiment(write_experiment(seeds=[1, 2], analysis_overrides={"log": str(calls)}))
    _run(exp, tmp_path / "out", executor="serial")
    _run(exp, tmp_path / "out", executor="serial")
    assert count_lines(calls) == 2   # the same code: resumed
    monkeypatch.setattr(runner, "code_fingerprint", lambda *pkgs: "other code")
    out = _run(exp, tmp_path / "out", executor="serial")
    assert count_lines(calls) == 4 and (out.results["status"] == "ok").all()


def test_more_workers_than_cells_start_only_as_many_processes_as_cells(write_experiment, tmp_path,
                                                                      pool_sizes, caplog):
    """`--workers 100000` on the 3-cell CI gate forked thousands of processes (a forking
    ProcessPoolExecutor starts all its workers at the first submit) and brought the machine to a
    load of 500. Workers beyond the cells left to run do nothing: the pool gets at most that."""
    import logging

    exp = load_experiment(write_experiment())           # 1 setting × 3 seeds
    with caplog.at_level(logging.INFO, logger="shocklab.experiments"):
        out = _run(exp, tmp_path / "out", executor="local", workers=12)  # not 100000 in a test
    assert (out.results["status"] == "ok").all() and len(out.results) == 3
    assert pool_sizes == [3]
    assert "3 cells (local, 3 workers)" in caplog.text


def test_a_rerun_without_a_gate_or_split_drops_the_earlier_runs_verdict_and_tables(
    write_experiment, tmp_path
):
    """A resumed directory kept the optional files of its earlier run: a failed gate.json stayed
    beside a rerun without a gate (exit 0), and the dashboard and API read it as the verdict;
    summary.csv / leaderboard_train.csv stayed after the split was removed."""
    out = tmp_path / "out"
    path = write_experiment(split={"train": [1, 2], "test": [3]})
    doc = yaml.safe_load(path.read_text())
    del doc["seeds"]  # split: replaces seeds:
    path.write_text(yaml.safe_dump(doc))
    split = load_experiment(path)
    first = _run(split, out, executor="serial", checks=[("consensus.recall", ">=", 2.0)])
    assert not all(r.passed for r in first.gate)
    assert {p.name for p in out.iterdir()} >= {"gate.json", "summary.csv", "leaderboard_train.csv"}

    plain = load_experiment(write_experiment("plain.yaml", seeds=[1, 2, 3]))
    again = _run(plain, out, executor="serial")
    assert again.gate == []
    names = {p.name for p in out.iterdir()}
    assert not names & {"gate.json", "summary.csv", "leaderboard_train.csv"}, names
    assert {"results.parquet", "leaderboard.csv", "experiment.json", "cells"} <= names


def test_the_same_number_written_twice_is_one_setting(write_experiment):
    """``[3, 3.0, 3]`` gave two settings ('threshold=3' and 'threshold=3.0'): the same config run
    twice over every seed, and two leaderboard rows for it."""
    settings = grid_settings(load_experiment(write_experiment(
        grid={"analysis.threshold": [3, 3.0, 3, 4.0, 4]},
        settings=[{"analysis.fail_seed": 1}, {"analysis.fail_seed": 1.0}])).config)
    assert [s.params["analysis.threshold"] for s in settings] == [3, 4.0]
    assert [s.params["analysis.fail_seed"] for s in settings] == [1, 1]
    assert grid_settings(load_experiment(write_experiment(
        "b.yaml", grid={"analysis.threshold": [True, 1]})).config).__len__() == 2  # not numbers


def test_fresh_does_not_delete_through_a_worlds_link_to_a_shared_cache(write_experiment,
                                                                       tmp_path):
    """<out>/worlds linked to a shared cache (a folder the user keeps elsewhere): --fresh hit
    'Cannot call rmtree on a symbolic link', exit 3. The linked cache is shared, like
    --cache-dir: it is not cleared; the cells are rerun."""
    calls = tmp_path / "calls.log"
    exp = load_experiment(write_experiment(seeds=[1, 2], analysis_overrides={"log": str(calls)}))
    shared = tmp_path / "shared"
    _run(exp, tmp_path / "first", executor="serial", cache_dir=shared)
    (shared / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / "worlds").symlink_to(shared, target_is_directory=True)
    _run(exp, out, executor="serial")
    _run(exp, out, executor="serial", fresh=True)
    assert count_lines(calls) == 6  # 2 + 2 + 2: the fresh run reran both cells
    assert (shared / "keep.txt").read_text() == "mine" and (out / "worlds").is_symlink()
    assert count_lines(shared / "generate_calls.log") == 2  # worlds reused, not regenerated


def test_a_rerun_without_plots_drops_the_earlier_runs_plots(write_experiment, tmp_path):
    """--no-plots into a directory an earlier run drew into left those plots beside the new
    tables, where they passed for this run's."""
    out = tmp_path / "out"
    exp = load_experiment(write_experiment(grid=GRID))
    _run(exp, out, executor="serial", plots=True)
    assert any((out / "plots").iterdir())
    _run(exp, out, executor="serial", plots=False)
    assert not (out / "plots").exists()


def test_an_interrupted_first_run_is_known_as_its_experiments(write_experiment, tmp_path):
    """Before experiment.json exists (a first run stopped after some cells), the directory's
    marker names the experiment: another one is refused — two experiments without overrides
    share cell ids (setting hash + seed), so its records would be overwritten — and the same
    one resumes there."""
    from experiments.experiment import other_experiment
    from shocklab.atomic import check_resumable
    from shocklab.errors import InputError

    out = tmp_path / "out"
    mine = load_experiment(write_experiment(seeds=[1, 2, 3]))
    with pytest.raises(KeyboardInterrupt):
        _run(mine, out, executor="serial", cell_fn=interrupting_cell)
    assert not (out / "experiment.json").exists() and any((out / "cells").iterdir())
    assert check_resumable(out, "experiment", other=other_experiment(mine)) == (out, False)
    path = write_experiment("b.yaml", seeds=[1, 2, 3])
    path.write_text(path.read_text().replace("name: t\n", "name: b\n"))
    theirs = load_experiment(path)
    with pytest.raises(InputError, match=r"holds the experiment 't' \(kind sweep\), not 'b'"):
        check_resumable(out, "experiment", other=other_experiment(theirs))
    assert check_resumable(out, "experiment", other=other_experiment(theirs),
                           force=True) == (out, True)
    assert len(_run(mine, out, executor="serial").results) == 3   # resumed, as before


def test_a_rerun_killed_after_its_results_leaves_no_earlier_verdict(write_experiment, tmp_path,
                                                                    monkeypatch):
    """A rerun killed between writing results.parquet and gate.json left the new results beside
    the earlier run's verdict, which the dashboard and the API read as this run's (audit-cigate
    leftover): the old verdict now goes before any of the new results are written; so does the
    old leaderboard.csv (session 37's audit: a kill between the two files left them of two runs)."""
    import experiments.experiment as experiment

    out = tmp_path / "out"
    first = load_experiment(write_experiment(seeds=[1, 2],
                                             gate={"checks": ["consensus.recall>=0"]}))
    _run(first, out, executor="serial")
    assert (out / "gate.json").is_file()
    stamp = (out / "results.parquet").stat().st_mtime_ns

    def killed(frame, path):   # results.parquet written, then the process dies
        real(frame, path)
        raise KeyboardInterrupt

    real = experiment._write_parquet
    monkeypatch.setattr(experiment, "_write_parquet", killed)
    again = load_experiment(write_experiment(seeds=[1, 2, 3],
                                             gate={"checks": ["consensus.recall>=0.99"]}))
    with pytest.raises(KeyboardInterrupt):
        _run(again, out, executor="serial")
    assert (out / "results.parquet").stat().st_mtime_ns != stamp
    assert len(pd.read_parquet(out / "results.parquet")) == 3
    assert not (out / "gate.json").exists()
    # nor the earlier leaderboard (2 seeds) beside the new results (3): missing, said as missing
    assert not (out / "leaderboard.csv").exists()


def test_a_rerun_removes_the_temporary_files_of_a_killed_run(write_experiment, tmp_path):
    """kill -9 while an experiment wrote one of its files left the hidden temporary file
    (.results.parquet.tmp-PID, .leaderboard.csv.XXXXXXXX, cells/.ID.json.XXXXXXXX) for good
    (audit-crash leftover); the next run into the directory removes them, and nothing else."""
    exp = load_experiment(write_experiment(seeds=[1, 2]))
    out = tmp_path / "out"
    _run(exp, out, executor="serial")
    cell = sorted((out / "cells").glob("*.json"))[0].name
    stale = [out / ".results.parquet.tmp-4242", out / ".leaderboard.csv.k2j4_x9q",
             out / ".gate.json.a8d0f1zz", out / "cells" / f".{cell}.0q9zt1ab"]
    for p in stale:
        p.write_text("partial")
    (out / ".notes").write_text("mine")
    (out / "cells" / "README").write_text("mine")
    assert len(_run(exp, out, executor="serial").results) == 2
    assert not [p for p in stale if p.exists()]
    assert (out / ".notes").read_text() == (out / "cells" / "README").read_text() == "mine"


def test_a_rerun_with_a_gate_does_not_say_it_dropped_its_verdict(write_experiment, tmp_path,
                                                                 caplog):
    """Every rerun with a gate logged 'removed gate.json of an earlier run (this run does not
    write it)' and then wrote it; a serial run said '(serial, 4 workers)' on a 4-core machine."""
    import logging

    exp = load_experiment(write_experiment(seeds=[1, 2], gate={"checks": ["consensus.recall>=0"]}))
    _run(exp, tmp_path / "out", executor="serial", workers=4)
    with caplog.at_level(logging.INFO, logger="shocklab.experiments"):
        again = _run(exp, tmp_path / "out", executor="serial", workers=4)
    assert again.gate and (tmp_path / "out" / "gate.json").is_file()
    assert "removed gate.json" not in caplog.text
    assert "2 cells (serial, 1 worker)" in caplog.text


@pytest.mark.parametrize("answer", [None, b"SSH-2.0-OpenSSH_9.6\r\n" * 4],
                         ids=["silent", "ssh"])
def test_a_scheduler_address_that_is_not_a_dask_scheduler_is_one_line(
        write_experiment, tmp_path, monkeypatch, answer):
    """--scheduler at a port that accepts and never answers (a web server, the dashboard's 8787)
    hung the run for good: distributed waits for its handshake without a timeout. One that
    answers something else was read as a frame of exabytes: 'error: out of memory'."""
    import socket
    import threading

    import experiments.runner as runner
    from shocklab.errors import InputError

    monkeypatch.setattr(runner, "SCHEDULER_TIMEOUT_S", 0.5)
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer:
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    exp = load_experiment(write_experiment(seeds=[1]))
    try:
        with pytest.raises(InputError) as exc:
            _run(exp, tmp_path / "out", executor="dask", scheduler=address)
    finally:
        server.close()
        for conn in held:
            conn.close()
    text = str(exc.value)
    assert text.startswith(f"--scheduler {address}: ") and "\n" not in text
    assert ("not Dask's protocol" if answer else "no Dask scheduler answered within") in text
    assert not (tmp_path / "out").exists()


def test_two_runs_into_one_directory_at_once_the_second_is_refused(write_experiment, tmp_path):
    """Two experiments started together into one new --out both passed the CLI's check, both
    exit 0: the directory held both runs' cells, one's marker and the other's experiment.json and
    results (the first's rerun was then refused as 'another experiment')."""
    from shocklab.atomic import exclusive_output
    from shocklab.errors import InputError

    out = tmp_path / "out"
    exp = load_experiment(write_experiment(seeds=[1, 2]))
    with exclusive_output(out):   # another run, holding it now
        with pytest.raises(InputError, match="another ShockLab process is writing it now"):
            _run(exp, out, executor="serial")
    assert not out.exists()
    # the other run finished while this one was starting: its experiment is not joined
    other = write_experiment("other.yaml", seeds=[3])
    other.write_text(other.read_text().replace("name: t\n", "name: other\n"))
    _run(load_experiment(other), out, executor="serial")
    before = sorted(p.name for p in (out / "cells").iterdir())
    with pytest.raises(InputError, match=r"holds the experiment 'other' .*written while this run"):
        _run(exp, out, executor="serial")
    assert sorted(p.name for p in (out / "cells").iterdir()) == before
    assert _run(exp, out, executor="serial", replace_other=True).results["status"].eq("ok").all()
    assert (tmp_path / "out.kept-1" / "cells").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_pool_workers_end_with_a_run_killed_with_sigkill(write_experiment, tmp_path):
    """kill -9 of a run (the out-of-memory killer, a CI time limit): its pool workers were left
    blocked for good, holding the --out's write lock, and every rerun into it was exit 2
    ('another ShockLab process is writing it now') until someone found and killed them."""
    import signal
    import subprocess
    import sys

    from shocklab.atomic import exclusive_output

    root = Path(__file__).resolve().parents[2]
    pids, out = tmp_path / "pids", tmp_path / "out"
    pids.mkdir()
    code = ("import os, sys, time\n"
            "from experiments.config import load_experiment\n"
            "from experiments.experiment import run\n"
            "def cell(task):\n"
            "    open(os.path.join(sys.argv[2], str(os.getpid())), 'w').close()\n"
            "    time.sleep(120)\n"
            "run(load_experiment(sys.argv[1]), sys.argv[3], executor='local', workers=2,\n"
            "    cell_fn=cell, progress=False, plots=False)\n")
    exp = write_experiment(seeds=[1, 2])
    p = subprocess.Popen([sys.executable, "-c", code, str(exp), str(pids), str(out)],
                         env={**os.environ, "PYTHONPATH": str(root / "src")})
    workers: list[int] = []
    try:
        workers = started_workers(p, pids)
        assert len(workers) == 2, "the workers did not start"
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        assert all_ended(workers)
        with exclusive_output(out):  # a rerun may write there
            pass
    finally:
        p.kill()
        p.wait(60)
        for w in workers:
            if alive(w):
                os.kill(w, signal.SIGKILL)


@pytest.mark.parametrize("kind, name", [("data", "manifest.json"), ("run", "run.json")])
def test_a_data_set_or_report_written_while_the_run_starts_is_not_written_into(
        write_experiment, tmp_path, kind, name):
    """generate_data.py or run_analysis.py finishing into the --out of an experiment that had
    passed the CLI's check (nothing there yet) and was validating: the experiment took the lock
    and wrote its cells, marker and results into the data set or report, exit 0."""
    from shocklab.atomic import atomic_dir
    from shocklab.errors import InputError

    out = tmp_path / "out"
    with atomic_dir(out, kind=kind) as tmp:
        (tmp / name).write_text("{}")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(InputError, match=r"holds a ShockLab .* directory, written while this run"):
        _run(load_experiment(write_experiment(seeds=[1])), out, executor="serial")
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("how", ["sigterm", "ctrl-c"])
def test_sigterm_stops_the_running_cells_instead_of_waiting_for_them(write_experiment, tmp_path,
                                                                     how):
    """SIGTERM to run_experiment.py (docker stop, systemd, timeout) waited for every running cell
    to finish (minutes on a large world), then dropped their results; and a worker freed by it
    took the next queued cell. Now the workers are stopped: each cell cleans up on its way out
    (its temporary directory here), no further cell starts, exit 143. Ctrl-C (SIGINT to the
    whole process group): exit 130, the same clean-up."""
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    pids, out, tmp = tmp_path / "pids", tmp_path / "out", tmp_path / "tmp"
    pids.mkdir()
    tmp.mkdir()
    # SIGINT back to Python's own handler: a shell that starts a job in the background without
    # job control (`cmd &` in a script) ignores SIGINT for it, the ignore is inherited, and
    # the run then never saw the Ctrl-C (the fresh-clone CI run with `&`, 2026-12-03)
    code = ("import os, signal, sys, tempfile, time\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from experiments.config import load_experiment\n"
            "from experiments.experiment import run\n"
            "from shocklab.cli import run_cli\n"
            "def cell(task):\n"
            "    with tempfile.TemporaryDirectory():\n"
            "        open(os.path.join(sys.argv[2], str(os.getpid())), 'w').close()\n"
            "        while True:\n"
            "            time.sleep(0.05)\n"
            "def main(argv):\n"
            "    run(load_experiment(argv[0]), argv[2], executor='local', workers=2,\n"
            "        cell_fn=cell, progress=False, plots=False)\n"
            "sys.exit(run_cli(main, sys.argv[1:]))\n")
    exp = write_experiment(seeds=[1, 2, 3])
    p = subprocess.Popen([sys.executable, "-c", code, str(exp), str(pids), str(out)],
                         env={**os.environ, "PYTHONPATH": str(root / "src"), "TMPDIR": str(tmp),
                              "SHOCKLAB_LOG_DIR": "", "PYTHONFAULTHANDLER": "1"},
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    workers: list[int] = []
    try:
        workers = started_workers(p, pids)
        assert len(workers) == 2, "the workers did not start"
        if how == "sigterm":
            p.send_signal(signal.SIGTERM)
        else:
            os.killpg(p.pid, signal.SIGINT)
        try:  # a bound on waiting: the cells never end by themselves
            _, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            # a hang: every process's threads dumped by faulthandler on SIGABRT (how the
            # ignored SIGINT above was found: the run still waiting in as_completed)
            os.killpg(p.pid, signal.SIGABRT)
            _, err = p.communicate(timeout=30)
            pytest.fail(f"no exit within 120 s of the signal; the stacks:\n{err[-12000:]}")
        assert (p.returncode, err.strip().splitlines()[-1]) == (
            (143, "terminated (SIGTERM); outputs written atomically were left as they were")
            if how == "sigterm" else (130, "interrupted")), err
        assert "Traceback" not in err, err
        assert all_ended(workers)
        if how == "sigterm":  # (Ctrl-C: a worker may take the next cell before it is stopped)
            assert len(list(pids.iterdir())) == 2   # the third cell never started
        assert list(tmp.iterdir()) == []        # each cell's temporary directory removed
    finally:
        p.kill()
        p.wait(60)
        for w in [int(f.name) for f in pids.iterdir()]:
            if alive(w):
                os.kill(w, signal.SIGKILL)


def test_an_experiment_whose_every_cell_failed_is_not_a_success(write_experiment, tmp_path,
                                                                 monkeypatch, capsys):
    """A full disk (or any error in every cell) ended '1 cells, 0 ok, 1 failed' with exit 0: a CI
    job without a gate read it as a success. Now exit 3 naming the first error (2 when it is the
    environment's: disk full, out of memory); a run with one cell ok stays exit 0."""
    from run_experiment import main

    import experiments.experiment as experiment
    from shocklab.cli import run_cli

    monkeypatch.setattr(experiment, "run", partial(experiment.run, cell_fn=fake_cell))
    args = ["--executor", "serial", "--no-progress", "--no-plots"]
    bad = write_experiment("bad.yaml", seeds=[1], analysis_overrides={"fail_seed": 1})
    assert run_cli(main, ["--config", str(bad), "--out", str(tmp_path / "bad"), *args]) == 3
    err = capsys.readouterr().err
    assert "every cell failed (1)" in err and "detector exploded on seed 1" in err
    assert (tmp_path / "bad" / "results.parquet").is_file()   # the errors are kept
    some = write_experiment("some.yaml", seeds=[1, 2], analysis_overrides={"fail_seed": 1})
    assert run_cli(main, ["--config", str(some), "--out", str(tmp_path / "some"), *args]) == 0
    # a full disk in every cell is the environment's: exit 2, as in the main process
    disk = write_experiment("disk.yaml", seeds=[1], analysis_overrides={"full_disk_seed": 1})
    capsys.readouterr()
    assert run_cli(main, ["--config", str(disk), "--out", str(tmp_path / "disk"), *args]) == 2
    assert "[Errno 28] No space left on device" in capsys.readouterr().err
    # bad input in every cell is bad input: a valid scenario whose worlds have no order (a
    # store of 1 session a day) was exit 3, an internal error (edge-worlds audit)
    empty = write_experiment("empty.yaml", seeds=[1, 2],
                             analysis_overrides={"empty_seed": 1, "fail_seed": 2})
    assert run_cli(main, ["--config", str(empty), "--out", str(tmp_path / "empty"), *args]) == 3
    capsys.readouterr()
    empty = write_experiment("empty2.yaml", seeds=[1], analysis_overrides={"empty_seed": 1})
    assert run_cli(main, ["--config", str(empty), "--out", str(tmp_path / "empty2"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "every cell failed (1)" in err
    assert "InputError: " in err and "orders.parquet: table is empty" in err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_worker_stopped_while_its_cell_handles_an_error_takes_no_next_cell(tmp_path):
    """SIGTERM landing in a cell's except block only set the stop flag; the cell then returned
    normally, the flag was read on the error path only, and the worker ran the next queued cell
    to its end while the parent waited (review finding)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from tests.experiments.exp_fakes import slow_in_except_cell

    from experiments import runner

    pool = ProcessPoolExecutor(1, initializer=runner._start_worker, initargs=(os.getpid(),),
                               mp_context=multiprocessing.get_context("fork"))
    cell = partial(slow_in_except_cell, tmp_path)
    for i in range(3):
        pool.submit(runner._cell, cell, i)
    import time

    time.sleep(0.5)   # the first cell is in its except block
    runner._stop_workers(pool)
    pool.shutdown(wait=True, cancel_futures=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
