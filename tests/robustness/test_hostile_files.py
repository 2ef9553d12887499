"""Odd but honest input files (audit-hostile): each was refused or misread; now analysed, or
refused with one line naming what is wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _daily(n: int = 120) -> pd.DataFrame:
    g = np.random.default_rng(3)
    return pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "revenue": g.normal(1000, 40, n).round(2),
        "orders": g.poisson(100, n),
    })


def test_kpis_with_a_spreadsheets_trailing_empty_columns_are_analysed(cli, tmp_path):
    """'date,revenue,orders,,' (Excel keeps a sheet's empty columns): "duplicate column name ''",
    exit 2; the nameless columns, empty in every row, are now left out."""
    lines = _daily().to_csv(index=False).splitlines()
    f = tmp_path / "export.csv"
    f.write_text("\n".join(line + ",," for line in lines) + "\n")
    r = cli("analysis", "--kpis", f, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(tmp_path / "run" / "kpis_daily.csv")
    assert [c for c in got.columns if c not in ("date", "dimension", "segment")] == \
        ["revenue", "orders"]


def test_a_nameless_column_with_values_is_still_a_repeat_when_repeated(cli, tmp_path):
    """Only an empty nameless column is dropped: two named alike still name the repeat."""
    df = _daily()
    f = tmp_path / "dup.csv"
    df.to_csv(f, index=False, header=["date", "revenue", "revenue"])
    r = cli("analysis", "--kpis", f, "--out", tmp_path / "run")
    assert r.returncode == 2 and "duplicate column name 'revenue'" in r.stderr


def test_a_parquet_transactions_file_is_named_as_unsupported(cli, tmp_path):
    """--transactions reads .csv/.xlsx; a .parquet file was parsed as CSV text: "cannot read CSV
    file (ParserError: Error tokenizing data …)"."""
    from tests.robustness.txgen import transactions

    f = tmp_path / "tx.parquet"
    transactions(n_rows=200, days=20).to_parquet(f)
    r = cli("analysis", "--transactions", f, "--out", tmp_path / "run")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "Parquet" in line and "ParserError" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("text", "needle"), [
    ("[1, 2]", "expected a JSON object"),          # was read as no manifest: nothing verified
    ("null", "expected a JSON object"),
    ('{"files": [1]}', "'files' must be an object"),  # was AttributeError, exit 3
    ('{"row_counts": "x"}', "'row_counts' must be an object"),
    ('{"seed": 1' + "0" * 5000 + "}", "cannot read JSON"),   # > 4300 digits: ValueError, exit 3
    ("[" * 100_000 + "]" * 100_000, "cannot read JSON"),     # RecursionError, exit 3
])
def test_a_manifest_of_the_wrong_shape_is_one_line(text, needle, cli, fresh_world, tmp_path):
    (fresh_world / "manifest.json").write_text(text)
    r = cli("analysis", "--data", fresh_world, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "manifest.json" in line and needle in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--kpis", "--transactions", "--events", "--calendar"])
def test_a_pipe_as_an_input_file_is_named_as_such(flag, cli, tmp_path):
    """``--kpis <(cmd)`` is /dev/fd/63, a pipe: the line said "KPI file not found" for a path
    that exists (a pipe cannot be read twice, as the readers do)."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    kpis = tmp_path / "k.csv"
    _daily().to_csv(kpis, index=False)
    args = [flag, fifo] if flag in ("--kpis", "--transactions") else ["--kpis", kpis, flag, fifo]
    r = cli("analysis", *args, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(fifo) in line, line
    assert "not a regular file" in line and "not found" not in line, line
    assert not (tmp_path / "run").exists()


def test_a_given_step_is_not_called_the_automatic_choice(cli, tmp_path):
    """--step 7D on a daily file warned "step 7 days (the modal step 1 days would leave more than
    half the periods empty; --step modal keeps it)": the reason of the automatic choice, for a
    step the user gave."""
    f = tmp_path / "daily.csv"
    _daily().to_csv(f, index=False)
    r = cli("analysis", "--kpis", f, "--step", "7D", "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert "more than half the periods empty" not in out
    assert "--step 7 days" in out and "combined by --duplicates mean" in out


@pytest.mark.parametrize("flags", [["--layout", "long"], ["--duplicates", "sum"]])
def test_kpis_only_flags_without_kpis_are_refused(flags, cli, tiny_world, tmp_path):
    """--step was refused without --kpis; --layout and --duplicates were ignored without a word
    (a user meaning --kpis got a store analysis)."""
    r = cli("analysis", "--data", tiny_world, *flags, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: {flags[0]} applies to --kpis only"
    assert not (tmp_path / "run").exists()
