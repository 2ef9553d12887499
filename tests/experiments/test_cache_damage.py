"""Damaged world-cache state (audit 51b F4, F5, F6, F8): recovered with one warning line naming
what was damaged, or refused with one line; never a cell failing on it run after run, never
silent, no leftovers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.experiments.exp_fakes import fake_hash

from experiments import cache as cache_mod
from experiments.cache import WorldCache, check_cache_writable, manifest_names_it
from shocklab.errors import InputError

STAMP = "ab" * 32          # a code fingerprint (64 hex digits)
OTHER = "cd" * 32


def gen(raw: dict, out_dir, fmt: str = "parquet", source: str = "") -> dict:
    """A tiny world as the simulator writes one: its manifest names its hash."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}-x")
    tmp.mkdir()
    (tmp / "world.json").write_text(json.dumps(raw, sort_keys=True))
    (tmp / "manifest.json").write_text(json.dumps({"config_sha256": out_dir.name}))
    os.replace(tmp, out_dir)
    with open(out_dir.parent.parent / "calls.log", "a") as f:
        f.write(out_dir.name + "\n")
    return {}


def calls(tmp_path: Path) -> int:
    p = tmp_path / "calls.log"
    return len(p.read_text().splitlines()) if p.exists() else 0


RAW = {"seed": 1, "noise": 0.1}
RAW2 = {"seed": 2, "noise": 0.1}


def make(tmp_path: Path, stamp: str | None = STAMP) -> WorldCache:
    return WorldCache(tmp_path / "worlds", gen, fake_hash, check=manifest_names_it, stamp=stamp)


@pytest.fixture
def warnings_(monkeypatch):
    """The cache's warning lines (a handler of its own: the CLI's setup stops propagation)."""
    cache_mod._SWEPT.clear()
    lines: list[str] = []

    class H(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.WARNING:
                lines.append(record.getMessage())

    h = H()
    logger = logging.getLogger("shocklab.experiments.cache")
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    yield lines
    logger.removeHandler(h)
    logger.setLevel(old)
    cache_mod._SWEPT.clear()


def hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def assert_whole(root: Path, c: WorldCache, raw: dict = RAW) -> None:
    target = c.path_for(raw)
    assert json.loads((target / "world.json").read_text()) == raw
    assert (root / f".{target.name}.code").read_text() == c.stamp
    assert hidden(root) == [f".{target.name}.code"]   # no .bad-*, no lock, no temporary
    assert c.get(raw)[1] is True


# F4 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["dir", "full dir", "dangling link"])
def test_a_stamp_that_is_not_a_file_is_removed_and_the_world_made_again(tmp_path, warnings_,
                                                                        shape):
    """It failed that world's cells on every rerun (IsADirectoryError) and left the good world
    behind as .<hash>.bad-PID."""
    c = make(tmp_path)
    target, hit = c.get(RAW)
    assert not hit
    stamp = c.root / f".{target.name}.code"
    stamp.unlink()
    if shape == "dangling link":
        stamp.symlink_to(tmp_path / "nowhere")
    else:
        stamp.mkdir()
        if shape == "full dir":
            (stamp / "x").write_text("x")
    warnings_.clear()
    assert c.get(RAW) == (target, False)
    assert calls(tmp_path) == 2
    assert len(warnings_) == 1 and stamp.name in warnings_[0] and str(target) in warnings_[0]
    assert "generating it again" in warnings_[0]
    assert_whole(c.root, c)


@pytest.mark.parametrize("shape", ["dir", "dangling link"])
def test_a_lock_that_is_not_a_file_is_removed_and_made_again(tmp_path, warnings_, shape):
    c = make(tmp_path)
    target = c.path_for(RAW)
    c.root.mkdir()
    lock = c.root / f".{target.name}.lock"
    if shape == "dir":
        lock.mkdir()
    else:
        lock.symlink_to(tmp_path / "missing" / "lock")
    assert c.get(RAW) == (target, False)
    assert len(warnings_) == 1 and str(lock) in warnings_[0] and "removed" in warnings_[0]
    assert not (tmp_path / "missing").exists()   # nothing created through the link
    assert_whole(c.root, c)


def test_a_lock_is_removed_by_its_holder_before_it_is_released(tmp_path, warnings_):
    """Removed after the release, a waiter holding it and a newcomer locking a new file were
    both inside at once."""
    path = tmp_path / ".lock"
    with cache_mod._file_lock(path):
        assert path.is_file()
    assert not path.exists()


# F5 ------------------------------------------------------------------------------------------

def _cut_manifest(t: Path) -> None:
    (t / "manifest.json").write_text('{"config_sha2')


def _manifest_dir(t: Path) -> None:
    (t / "manifest.json").unlink()
    (t / "manifest.json").mkdir()


def _other_world(t: Path) -> None:
    (t / "manifest.json").write_text(json.dumps({"config_sha256": "0" * 16}))


def _empty_dir(t: Path) -> None:
    for p in t.iterdir():
        p.unlink()


def _a_file(t: Path) -> None:
    _empty_dir(t)
    t.rmdir()
    t.write_text("x")


def _garbage_stamp(t: Path) -> None:
    (t.parent / f".{t.name}.code").write_bytes(b"\xff\xfe garbage")


def _no_stamp(t: Path) -> None:
    (t.parent / f".{t.name}.code").unlink()


@pytest.mark.parametrize("damage", [_cut_manifest, _manifest_dir, _other_world, _empty_dir,
                                    _a_file, _garbage_stamp, _no_stamp])
def test_a_damaged_world_is_generated_again_with_one_warning_naming_it(tmp_path, warnings_,
                                                                      damage):
    c = make(tmp_path)
    target, _ = c.get(RAW)
    c.get(RAW2)
    damage(target)
    warnings_.clear()
    assert c.get(RAW) == (target, False)
    assert c.get(RAW2)[1] is True
    assert len(warnings_) == 1, warnings_
    assert str(target) in warnings_[0] and "generating it again" in warnings_[0]
    assert calls(tmp_path) == 3
    assert json.loads((target / "world.json").read_text()) == RAW
    assert sorted(hidden(c.root)) == sorted(f".{n}.code" for n in (target.name,
                                                                    c.path_for(RAW2).name))


def test_a_world_of_other_code_is_generated_again_without_a_damage_warning(tmp_path, warnings_):
    """Other simulator code's stamp is not damage (README: generated again); garbage is."""
    c = make(tmp_path)
    target, _ = c.get(RAW)
    (c.root / f".{target.name}.code").write_text(OTHER)
    assert c.get(RAW) == (target, False)
    assert warnings_ == []
    (c.root / f".{target.name}.code").write_text("garbage")
    assert c.get(RAW) == (target, False)
    assert len(warnings_) == 1 and "damaged" in warnings_[0]


def test_a_world_a_cell_cannot_read_is_generated_again_with_a_warning(tmp_path, warnings_):
    """(cell.run_cell calls regenerate when the analysis cannot read a cache hit: a parquet cut
    short, truth edited.)"""
    c = make(tmp_path)
    target, _ = c.get(RAW)
    (target / "world.json").write_text('{"se')
    assert c.get(RAW) == (target, True)
    assert c.regenerate(RAW) == target
    assert len(warnings_) == 1 and str(target) in warnings_[0]
    assert "cannot read" in warnings_[0] and "generating it again" in warnings_[0]
    assert_whole(c.root, c)


def test_a_world_another_worker_regenerated_is_not_generated_a_third_time(tmp_path, warnings_):
    c, other = make(tmp_path), make(tmp_path)
    target, _ = c.get(RAW)
    assert other.get(RAW)[1] and c.get(RAW)[1]     # two cells share the world, both fail on it
    other.regenerate(RAW)
    assert calls(tmp_path) == 2
    c.regenerate(RAW)                               # the fresh one is not replaced again
    assert calls(tmp_path) == 2 and len(warnings_) == 1


# F6 ------------------------------------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_stale_set_aside_copy_is_removed_when_its_process_is_gone(tmp_path, warnings_):
    c = make(tmp_path)
    target, _ = c.get(RAW)
    dead, live = _dead_pid(), os.getppid()
    for pid in (dead, live):
        bad = c.root / f".{target.name}.bad-{pid}"
        bad.mkdir()
        (bad / "world.json").write_text("{}")
    cache_mod._SWEPT.clear()
    warnings_.clear()
    assert c.get(RAW) == (target, True)     # on a hit too: the leftover was kept for good
    assert hidden(c.root) == sorted([f".{target.name}.bad-{live}", f".{target.name}.code"])
    assert len(warnings_) == 1 and f".{target.name}.bad-{dead}" in warnings_[0]


def test_this_process_s_leftover_copy_does_not_stop_a_regeneration(tmp_path, warnings_):
    """A set-aside copy under this pid (left by a failed removal) made os.replace fail
    (directory not empty) for that world on every later try."""
    c = make(tmp_path)
    target, _ = c.get(RAW)
    bad = c.root / f".{target.name}.bad-{os.getpid()}"
    bad.mkdir()
    (bad / "world.json").write_text("{}")
    (target / "manifest.json").write_text("{")
    assert c.get(RAW) == (target, False)
    assert_whole(c.root, c)


# F8 ------------------------------------------------------------------------------------------

@pytest.fixture
def read_only(monkeypatch):
    """Root ignores file modes: the cache directory is made read-only for os.access."""
    ro: set[Path] = set()
    real = os.access

    def access(path, mode, *a, **k):
        if Path(path).resolve() in ro and mode & os.W_OK:
            return False
        return real(path, mode, *a, **k)

    monkeypatch.setattr(os, "access", access)
    return ro


def test_a_read_only_cache_lacking_a_needed_world_is_refused_up_front(tmp_path, read_only):
    c = make(tmp_path)
    c.get(RAW)
    read_only.add(c.root.resolve())
    kw = {"key": fake_hash, "check": manifest_names_it, "stamp": STAMP}
    check_cache_writable(c.root, [RAW, RAW], **kw)   # holds every world: read as it is
    with pytest.raises(InputError) as exc:
        check_cache_writable(c.root, [RAW, RAW2, RAW2], **kw)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"--cache-dir {c.root}: ")
    assert "not writable" in msg and "1 of the 2 worlds" in msg
    with pytest.raises(InputError):   # a world of other code needs writing too
        check_cache_writable(c.root, [RAW], key=fake_hash, check=manifest_names_it, stamp=OTHER)
    read_only.clear()
    check_cache_writable(c.root, [RAW, RAW2], **kw)  # writable: nothing to check


def test_the_up_front_check_knows_the_simulator_s_worlds(tmp_path, read_only):
    from tests.simulation.simtools import tiny_config

    root = tmp_path / "ro"
    root.mkdir()
    read_only.add(root.resolve())
    with pytest.raises(InputError, match="lacks 1 of the 1 worlds"):
        check_cache_writable(root, [dict(tiny_config(), seed=1)])
