"""Flag plumbing of the scripts, in-process: bad values refused with exit 2 before any work.
Each test failed against a hand-made mutant that the slower end-to-end tests let pass
(audit-mutcli)."""

from __future__ import annotations

import pytest
import yaml
from tests.simulation.simtools import tiny_config

from shocklab.cli import ArgumentParser, run_cli


@pytest.mark.parametrize("argv", [["--workers=--"], ["--executor=--"], ["--min-recall=--"]])
def test_a_double_dash_as_a_flags_value_is_checked_like_any_value(argv, capsys):
    """argparse (before 3.12.7) read ``--workers=--`` as an empty list, past its type and
    choices: --workers=-- crashed with exit 3, --executor=-- ran the default executor."""
    p = ArgumentParser(prog="t")
    p.add_argument("--workers", type=int)
    p.add_argument("--executor", choices=("serial", "local"))
    p.add_argument("--min-recall", type=float)
    with pytest.raises(SystemExit) as exc:
        p.parse_args(argv)
    assert exc.value.code == 2
    assert "'--'" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_generate_refuses_a_max_orders_that_is_not_positive(tmp_path, capsys, value):
    from generate_data import main

    out = tmp_path / "d"
    assert run_cli(main, ["--out", str(out), f"--max-orders={value}", "--quiet"]) == 2
    assert "--max-orders: must be a positive number" in capsys.readouterr().err
    assert not out.exists()


def test_generate_refuses_an_out_that_holds_its_config(tmp_path, capsys):
    """--config out/scenario.yaml --out out, out an earlier data set: replacing it would delete
    the scenario file."""
    from generate_data import main

    from shocklab.atomic import MARKER

    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text('{"kind": "data", "shocklab_output": true}')
    cfg = out / "scenario.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(events=[], calendar=[])))
    assert run_cli(main, ["--config", str(cfg), "--out", str(out), "--quiet"]) == 2
    assert "contains the input" in capsys.readouterr().err
    assert cfg.is_file() and sorted(p.name for p in out.iterdir()) == [MARKER, "scenario.yaml"]


def test_seed_flag_wins_over_a_set_seed(tmp_path):
    """``--seed N`` is the master seed (README): given with ``--set seed=M`` too, N is used."""
    import json

    from generate_data import main

    cfg = tmp_path / "s.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config(events=[], calendar=[])))
    out = tmp_path / "d"
    assert run_cli(main, ["--config", str(cfg), "--out", str(out), "--set", "seed=11",
                          "--seed", "12", "--quiet"]) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 12


def test_held_console_prints_on_success_and_drops_on_error(capsys):
    """Reading several input files: a bad later one is its one error line, not the first
    file's warnings followed by it."""
    import logging

    from shocklab.cli import held_console, setup_logging
    from shocklab.errors import InputError

    log = setup_logging("t")
    with pytest.raises(InputError), held_console():
        log.warning("first file: 3 rows dropped")
        raise InputError("second file: bad")
    assert "first file" not in capsys.readouterr().out
    with held_console():
        log.warning("first file: 3 rows dropped")
        assert "first file" not in capsys.readouterr().out     # held until the block ends
    assert "first file: 3 rows dropped" in capsys.readouterr().out
    logging.getLogger("shocklab").handlers.clear()


def test_a_negative_value_read_as_a_flag_gets_the_equals_hint_and_a_flag_does_not(capsys):
    p = ArgumentParser(prog="t")
    p.add_argument("--step")
    with pytest.raises(SystemExit):
        p.parse_args(["--step", "-1D"])
    assert "'-1D' reads as a flag; write --step=-1D" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        p.parse_args(["--step", "--bogus"])
    assert "reads as a flag" not in capsys.readouterr().err


def test_an_empty_log_dir_writes_no_log_file(tmp_path, monkeypatch):
    """``SHOCKLAB_LOG_DIR=`` disables the log file (it was written to the current directory)."""
    import logging

    from shocklab.cli import setup_logging

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", "")
    setup_logging("t")
    root = logging.getLogger("shocklab")
    assert not any(isinstance(h, logging.FileHandler) for h in root.handlers)
    assert list(tmp_path.iterdir()) == []
    root.handlers.clear()


@pytest.mark.parametrize("port, ok", [("65535", True), ("1", True), ("65536", False),
                                      ("0", False)])
def test_port_bounds(port, ok):
    import argparse

    from shocklab.main import _port

    if ok:
        assert _port(port) == int(port)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="must be 1-65535"):
            _port(port)


def test_the_dashboard_is_given_both_roots(tmp_path):
    from shocklab.main import dashboard_argv

    argv, env = dashboard_argv(str(tmp_path / "rep"), str(tmp_path / "exp"), "::1", 8502)
    assert env["SHOCKLAB_REPORTS"] == str((tmp_path / "rep").resolve())
    assert env["SHOCKLAB_RUNS"] == str((tmp_path / "exp").resolve())
    assert argv[argv.index("--server.address") + 1] == "::1"
    assert argv[argv.index("--server.port") + 1] == "8502"


def test_ctrl_c_on_the_dashboard_is_exit_130(tmp_path, monkeypatch, capsys):
    """Streamlit runs as a child; Ctrl-C reaching ``shocklab dashboard`` ends it with 130 (as
    every command), not 0."""
    import shocklab.main as m

    class Sock:
        def close(self):
            pass

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(m, "_listen", lambda host, port: Sock())
    monkeypatch.setattr(m.subprocess, "call", interrupted)
    assert m.main(["dashboard", "--reports", str(tmp_path), "--runs", str(tmp_path)]) == 130


def test_set_refuses_an_empty_key_and_addresses_list_items_from_either_end():
    from shocklab.configio import apply_overrides
    from shocklab.errors import InputError

    with pytest.raises(InputError, match="expected dotted.key=value"):
        apply_overrides({"a": 1}, [" =3"])
    data = {"events": [{"m": 1}, {"m": 2}], "seeds": [1, 2, 3]}
    assert apply_overrides(data, ["seeds.-1=9"])["seeds"] == [1, 2, 9]
    assert apply_overrides(data, ["events.-1.m=7"])["events"][1] == {"m": 7}
    for bad in ("events.2.m=7", "seeds.3=1"):
        with pytest.raises(InputError, match="out of range"):
            apply_overrides(data, [bad])


def test_set_under_a_key_that_is_null_makes_the_mapping():
    """``calibration: null`` in the file, ``--set detectors.x.calibration.tail=2``: a mapping is
    made there (it said the null was "not a mapping or list")."""
    from shocklab.configio import apply_overrides

    assert apply_overrides({"a": None}, ["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


@pytest.mark.parametrize("args, line", [
    (["--events", "e.json"], "error: --events needs --kpis"),
    (["--date-format", "%d/%m/%Y"], "error: --date-format applies to --transactions only"),
    (["--min-recall", "1.5"], "error: --min-recall: must be between 0 and 1, got 1.5"),
    (["--layout", "long"], "error: --layout applies to --kpis only"),
])
def test_analysis_flags_that_cannot_apply_are_refused_before_any_work(tmp_path, capsys, args,
                                                                     line):
    from run_analysis import main

    assert run_cli(main, ["--data", str(tmp_path / "none"), "--out", str(tmp_path / "r"),
                          *args]) == 2
    assert capsys.readouterr().err.startswith(line)
    assert not (tmp_path / "r").exists()


def test_analysis_detectors_flag_needs_a_name(tmp_path, capsys):
    from run_analysis import main

    f = tmp_path / "k.csv"
    f.write_text("timestamp,x\n" + "".join(f"2025-01-{d:02d},{d}\n" for d in range(1, 11)))
    assert run_cli(main, ["--kpis", str(f), "--out", str(tmp_path / "r"), "--detectors",
                          " , "]) == 2
    assert "--detectors: give at least one name" in capsys.readouterr().err


def test_set_a_value_yaml_cannot_make_a_date_of_stays_text():
    """``--set name=2025-02-30``: YAML reads a date and fails on the day; the value is the text
    (it was an internal error)."""
    from shocklab.configio import apply_overrides

    assert apply_overrides({}, ["name=2025-02-30"]) == {"name": "2025-02-30"}


def test_set_replacing_a_whole_mapping_warns_which_keys_it_drops(caplog):
    import logging

    from shocklab.configio import apply_overrides

    with caplog.at_level(logging.WARNING, logger="shocklab"):
        out = apply_overrides({"consensus": {"combine": "stouffer", "min_votes": 2}},
                              ["consensus={min_votes: 3}"])
    assert out == {"consensus": {"min_votes": 3}}
    assert "replaces the whole mapping: it leaves out combine (a setting left out takes the " \
        "code's default, an entry such as a detector" in caplog.text
