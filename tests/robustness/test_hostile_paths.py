"""Odd paths and environment variables (audit-hostile): each was an internal error (exit 3), a
hang, a misleading line or a leftover file; now exit 2 with one line, or the right result."""

from __future__ import annotations

import pytest
import yaml
from tests.simulation.simtools import tiny_config


def _config(tmp_path):
    p = tmp_path / "sim.yaml"
    p.write_text(yaml.safe_dump(tiny_config(), sort_keys=False))
    return p


def _one_line(r, *needles):
    line = r.stderr.strip()
    assert r.returncode == 2, r.stderr
    assert len(line.splitlines()) == 1 and "internal error" not in line, line
    for n in needles:
        assert n in line, line


def test_a_symlink_loop_as_data_or_out_is_bad_input(cli, tiny_world, tmp_path):
    """Path.resolve() raised RuntimeError("Symlink loop …") on Python < 3.13: exit 3."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    _one_line(cli("analysis", "--data", tmp_path / "a", "--out", tmp_path / "run"),
              str(tmp_path / "a"), "symbolic links")
    _one_line(cli("analysis", "--data", tiny_world, "--out", tmp_path / "a"),
              str(tmp_path / "a"), "symbolic links")
    _one_line(cli("generate", "--config", _config(tmp_path), "--out", tmp_path / "a" / "x"),
              "symbolic links")
    assert not (tmp_path / "run").exists()


def test_a_dangling_symlink_as_out_is_refused_before_the_work(cli, tmp_path):
    """The rename onto the link failed after the whole generation: NotADirectoryError, exit 3."""
    link = tmp_path / "data"
    link.symlink_to(tmp_path / "nowhere")
    _one_line(cli("generate", "--config", _config(tmp_path), "--out", link),
              str(link), "symbolic link to a missing")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".data.")]


def test_out_a_symlink_to_an_earlier_output_leaves_no_set_aside_link(cli, tmp_path):
    """The link was set aside as .data.old-PID and rmtree refused to remove a symlink: it stayed
    for good. The earlier output it pointed at is kept as it was."""
    cfg = _config(tmp_path)
    assert cli("generate", "--config", cfg, "--out", tmp_path / "v1").returncode == 0
    before = (tmp_path / "v1" / "manifest.json").read_bytes()
    (tmp_path / "data").symlink_to(tmp_path / "v1")
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "manifest.json").is_file()
    assert (tmp_path / "v1" / "manifest.json").read_bytes() == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".data.")]


def test_out_ending_in_dotdot_is_the_directory_it_names(cli, tmp_path):
    """'--out d/x/.. --force' is d: the set-aside renamed '.../x/..' itself (EBUSY, exit 3)."""
    cfg = _config(tmp_path)
    (tmp_path / "d" / "x").mkdir(parents=True)
    (tmp_path / "d" / "mine.txt").write_text("kept")
    r = cli("generate", "--config", cfg, "--out", tmp_path / "d" / "x" / "..", "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d" / "manifest.json").is_file()
    assert (tmp_path / "d.kept-1" / "mine.txt").read_text() == "kept"   # moved, not deleted
    (tmp_path / "r" / "y").mkdir(parents=True)
    r = cli("analysis", "--data", tmp_path / "d", "--out", tmp_path / "r" / "y" / "..", "--force")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "run.json").is_file() and (tmp_path / "r.kept-1" / "y").is_dir()


@pytest.mark.parametrize(("var", "value", "needle"), [
    ("SHOCKLAB_MAX_ORDERS", "-5", "positive"),      # was "above the ceiling of -5"
    ("SHOCKLAB_MAX_ORDERS", "nan", "positive"),     # was no ceiling at all (exit 0)
    ("SHOCKLAB_LOCK_TIMEOUT", "abc", "seconds"),    # was ValueError, exit 3
    ("SHOCKLAB_LOCK_TIMEOUT", "nan", "seconds"),    # was a wait for ever on a held lock
])
def test_a_bad_environment_variable_is_one_line(var, value, needle, cli, tmp_path, monkeypatch):
    monkeypatch.setenv(var, value)
    _one_line(cli("generate", "--config", _config(tmp_path), "--out", tmp_path / "data"),
              var, needle, repr(value))
    assert not (tmp_path / "data").exists()

