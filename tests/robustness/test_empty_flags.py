"""An empty flag value (``--kpis "$FILE"`` with the variable unset) is exit 2, one line naming the
flag, nothing written: run_analysis.py's --kpis, --transactions, --events, --calendar and --config
were read as no flag at all (the default data directory or config analysed, exit 0 where one was
there), --data and generate_data.py's --config as the current directory, --date-format as no
format; --step '' said "must be positive"."""

from __future__ import annotations

import shutil

import pytest

CASES = [
    ("analysis", ["--kpis", ""], "--kpis"),
    ("analysis", ["--transactions", " "], "--transactions"),
    ("analysis", ["--events", ""], "--events"),
    ("analysis", ["--calendar", ""], "--calendar"),
    ("analysis", ["--config", ""], "--config"),
    ("analysis", ["--data", ""], "--data"),
    ("analysis", ["--out", ""], "--out"),
    ("analysis", ["--kpis", "k.csv", "--step", ""], "--step"),
    ("analysis", ["--transactions", "t.csv", "--date-format", ""], "--date-format"),
    ("generate", ["--config", ""], "--config"),
    ("generate", ["--out", ""], "--out"),
    ("experiment", ["--config", ""], "--config"),
    ("experiment", ["--config", "e.yaml", "--out", ""], "--out"),
    ("experiment", ["--config", "e.yaml", "--cache-dir", ""], "--cache-dir"),
    ("experiment", ["--config", "e.yaml", "--baseline", ""], "--baseline"),
    # a host nothing can listen on: were the empty root taken, the server would fail, not hang
    ("serve", ["serve", "--host", "256.0.0.1", "--reports", ""], "--reports"),
    ("serve", ["dashboard", "--host", "256.0.0.1", "--runs", ""], "--runs"),
    ("serve", ["serve", "--host", "256.0.0.1", "--data-root", ""], "--data-root"),
    ("insights", ["--check", ""], "--check"),
]


def _main(which: str):
    if which == "analysis":
        import run_analysis
        return run_analysis.main
    if which == "generate":
        import generate_data
        return generate_data.main
    if which == "experiment":
        import run_experiment
        return run_experiment.main
    if which == "serve":
        from shocklab.main import main
        return main
    from analytics.insights.cli import main
    return main


@pytest.mark.parametrize(("which", "args", "flag"), CASES,
                         ids=[f"{w}-{f.strip('-')}" for w, _, f in CASES])
def test_an_empty_flag_value_is_exit_2_naming_the_flag(which, args, flag, tmp_path, capsys,
                                                       tiny_world):
    from shocklab.cli import run_cli

    # the default data directory is there: an ignored empty --kpis analysed it, exit 0
    shutil.copytree(tiny_world, tmp_path / "data")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code = run_cli(_main(which), args) if which != "insights" else _insights(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err, err
    assert f"argument {flag}: is empty; give " in err and "or leave the flag out" in err, err
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")
                   if p.relative_to(tmp_path).parts[0] not in ("logs", "state"))
    assert after == before


def _insights(args: list[str]) -> int:
    from analytics.insights.cli import main

    with pytest.raises(SystemExit) as exc:   # argparse's exit, as the module's __main__ gives it
        main(args)
    return exc.value.code


def test_a_path_of_its_own_is_still_taken(tmp_path, capsys, tiny_world):
    """The check is on emptiness only: a directory named like a flag value is analysed."""
    import run_analysis

    from shocklab.cli import run_cli

    shutil.copytree(tiny_world, tmp_path / "my data")
    code = run_cli(run_analysis.main, ["--data", "my data", "--out", "r", "--quiet",
                                       "--set", "customers.enabled=false",
                                       "--set", "insights.plots=false"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "r" / "run.json").is_file()
