"""Output safety: the marker, refusing foreign directories, --out validation, the per-target lock,
and the swap under fault injection (a rename that fails, a crash between the two renames)."""

from __future__ import annotations

import errno
import os
import threading

import pytest
from tests.robustness.conftest import write_yaml
from tests.simulation.simtools import tiny_config

import shocklab.atomic as atomic
from shocklab.atomic import MARKER, atomic_dir, is_shocklab_output, recover
from shocklab.errors import InputError


def _write(target, text):
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text(text)


def _siblings(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def test_outputs_carry_the_marker_and_a_normal_mode(tmp_path):
    target = tmp_path / "out"
    _write(target, "one")
    assert (target / MARKER).is_file() and is_shocklab_output(target)
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's 0700
    assert _siblings(target) == []  # no lock, temp or set-aside debris


def test_a_foreign_directory_is_refused_unless_forced(tmp_path, cli):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    r = cli("generate", "--config", cfg, "--out", thesis, "--quiet")
    assert r.returncode == 2 and "is not a ShockLab output" in r.stderr and "--force" in r.stderr
    assert (thesis / "chapter1.tex").read_text() == "years of work"
    with pytest.raises(InputError, match="not a ShockLab output"), atomic_dir(thesis):
        pass
    # an analysis must not replace it either, and fails before doing any work
    r = cli("analysis", "--data", tmp_path / "nodata", "--out", thesis)
    assert r.returncode == 2 and "not a ShockLab output" in r.stderr
    with atomic.allow_replace(True), atomic_dir(thesis) as tmp:  # what --force does
        (tmp / "x").write_text("new")
    assert sorted(p.name for p in thesis.iterdir()) == [MARKER, "x"]
    # ... and the user's files are moved aside, not deleted (--force used to delete them)
    assert (tmp_path / "thesis.kept-1" / "chapter1.tex").read_text() == "years of work"


def test_force_over_a_users_folder_keeps_its_files_aside(tmp_path, cli):
    """generate_data.py --force over a folder ShockLab did not write deleted every file in it;
    they are now moved to <name>.kept-N (a new N each time), with one warning naming it."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "notes.txt").write_text("mine")
    (docs / "sub" / "deep.txt").write_text("also mine")
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    r = cli("generate", "--config", cfg, "--out", docs, "--force", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (docs / "manifest.json").is_file()
    kept = tmp_path / "docs.kept-1"
    assert (kept / "notes.txt").read_text() == "mine"
    assert (kept / "sub" / "deep.txt").read_text() == "also mine"
    assert "docs.kept-1" in r.stderr and r.stderr.count("\n") == 1
    # a ShockLab output is replaced as before: the second --force keeps nothing new aside
    r = cli("generate", "--config", cfg, "--out", docs, "--force", "--quiet")
    assert r.returncode == 0 and not (tmp_path / "docs.kept-2").exists()
    (tmp_path / "docs2").mkdir()
    (tmp_path / "docs2" / "a.txt").write_text("x")
    (tmp_path / "docs2.kept-1").mkdir()  # taken: the next free number is used
    r = cli("generate", "--config", cfg, "--out", tmp_path / "docs2", "--force", "--quiet")
    assert r.returncode == 0 and (tmp_path / "docs2.kept-2" / "a.txt").read_text() == "x"


@pytest.mark.parametrize("out", ["", "/", "."])
def test_out_must_not_be_empty_root_or_the_current_directory(tmp_path, cli, out):
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    before = sorted(p.name for p in tmp_path.iterdir())
    r = cli("generate", "--config", cfg, "--out", out, "--quiet")
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written in '.'


def test_out_inside_or_around_the_input_is_refused(fresh_world, cli):
    for out in (fresh_world / "run", fresh_world, fresh_world.parent):
        r = cli("analysis", "--data", fresh_world, "--out", out)
        assert r.returncode == 2 and (
            "inside the input" in r.stderr
            or "contains the input" in r.stderr
            or "current directory" in r.stderr
        ), r.stderr
    assert not (fresh_world / "run").exists()


def test_a_failing_second_rename_restores_the_previous_version(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _write(target, "old")
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # target already set aside, the new one cannot move in
            raise OSError(errno.EIO, "injected I/O error")
        os.replace(src, dst)

    monkeypatch.setattr(atomic, "_rename", flaky)
    with pytest.raises(OSError, match="injected"):
        _write(target, "new")
    assert (target / "a.txt").read_text() == "old"
    assert _siblings(target) == []


class Crash(BaseException):
    """The process dying between the two renames (kill -9): no except/finally of ours runs."""


def test_a_crash_between_the_renames_is_repaired_by_the_next_run(tmp_path, monkeypatch):
    target = tmp_path / "out"
    _write(target, "old")
    calls = []

    def dies(src, dst):
        calls.append(1)
        if len(calls) == 2:
            raise Crash
        os.replace(src, dst)

    monkeypatch.setattr(atomic, "_rename", dies)
    with pytest.raises(Crash):
        _write(target, "new")
    monkeypatch.setattr(atomic, "_rename", os.replace)
    assert not target.exists()  # what a kill -9 at that instant leaves: the old copy set aside
    (tmp_path / f".out.tmp-{'x' * 8}").mkdir()  # and a temp dir of an earlier killed run
    assert any(n.startswith(".out.old-") for n in _siblings(target))

    assert recover(target) is True  # what every writer does first, under the lock
    assert (target / "a.txt").read_text() == "old"
    assert _siblings(target) == []
    _write(target, "new")
    assert (target / "a.txt").read_text() == "new"


def test_a_second_writer_waits_for_the_lock_then_gives_up_cleanly(tmp_path, monkeypatch):
    target = tmp_path / "out"
    inside, release = threading.Event(), threading.Event()

    def holder():
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("first")
            inside.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert inside.wait(10)
    monkeypatch.setenv("SHOCKLAB_LOCK_TIMEOUT", "0.3")
    with pytest.raises(InputError, match="another ShockLab process is still writing"):
        _write(target, "second")
    release.set()
    t.join(10)
    assert (target / "a.txt").read_text() == "first"
    monkeypatch.setenv("SHOCKLAB_LOCK_TIMEOUT", "5")
    _write(target, "second")  # the lock is free again
    assert (target / "a.txt").read_text() == "second" and _siblings(target) == []


def test_disk_full_during_generation_exits_2_and_keeps_the_earlier_output(
    tmp_path, cli, monkeypatch
):
    import simulation.io as sio

    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    out = tmp_path / "d"
    assert cli("generate", "--config", cfg, "--out", out, "--quiet").returncode == 0
    before = (out / "manifest.json").read_bytes()
    real = sio._write_table
    n = []

    def full(df, stem, fmt, *rest):   # rest: truth/baseline_daily's float format
        n.append(1)
        if len(n) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(stem))
        return real(df, stem, fmt, *rest)

    monkeypatch.setattr(sio, "_write_table", full)
    r = cli("generate", "--config", cfg, "--out", out, "--seed", "99", "--quiet")
    assert r.returncode == 2 and "no space left on device" in r.stderr, r.stderr
    assert (out / "manifest.json").read_bytes() == before
    assert _siblings(out) == []


def test_a_failed_write_into_a_new_nested_path_leaves_no_empty_directories(
    tmp_path, cli, monkeypatch
):
    """'--out runs/2026/december/d' on a full disk: exit 2 and no half-written output, but the
    empty runs/2026/december it had created stayed (audit-crash leftover). A directory that was
    there before, or that holds something else now, stays."""
    import simulation.io as sio

    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())

    def full(df, stem, fmt, *rest):
        raise OSError(errno.ENOSPC, "No space left on device", str(stem))

    monkeypatch.setattr(sio, "_write_table", full)
    r = cli("generate", "--config", cfg, "--out", tmp_path / "runs/2026/december/d", "--quiet")
    assert r.returncode == 2 and "no space left on device" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]
    (tmp_path / "runs/2026").mkdir(parents=True)
    (tmp_path / "runs/2026/notes.txt").write_text("mine")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "runs/2026/a/b/out"):
        raise RuntimeError("failed")
    assert sorted(p.name for p in (tmp_path / "runs/2026").iterdir()) == ["notes.txt"]
    with pytest.raises(TypeError):   # the write itself fails
        atomic.atomic_write_text(tmp_path / "runs/x/y/f.json", None)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["2026"]
    with atomic_dir(tmp_path / "runs/2026/a/out") as tmp:   # success keeps what it made
        (tmp / "f").write_text("x")
    assert (tmp_path / "runs/2026/a/out/f").read_text() == "x"


class Signal(BaseException):
    """SIGTERM raised as an exception in the main thread, between two bytecodes."""


def test_a_signal_right_after_the_temporary_mkdir_leaves_nothing(tmp_path, monkeypatch):
    """The temporary directory's name is known before it is created, so a signal landing right
    after the mkdir (before any other line of ours) still has it removed. With
    ``tempfile.mkdtemp`` the name came back only after the directory existed, and a loaded CI run
    left one behind (test_sigterm_during_generation_leaves_no_temporary_directory)."""
    target = tmp_path / "out"
    _write(target, "old")
    real = os.mkdir

    def then_signal(path, *a, **k):
        real(path, *a, **k)
        if f".{target.name}.tmp-" in str(path):
            raise Signal

    monkeypatch.setattr(os, "mkdir", then_signal)
    with pytest.raises(Signal):
        _write(target, "new")
    monkeypatch.undo()
    assert (target / "a.txt").read_text() == "old"
    assert _siblings(target) == []


def test_sigterm_during_generation_leaves_no_temporary_directory(tmp_path):
    """A real process killed with SIGTERM mid-write: exit 143, no .tmp-* debris, no target."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = root / "generate_data.py"
    code = ("import sys, time, runpy\n"
            "import simulation.io as sio\n"
            "real = sio._write_table\n"
            "def slow(*a, **k):\n    time.sleep(30)\n    return real(*a, **k)\n"
            "sio._write_table = slow  # hold the run inside atomic_dir\n"
            f"sys.argv = [{str(script)!r}, *sys.argv[1:]]\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n")
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "SHOCKLAB_LOG_DIR": ""}
    p = subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(cfg), "--out", str(tmp_path / "d"), "--quiet"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while (
        not any(n.startswith(".d.tmp-") for n in os.listdir(tmp_path))
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "terminated" in err
    assert not (tmp_path / "d").exists() and _siblings(tmp_path / "d") == []


def test_atomically_written_files_get_an_ordinary_mode(tmp_path):
    from shocklab.atomic import atomic_write_text

    path = tmp_path / "report" / "insights.json"
    atomic_write_text(path, "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert path.read_text() == "{}"
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == ["insights.json"]  # no temp file left


def test_disk_full_names_the_output_being_written(tmp_path, cli, monkeypatch):
    """A real ENOSPC from write() carries no file name: the line said only "cannot write or read:
    no space left on device" (a full tmpfs, generate and analyse alike). It names the output."""
    import simulation.io as sio

    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    out = tmp_path / "d"

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sio, "_write_table", full)
    r = cli("generate", "--config", cfg, "--out", out, "--quiet")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "no space left on device" in line
    assert f"({out})" in line and ".tmp-" not in line, line
    assert not out.exists() and _siblings(out) == []


def _kill(pid):
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_worker_forked_under_the_lock_does_not_hold_it_after_its_parent_is_killed(tmp_path):
    """An experiment forks its pool workers (and an analysis its customers worker) while it holds
    its --out's write lock. An flock belongs to the open file, which a fork shares: after a
    kill -9 of the run, its workers kept the lock and every rerun into that --out was exit 2
    ('another ShockLab process is writing it now') for as long as they lived (for good: a pool
    worker without its parent never ends)."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from shocklab.atomic import exclusive_output

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "out"
    code = ("import os, sys, time\n"
            "from shocklab.atomic import exclusive_output\n"
            "with exclusive_output(sys.argv[1]):\n"
            "    child = os.fork()\n"
            "    if child == 0:\n"   # the child says so once its fork hooks have run: the parent's
            "        print(os.getpid(), flush=True)\n"   # print raced them (a CI run saw the
            "        time.sleep(120)\n"                  # lock still held by the new child)
            "        os._exit(0)\n"
            "    time.sleep(120)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(root / "src")})
    child = int(p.stdout.readline())
    try:
        with pytest.raises(InputError, match="another ShockLab process is writing it now"):
            with exclusive_output(out):
                pass
        p.send_signal(signal.SIGKILL)
        p.wait(60)
        os.kill(child, 0)  # the forked child still runs
        with exclusive_output(out):  # ... and does not hold the lock
            pass
    finally:
        p.kill()
        p.wait(60)
        p.stdout.close()
        _kill(child)


@pytest.mark.parametrize("first, second", [("run", "data"), ("data", "run")])
def test_an_output_of_another_kind_written_while_waiting_for_the_lock_is_not_moved_aside(
        tmp_path, first, second):
    """run_analysis.py and generate_data.py started together on one new --out: both passed the
    kind check (nothing there yet); the one that waited for the lock then moved the other's
    output aside to <out>.kept-1 without --force, and said '--force replaces'."""
    target = tmp_path / "out"
    files = {"data": "manifest.json", "run": "run.json"}
    atomic.validate_out(target, kind=second)   # the second run's check: nothing there yet
    with atomic_dir(target, kind=first) as tmp:  # the first run writes it meanwhile
        (tmp / files[first]).write_text("{}")
    with pytest.raises(InputError, match=f"is a ShockLab {atomic.KIND_NAMES[first]}; refusing"):
        with atomic_dir(target, kind=second) as tmp:
            (tmp / files[second]).write_text("{}")
    assert (target / files[first]).is_file() and not (target / files[second]).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic.allow_replace(), atomic_dir(target, kind=second) as tmp:  # --force: kept aside
        (tmp / files[second]).write_text("{}")
    assert (tmp_path / "out.kept-1" / files[first]).is_file()
