"""An impossible date in a data table (edited by hand, analysed with --no-verify) said
"column 'order_date' is not a date (Time data 2025-01-32 is not ISO8601 format. You might want to
try:)" — pandas' hint cut at its colon, and no row. The line names the value and the data row."""

from __future__ import annotations


def test_an_impossible_date_names_the_value_and_the_row(fresh_world, cli, tmp_path):
    f = fresh_world / "orders.csv"
    lines = f.read_text().splitlines(keepends=True)
    head = lines[0].rstrip("\n").split(",")
    col = head.index("order_date")
    row = lines[3].rstrip("\n").split(",")
    row[col] = row[col][:8] + "32"
    lines[3] = ",".join(row) + "\n"
    f.write_text("".join(lines))
    r = cli("analysis", "--data", fresh_world, "--no-verify", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2
    line = r.stderr.strip().splitlines()[-1]
    assert "order_date" in line and row[col] in line and "data row 3" in line, line
    assert "You might want to try" not in line
    assert not (tmp_path / "run").exists()


def _arrow_loses_a_chunk(monkeypatch):
    """pandas' pyarrow parser failing as Arrow's threaded type inference does now and then under
    load (CI, once): an ArrowException that is no ValueError."""
    import pandas as pd
    import pyarrow as pa

    real = pd.read_csv

    def read_csv(path, *args, **kw):
        if kw.get("engine") == "pyarrow":
            raise pa.lib.ArrowException("a chunk failed converting for an unknown reason")
        return real(path, *args, **kw)

    monkeypatch.setattr(pd, "read_csv", read_csv)


def test_arrow_losing_a_chunk_still_names_the_impossible_date(fresh_world, cli, tmp_path,
                                                              monkeypatch):
    """It was "internal error: ArrowException: a chunk failed converting for an unknown reason"
    (exit 3); the C parser reads the file instead and the bad date is named."""
    f = fresh_world / "orders.csv"
    lines = f.read_text().splitlines(keepends=True)
    col = lines[0].rstrip("\n").split(",").index("order_date")
    row = lines[3].rstrip("\n").split(",")
    row[col] = row[col][:8] + "32"
    lines[3] = ",".join(row) + "\n"
    f.write_text("".join(lines))
    _arrow_loses_a_chunk(monkeypatch)
    r = cli("analysis", "--data", fresh_world, "--no-verify", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    assert f"is not a date: {row[col]!r} (data row 3)" in r.stderr.strip().splitlines()[-1]


def test_arrow_losing_a_chunk_reads_the_same_tables(tiny_world, monkeypatch):
    from analytics.loading import load_data_dir

    want = load_data_dir(tiny_world).tables
    _arrow_loses_a_chunk(monkeypatch)
    got = load_data_dir(tiny_world).tables
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].equals(want[name]), name
        assert list(got[name].dtypes) == list(want[name].dtypes), name
