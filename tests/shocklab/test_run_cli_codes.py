"""run_cli's exit codes for the ways a run ends that are not an exception of ShockLab's own
(docs/ARCHITECTURE.md principle 7): 130 Ctrl-C, 143 SIGTERM, 2 a symlink loop (Python < 3.13
reports it as RuntimeError), 3 any other RuntimeError. Tested in-process: the end-to-end tests
that kill a real run were the only ones, and mutants of these branches survived the fast tests
(audit-mutcli)."""

from __future__ import annotations

import pytest

from shocklab.cli import Terminated, run_cli


def _raising(exc: BaseException):
    def main(argv):
        raise exc
    return main


@pytest.mark.parametrize("exc, code, line", [
    (KeyboardInterrupt(), 130, "interrupted"),
    (Terminated(), 143, "terminated (SIGTERM)"),
    (RuntimeError("Symlink loop from '/tmp/a'"), 2,
     "error: /tmp/a: too many levels of symbolic links (a symlink loop)"),
    (RuntimeError("something else"), 3, "internal error: RuntimeError: something else"),
])
def test_exit_code_and_one_line(exc, code, line, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(tmp_path))
    assert run_cli(_raising(exc), []) == code
    err = capsys.readouterr().err
    assert err.startswith(line) and len(err.strip().splitlines()) == 1, err


def test_an_internal_error_is_one_line_however_long_its_message(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(tmp_path))
    assert run_cli(_raising(ValueError("first line\nsecond line")), []) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "first line" in err and "second" not in err
    assert run_cli(_raising(ValueError("x" * 1000)), []) == 3
    err = capsys.readouterr().err
    assert "x" * 200 in err and "x" * 201 not in err
