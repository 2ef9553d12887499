"""The guards of ``shocklab.atomic`` that decide what an output may replace, in-process: which
existing directories count as ShockLab's (README "Reliability": only ShockLab outputs are
replaced; an empty directory loses nothing), and which output paths are refused before any work.
Each test here failed against a hand-made mutant of the guard it names (audit-mutcli)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil

import pytest

from shocklab import atomic
from shocklab.atomic import (
    MARKER,
    _target_lock,
    atomic_dir,
    claim_dir,
    is_shocklab_output,
    lock_timeout,
    output_kind,
    read_marker,
    recover,
    validate_out,
)
from shocklab.errors import InputError


def test_an_empty_existing_directory_is_written_without_force(tmp_path):
    """``mkdir out && generate_data.py --out out``: nothing of the user's can be lost."""
    out = tmp_path / "out"
    out.mkdir()
    assert is_shocklab_output(out)
    validate_out(out, kind="data")           # no --force needed
    with atomic_dir(out, kind="data") as tmp:
        (tmp / "a.txt").write_text("x")
    assert (out / "a.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]   # nothing moved aside


@pytest.mark.parametrize("name, key, value, ours", [
    ("manifest.json", "generator", "shocklab 0.1.0", True),
    ("run.json", "schema", "shocklab.run/1", True),
    ("manifest.json", "generator", "some-other-tool", False),
    ("run.json", "schema", "mlflow", False),
])
def test_a_legacy_output_is_recognised_by_its_generator_not_by_its_file_name(
        tmp_path, name, key, value, ours):
    """A directory written before markers existed is ShockLab's by its manifest/run.json saying
    so, and holding only what ShockLab writes there; another tool's manifest.json in a user's
    folder is not (it would be replaced), nor is ShockLab's copied among a user's files."""
    d = tmp_path / "d"
    d.mkdir()
    (d / name).write_text(json.dumps({key: value}))
    (d / ("orders.csv" if name == "manifest.json" else "kpis_daily.csv")).write_text("x\n")
    assert is_shocklab_output(d) is ours
    (d / "notes.txt").write_text("mine")
    assert not is_shocklab_output(d)
    with pytest.raises(InputError, match="not a ShockLab output"):
        validate_out(d)


def test_an_ancestor_of_the_current_directory_is_refused_as_out(tmp_path, monkeypatch):
    """``--out ..`` would replace the directory the user is working in (and everything in it)."""
    work = tmp_path / "proj" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for out in ("..", str(tmp_path / "proj")):
        with pytest.raises(InputError, match="current directory or contains it"):
            validate_out(out)


def test_an_out_that_contains_an_input_is_refused(tmp_path):
    """Replacing ``--out`` would delete the input inside it (``--out . --data ./data`` from
    elsewhere, ``--out store --kpis store/metrics.csv``)."""
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "metrics.csv").write_text("date,x\n")
    with pytest.raises(InputError, match="contains the input"):
        validate_out(tmp_path / "store", [tmp_path / "store" / "metrics.csv"])
    with pytest.raises(InputError, match="is inside the input"):
        validate_out(tmp_path / "store" / "run", [tmp_path / "store"])


def test_an_output_of_another_kind_is_refused_before_the_work_without_force(tmp_path):
    """The CLIs pass ``force=args.force`` explicitly: False must still check the kind up front
    (a data set under a report's name was refused only at the final swap, after the work)."""
    run = tmp_path / "r"
    with atomic_dir(run, kind="run") as tmp:
        (tmp / "run.json").write_text("{}")
    with pytest.raises(InputError, match="is a ShockLab run directory"):
        validate_out(run, force=False, kind="data")
    validate_out(run, force=True, kind="data")      # --force: moved aside later, not refused


@pytest.mark.parametrize("raw, expect", [("-5", 0.0), ("2.5", 2.5), ("0", 0.0)])
def test_lock_timeout_is_seconds_and_never_negative(monkeypatch, raw, expect):
    monkeypatch.setenv("SHOCKLAB_LOCK_TIMEOUT", raw)
    assert lock_timeout() == expect


@pytest.mark.parametrize("raw", ["soon", "nan", "NaN"])
def test_a_lock_timeout_that_is_no_number_is_bad_input_not_a_wait_for_ever(monkeypatch, raw):
    monkeypatch.setenv("SHOCKLAB_LOCK_TIMEOUT", raw)
    with pytest.raises(InputError, match="SHOCKLAB_LOCK_TIMEOUT: expected a number"):
        lock_timeout()


def test_a_lock_timeout_of_0_gives_up_at_once(tmp_path, monkeypatch):
    """``SHOCKLAB_LOCK_TIMEOUT=0``: a held output is refused on the first try, with no wait."""
    lock = tmp_path / ".out.writelock"
    with open(lock, "a+b") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)   # another writer holds it
        naps = []

        def sleep(s):
            naps.append(s)
            if len(naps) > 3:
                raise AssertionError("waited on a lock with SHOCKLAB_LOCK_TIMEOUT=0")

        monkeypatch.setattr(atomic.time, "sleep", sleep)
        monkeypatch.setenv("SHOCKLAB_LOCK_TIMEOUT", "0")
        with pytest.raises(InputError, match="still writing it after 0 s"), \
                _target_lock(tmp_path, "out"):
            pass
        assert naps == []


def test_a_lock_file_deleted_by_its_previous_holder_is_not_taken_as_the_lock(tmp_path,
                                                                              monkeypatch):
    """The holder deletes the lock file before releasing it: a waiter that opened the file
    before and locks it then holds a lock nobody else sees (a third writer creates a new file
    and locks that); it must start over on the file that is there."""
    path = tmp_path / ".out.writelock"
    real = fcntl.flock
    calls = []

    def flock(fd, op):
        calls.append(op)
        if len(calls) == 1:
            path.unlink()          # the previous holder's release, between our open and flock
        return real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with _target_lock(tmp_path, "out"):
        assert path.exists()       # the lock held is the file a third writer would open
        other = open(path, "a+b")  # noqa: SIM115
        try:
            with pytest.raises(BlockingIOError):
                real(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            other.close()
    assert not path.exists()


def test_recover_puts_back_the_newest_set_aside_version(tmp_path):
    """Two killed runs each left a set-aside copy: the newest is the last complete version."""
    target = tmp_path / "out"
    for name, text, mtime in ((".out.old-111", "older", 1_000_000), (".out.old-222", "newer",
                                                                     2_000_000)):
        d = tmp_path / name
        d.mkdir()
        (d / "a.txt").write_text(text)
        os.utime(d, (mtime, mtime))
    assert recover(target) is True
    assert (target / "a.txt").read_text() == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_failed_single_file_write_leaves_the_old_file_and_no_temporary(tmp_path,
                                                                          monkeypatch):
    """``atomic_write_text`` (markers, the monitor's state files): a write that fails at the
    rename keeps the previous file whole and removes its ``.<name>.*`` temporary."""
    target = tmp_path / "state.json"
    atomic.atomic_write_text(target, "old\n")

    def broken(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="No space"):
        atomic.atomic_write_text(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_claim_dir_marks_a_new_output_once_with_its_kind_and_owner(tmp_path):
    """An experiment's directory, written in place, is claimed with a marker naming its kind
    and owner before its first cell (a run killed then is resumed, and recognised); a rerun's
    claim does not rewrite the owner."""
    out = tmp_path / "exp"
    claim_dir(out, "experiment", owner={"name": "a"})
    meta = read_marker(out)
    assert meta["kind"] == "experiment" and meta["owner"] == {"name": "a"}
    assert output_kind(out) == "experiment"
    claim_dir(out, "experiment", owner={"name": "b"})
    assert read_marker(out)["owner"] == {"name": "a"}


def test_a_first_experiment_stopped_in_its_first_world_is_an_experiment(tmp_path):
    """worlds/ and a marker (even one without a kind) and nothing else: an experiment's
    directory stopped while generating its first world."""
    out = tmp_path / "exp"
    (out / "worlds").mkdir(parents=True)
    (out / MARKER).write_text(json.dumps({"shocklab_output": True}))
    assert output_kind(out) == "experiment"
    (out / "notes.txt").write_text("x")           # something else too: not recognisable
    assert output_kind(out) is None


def test_an_unwritable_output_location_is_bad_input(tmp_path, monkeypatch):
    """A parent the user cannot write (as root every directory is writable, so the permission
    answer is stood in): one line naming it, before any work."""
    monkeypatch.setattr(atomic.os, "access", lambda p, mode: not mode & os.W_OK)
    with pytest.raises(InputError, match="output location is not writable"):
        validate_out(tmp_path / "new" / "out")


def test_a_copy_half_deleted_by_a_kill_is_never_restored(tmp_path, monkeypatch):
    """After the swap the replaced version is deleted; a kill in the middle of that left a copy
    missing files under its ``.old-`` name, and a later run — the output removed meanwhile —
    restored it as the output (audit 2026-12-05: 36 of 37 files, a run directory that looked
    complete). It is renamed out of the restorable names first."""
    target = tmp_path / "out"
    for version in ("first", "second"):
        with atomic.atomic_dir(target) as d:
            (d / "a.txt").write_text(version)
            (d / "b.txt").write_text(version)
    real = atomic._remove

    def killed(path):   # SIGINT after the first file of the replaced copy went
        if path.is_dir() and (path / "a.txt").exists():
            (path / "a.txt").unlink()
            raise KeyboardInterrupt
        real(path)

    monkeypatch.setattr(atomic, "_remove", killed)
    with pytest.raises(KeyboardInterrupt), atomic.atomic_dir(target) as d:
        (d / "a.txt").write_text("third")
        (d / "b.txt").write_text("third")
    monkeypatch.setattr(atomic, "_remove", real)
    assert (target / "a.txt").read_text() == "third"       # the swap had committed
    left = [p.name for p in tmp_path.iterdir() if p.name != "out"]
    assert left and not any(".old-" in n for n in left), left
    shutil.rmtree(target)                                    # a user's clean-up
    assert recover(target) is False and not target.exists()  # nothing half-deleted comes back
    assert list(tmp_path.iterdir()) == []                    # and the leftover is removed


def test_a_rerun_keeps_a_users_file_put_in_the_earlier_output(tmp_path, caplog):
    """A user's notes put in a run directory were deleted with it by the next run of the same
    output (audit56 O2): that earlier output is now moved whole to ``<name>.kept-N`` with a
    warning naming the file; an output holding only its own files is replaced as before."""
    out = tmp_path / "run"
    for _ in range(2):   # written, then replaced: nothing kept aside
        with atomic_dir(out, kind="run") as tmp:
            (tmp / "run.json").write_text("{}")
            (tmp / "detections.csv").write_text("a\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    (out / "notes.txt").write_text("mine")
    with caplog.at_level("WARNING", logger="shocklab.atomic"), atomic_dir(out, kind="run") as tmp:
        (tmp / "run.json").write_text('{"new": 1}')
        (tmp / "extra_output.csv").write_text("b\n")   # a file of the new run's is its own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run.kept-1"]
    assert (tmp_path / "run.kept-1" / "notes.txt").read_text() == "mine"
    assert (out / "run.json").read_text() == '{"new": 1}' and not (out / "notes.txt").exists()
    assert any("held files it does not write (notes.txt)" in r.getMessage()
               and "run.kept-1" in r.getMessage() for r in caplog.records), caplog.text
