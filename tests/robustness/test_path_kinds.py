"""A directory given where a file is expected said "KPI file not found" / "transactions file not
found" although the path exists: the line now says what it is."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("flag", "what"), [("--kpis", "KPI file"),
                                             ("--transactions", "transactions file")])
def test_a_directory_instead_of_a_file_is_named_as_such(flag, what, cli, tmp_path):
    d = tmp_path / "exports"
    d.mkdir()
    r = cli("analysis", flag, d, "--out", tmp_path / "run")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(d) in line
    assert "is a directory" in line and what in line and "not found" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("which", ["generate", "analysis", "experiment"])
def test_a_config_that_is_no_regular_file_is_refused_before_it_is_read(which, cli, capsys,
                                                                        tmp_path):
    """--config naming a pipe blocked for ever and /dev/zero was read until memory ran out (all
    three commands; --kpis, --events and --calendar already refused them). /dev/null stands for
    the devices here: read, it is an empty config and the run went on."""
    import os
    import threading

    import run_experiment

    from shocklab.cli import run_cli

    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)

    def unblock() -> None:   # a reader still blocked on the pipe gets end-of-file, not a hang
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass   # nobody reading: as it should be

    timer = threading.Timer(10, unblock)
    timer.start()
    try:
        for path in (fifo, "/dev/null"):
            args = ["--config", str(path), "--out", str(tmp_path / "out")]
            if which == "experiment":
                code, err = run_cli(run_experiment.main, args), capsys.readouterr().err
            else:
                r = cli(which, *args)
                code, err = r.returncode, r.stderr
            assert code == 2, err
            line = err.strip()
            assert len(line.splitlines()) == 1 and str(path) in line
            assert "is not a regular file" in line and "save the config to a file" in line
            assert not (tmp_path / "out").exists()
    finally:
        timer.cancel()
