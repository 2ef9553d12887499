"""Exit codes: one error boundary (an unexpected exception is 3 with the log path, never 1), and
the bad inputs that used to crash with exit 1 now exit 2 with one line."""

from __future__ import annotations

import pytest
from tests.robustness.conftest import write_yaml
from tests.simulation.simtools import tiny_config

from shocklab.cli import run_cli, setup_logging


def _boom(argv):
    setup_logging("test")
    raise KeyError("no such column")


@pytest.mark.parametrize("debug", [False, True])
def test_an_unexpected_exception_is_exit_3_with_the_log_path(tmp_path, monkeypatch, capsys, debug):
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(tmp_path / "logs"))
    code = run_cli(_boom, ["--debug"] if debug else [])
    err = capsys.readouterr().err
    assert code == 3
    assert "internal error: KeyError" in err and str(tmp_path / "logs" / "shocklab.log") in err
    assert ("Traceback" in err) is debug  # the traceback only on request; always in the log file
    assert "Traceback" in (tmp_path / "logs" / "shocklab.log").read_text()


def test_only_a_gate_is_exit_1(capsys):
    from shocklab.errors import GateFailure

    def gate(argv):
        raise GateFailure("recall 0.5 < 0.9")

    def exits(argv):
        raise SystemExit(1)

    assert run_cli(gate, []) == 1
    assert run_cli(exits, []) == 3  # a stray sys.exit(1) must not pass for a failed gate
    assert run_cli(lambda a: (_ for _ in ()).throw(MemoryError()), []) == 2
    capsys.readouterr()


def test_a_failed_gate_and_a_refused_input_are_in_the_log_file(tmp_path, monkeypatch, capsys):
    """The log file held how a run started but not that its gate failed (exit 1) or its input
    was refused (exit 2): only the console said so (audit-cigate)."""
    from shocklab.errors import GateFailure, InputError

    monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(tmp_path / "logs"))

    def ends(exc):
        def main(argv):
            setup_logging("test")
            raise exc
        return main

    assert run_cli(ends(GateFailure("consensus recall 0.5000 < --min-recall 0.9")), []) == 1
    assert run_cli(ends(InputError("--min-recall: must be between 0 and 1, got 2.0")), []) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["FAILED: consensus recall 0.5000 < --min-recall 0.9",
                   "error: --min-recall: must be between 0 and 1, got 2.0"]
    log = (tmp_path / "logs" / "shocklab.log").read_text()
    assert "ERROR shocklab.cli: FAILED: consensus recall 0.5000 < --min-recall 0.9 (exit 1)" in log
    assert "ERROR shocklab.cli: error: --min-recall: must be between 0 and 1, got 2.0 (exit 2)" \
        in log


@pytest.mark.parametrize("script", ["run_analysis", "generate_data", "run_experiment"])
def test_a_path_no_file_system_accepts_is_exit_2_not_an_internal_error(tmp_path, capsys, script):
    """A 300-character file name (ENAMETOOLONG) given to --data / --out / --config was
    'internal error: OSError' (exit 3) in every CLI."""
    import importlib

    main = importlib.import_module(script).main
    long = str(tmp_path / ("x" * 300))
    flags = {"run_analysis": ["--data", long], "generate_data": ["--out", long],
             "run_experiment": ["--config", long + ".yaml"]}[script]
    assert run_cli(main, [*flags, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # --out: its lock file's name is checked up front (session 45); the others: the OS's words
    too_long = "its name is 300 bytes" if script == "generate_data" else "file name too long"
    assert len(err) == 1 and too_long in err[0] and "internal error" not in err[0], err


@pytest.mark.parametrize(("sets", "expect"), [
    (["period.end=2025-02-30"], "period.end"),
    (["traffic.base_sessions=.inf"], "traffic.base_sessions"),
    (["traffic.base_sessions=1e12"], "traffic.base_sessions"),
    (["traffic.base_sessions=5e7"], "above the ceiling"),
    (["random_events.count=60", "random_events.min_gap_days=30"],
     "s.yaml (with --set/--seed): random_events: no room"),
])
def test_bad_scenarios_exit_2_with_one_line(tmp_path, cli, sets, expect):
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    args = ["--config", cfg, "--out", tmp_path / "d", "--quiet"]
    for s in sets:
        args += ["--set", s]
    r = cli("generate", *args)
    assert r.returncode == 2, r.stderr
    assert (
        expect in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
        and "Traceback" not in r.stderr
    )
    assert not (tmp_path / "d").exists()


def test_the_size_ceiling_is_configurable(tmp_path, cli):
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config())
    r = cli("generate", "--config", cfg, "--out", tmp_path / "d", "--max-orders", "1000", "--quiet")
    assert r.returncode == 2 and "above the ceiling of 1,000" in r.stderr


def test_duplicate_yaml_keys_are_rejected(tmp_path, cli):
    cfg = tmp_path / "s.yaml"
    write_yaml(cfg, tiny_config())
    cfg.write_text(cfg.read_text() + "seed: 12\n")  # a second 'seed' (YAML would keep the last)
    r = cli("generate", "--config", cfg, "--out", tmp_path / "d", "--quiet")
    assert r.returncode == 2 and "duplicate key 'seed'" in r.stderr and "line" in r.stderr


@pytest.mark.slow  # a full analysis (~12 s)
@pytest.mark.parametrize("end", ["2025-01-01", "2025-01-03"])
def test_one_and_three_day_worlds_generate_and_analyse(tmp_path, cli, end):
    cfg = write_yaml(tmp_path / "s.yaml", tiny_config(period={"start": "2025-01-01", "end": end},
                                                      events=[], calendar=[]))
    assert cli("generate", "--config", cfg, "--out", tmp_path / "d", "--quiet").returncode == 0
    r = cli("analysis", "--data", tmp_path / "d", "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r" / "run.json").is_file()
