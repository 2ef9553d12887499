"""The ``shocklab`` console command: the subcommand registry, and ``serve`` answering over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shocklab import main as cli

ROOT = Path(__file__).resolve().parents[2]


def test_registry_lists_and_dispatches(capsys, monkeypatch):
    assert cli.main([]) == 2
    out = capsys.readouterr()   # one line on stderr naming the commands (was the usage on stdout)
    assert out.out == "" and out.err.count("\n") == 1 and "dashboard" in out.err, out
    assert cli.main(["--help"]) == 0
    assert {"dashboard", "serve", "generate", "analyse", "experiment"} <= set(cli.COMMANDS)
    assert cli.main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    seen = []
    monkeypatch.setitem(cli.COMMANDS, "echo", (lambda argv: seen.append(argv) or 7, "test"))
    assert cli.main(["echo", "a", "--b"]) == 7 and seen == [["a", "--b"]]


def test_script_subcommands_keep_their_exit_codes(capsys):
    assert cli.main(["analyse", "--no-such-flag"]) == 2
    assert "run_analysis.py" in capsys.readouterr().err
    assert cli.main(["generate", "--config", "/nonexistent.yaml"]) == 2


def test_dashboard_command_line(tmp_path):
    argv, env = cli.dashboard_argv(str(tmp_path / "r"), str(tmp_path / "x"), "127.0.0.1", 8599)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4] == str(ROOT / "app.py")
    assert argv[argv.index("--server.port") + 1] == "8599"
    assert env["SHOCKLAB_REPORTS"] == str((tmp_path / "r").resolve())
    assert cli.main(["dashboard", "--port", "x"]) == 2


@pytest.mark.parametrize("command", ["dashboard", "serve"])
def test_a_missing_or_non_directory_root_is_bad_input(command, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert cli.main([command, "--reports", str(tmp_path / "typo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --reports {tmp_path / 'typo'}: no such directory"]
    assert cli.main([command, "--runs", str(afile)]) == 2
    assert capsys.readouterr().err.strip() == f"error: --runs {afile}: not a directory"


def test_the_printed_address_opens_for_an_ipv6_host():
    """'API on http://::1:18202' was printed for --host ::1: not a URL a browser opens."""
    assert cli.url("::1", 8000) == "http://[::1]:8000"
    assert cli.url("127.0.0.1", 8501) == "http://127.0.0.1:8501"


def test_a_missing_or_non_directory_data_root_is_bad_input(tmp_path, capsys):
    """serve --allow-analysis --data-root typo/ started, and every POST /runs was refused later;
    --data-root without --allow-analysis was ignored without a word."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "r").mkdir()
    roots = ["--reports", str(tmp_path / "r"), "--runs", str(tmp_path / "r")]
    for flags, line in [
        (["--allow-analysis", "--data-root", str(tmp_path / "typo")],
         f"error: --data-root {tmp_path / 'typo'}: no such directory"),
        (["--allow-analysis", "--data-root", str(afile)],
         f"error: --data-root {afile}: not a directory"),
        (["--data-root", str(tmp_path / "r")],
         f"error: --data-root {tmp_path / 'r'}: needs --allow-analysis (POST /runs is off "
         "without it)"),
    ]:
        assert cli.main(["serve", *roots, "--port", "1", *flags]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [line]


@pytest.mark.parametrize("command", ["dashboard", "serve"])
def test_a_port_out_of_range_or_in_use_is_bad_input(command, tmp_path, capsys):
    """--port 99999 was 'internal error: OverflowError' (exit 3) and a port in use was
    'internal error: exit(3) called inside ShockLab' after uvicorn's traceback (the dashboard:
    streamlit's exit 1, the code of a failed quality gate). Both are one line, exit 2."""
    (tmp_path / "r").mkdir()
    roots = ["--reports", str(tmp_path / "r"), "--runs", str(tmp_path / "r")]
    assert cli.main([command, *roots, "--port", "99999"]) == 2
    assert "--port: must be 1-65535, got 99999" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert cli.main([command, *roots, "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--port {port}: cannot listen there" in err[0], err


def test_serve_answers_health(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "reports").mkdir()
    (tmp_path / "runs").mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shocklab.main",
            "serve",
            "--reports",
            str(tmp_path / "reports"),
            "--runs",
            str(tmp_path / "runs"),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, body = (
            time.monotonic() + 120,
            None,
        )  # a bound on start-up under load, not a speed check
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:  # refused, reset, or a read timeout while it starts on a busy machine
                time.sleep(0.3)
        assert body == {
            "status": "ok",
            "version": body["version"],
            "runs": 0,
            "experiments": 0,
            "analysis_enabled": False,
        }, proc.stdout.read().decode() if proc.poll() is not None else ""
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("command,port", [("dashboard", 8501), ("serve", 8000)])
def test_help_names_the_default_port(command, port, capsys):
    """`shocklab dashboard --help` listed --port without its default (or any text)."""
    assert cli.main([command, "--help"]) == 0
    assert f"(default: {port})" in " ".join(capsys.readouterr().out.split())


def test_dashboard_data_root_sets_where_planned_calendars_are_read(tmp_path, capsys):
    """--data-root (as `serve` has) becomes SHOCKLAB_DATA for the Streamlit process; a path that
    is not a directory is exit 2 before anything starts."""
    d1, d2 = tmp_path / "d1", tmp_path / "d2"
    d1.mkdir()
    d2.mkdir()
    _, env = cli.dashboard_argv(str(tmp_path), str(tmp_path), "127.0.0.1", 8599,
                                [str(d1), str(d2)])
    assert env["SHOCKLAB_DATA"].split(os.pathsep) == [str(d1.resolve()), str(d2.resolve())]
    (tmp_path / "f").write_text("x")
    assert cli.main(["dashboard", "--data-root", str(tmp_path / "f")]) == 2
    assert "--data-root" in capsys.readouterr().err
    assert cli.main(["dashboard", "--data-root", str(tmp_path / "none")]) == 2
    assert "no such directory" in capsys.readouterr().err
