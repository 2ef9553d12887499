"""shocklab.fastcsv writes the same bytes as pandas' to_csv (the data directory's contract)."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest

from shocklab.fastcsv import write_csv


def _pandas_bytes(df: pd.DataFrame, path) -> bytes:
    df.to_csv(path, index=False, lineterminator="\n")
    return path.read_bytes()


def _frame(n: int = 20_000) -> pd.DataFrame:
    g = np.random.default_rng(0)
    # floats across the exponent switch points of Python (1e-4, 1e16) and arrow, whole numbers,
    # signed zeros, NaN / inf
    f = g.exponential(1, n) * 10.0 ** g.integers(-8, 20, n)
    f[:12] = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1e16,
        1e15,
        1e-4,
        1e-5,
        np.nan,
        np.inf,
        -np.inf,
        862798306006.3302,
    ]
    return pd.DataFrame(
        {
            "f": f,
            "money": np.round(g.exponential(80, n), 2),
            "rate": np.round(g.random(n), 4),
            "i": g.integers(-(10**12), 10**12, n),
            "cat": pd.Categorical.from_codes(g.integers(0, 3, n), ["a", "bb", "c c"]),
            "s": pd.Series(np.array(["x", "", "Ünï"], dtype=object)[g.integers(0, 3, n)]).where(
                g.random(n) < 0.9
            ),
            "day": (
                pd.Timestamp("2025-01-01") + pd.to_timedelta(g.integers(0, 700, n), unit="D")
            ).where(g.random(n) < 0.95),
            "ts": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(g.integers(0, 700 * 86400, n), unit="s"),
            "b": g.random(n) < 0.5,
        }
    )


def test_same_bytes_as_pandas(tmp_path):
    df = _frame()
    write_csv(df, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == _pandas_bytes(df, tmp_path / "ref.csv")


def test_quoted_cells_same_bytes_without_pandas(tmp_path, monkeypatch):
    """Cells with a comma or a quote (e.g. the customers' action reasons) keep the fast path."""
    df = _frame()
    g = np.random.default_rng(1)
    words = np.array(["plain", "a, b", 'say "hi"', '"', ",", ""], dtype=object)
    df["q"] = pd.Series(words[g.integers(0, len(words), len(df))]).where(g.random(len(df)) < 0.9)
    ref = _pandas_bytes(df, tmp_path / "ref.csv")

    def no_pandas(*a, **k):
        raise AssertionError("fell back to pandas")

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_pandas)
    write_csv(df, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == ref


@pytest.mark.parametrize(
    "df",
    [
        pd.DataFrame({"a": ["x,y", 'q"'], "b": [1, 2]}),  # cells pandas quotes
        pd.DataFrame({"a": [b"x", "a"], "b": [1, 2]}),  # bytes print as b'x'
        pd.DataFrame({"a": [datetime.date(2020, 1, 1), "a"], "b": [1, 2]}),  # mixed objects
        pd.DataFrame({"a": pd.Series([1, None], dtype="Int64"), "b": [1.0, 2.5]}),
        pd.DataFrame(
            {
                "a": pd.to_datetime(
                    ["2025-01-01 00:00:00.5", "2025-01-02 00:00:00"], format="ISO8601"
                ),
                "b": [1.0, 2.5],
            }
        ),  # sub-second times
        pd.DataFrame({"a": [""]}),  # one column: csv quotes ""
        pd.DataFrame({"a,b": [1], "c": [2]}),  # a header that needs quotes
        pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=object)}),
    ],
    ids=["quotes", "bytes", "mixed", "nullable-int", "subsecond", "one-column", "header", "empty"],
)
def test_fallbacks_keep_pandas_bytes(tmp_path, df):
    write_csv(df, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == _pandas_bytes(df, tmp_path / "ref.csv")


@pytest.mark.parametrize("fmt", ["%.6g", "%.3f", "%.2e"])
def test_float_format_same_bytes_as_pandas(tmp_path, fmt):
    """The run directory's CSVs: ``to_csv(float_format="%.6g")`` (-0.0 stays "-0", NaN empty)."""
    df = _frame()
    df["g"] = df["f"].to_numpy()[::-1].copy()  # a second float column, same values elsewhere
    df["s"] = pd.Series(df["s"], dtype="string")  # pandas' string dtype, as detections carry
    write_csv(df, tmp_path / "fast.csv", float_format=fmt)
    df.to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n", float_format=fmt)
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_float_format_that_needs_quotes_falls_back(tmp_path):
    df = pd.DataFrame({"x": [1.5, np.nan, -2.25], "y": ["a", "b", "c"]})
    write_csv(df, tmp_path / "fast.csv", float_format="%.2f,")
    df.to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n", float_format="%.2f,")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    assert b'"1.50,"' in (tmp_path / "fast.csv").read_bytes()


@pytest.mark.parametrize("words", [["a\nb", "c", "d,e"], ["x", 'y"z'], ["p", "q"]],
                         ids=["line-break", "quote", "plain"])
@pytest.mark.parametrize("distinct", [False, True], ids=["few", "many"])
def test_string_columns_few_or_many_distinct(tmp_path, words, distinct):
    """Columns with few distinct values are checked and quoted once per value, others cell by
    cell; either way the bytes are pandas' (line breaks: pandas' own writer)."""
    n = 10_000
    g = np.random.default_rng(2)
    cells = np.array(words, dtype=object)[g.integers(0, len(words), n)]
    if distinct:
        cells = np.array([f"{c}{i}" for i, c in enumerate(cells)], dtype=object)
    df = pd.DataFrame({"s": pd.Series(cells).where(g.random(n) < 0.95),
                       "v": np.round(g.random(n), 2), "w": g.random(n)})
    write_csv(df, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == _pandas_bytes(df, tmp_path / "ref.csv")


@pytest.mark.parametrize("case", ["plain", "dates-then-times", "quotes-late", "line-break-late",
                                  "quotes-everywhere"])
@pytest.mark.parametrize("fmt", [None, "%.6g"])
def test_long_tables_written_in_parts_same_bytes(tmp_path, monkeypatch, case, fmt):
    """Tables longer than ``ROWS_PER_PART`` are rendered and written part by part: the same
    bytes, also when only a later part has date-times in a datetime column (pandas prints the
    whole column with times), cells to quote (every part's rows then joined by hand) or a line
    break (pandas' writer)."""
    import shocklab.fastcsv as fastcsv

    monkeypatch.setattr(fastcsv, "ROWS_PER_PART", 3_000)
    df = _frame(10_000)
    df["s"] = pd.Series(df["s"], dtype="string")
    day = df["day"].copy()
    if case == "dates-then-times":  # midnights in the first parts, one time in the last
        day.iloc[9_500] = pd.Timestamp("2025-03-01 12:30:00")
    df["day"] = day
    if case == "quotes-late":
        df.loc[9_000, "s"] = 'a "quoted", cell'
    if case == "line-break-late":
        df.loc[9_000, "s"] = "two\nlines"
    if case == "quotes-everywhere":
        df.loc[df.index % 7 == 0, "s"] = 'a, "b"'
    df.to_csv(tmp_path / "pandas.csv", index=False, lineterminator="\n", float_format=fmt)
    if case != "line-break-late":  # the fast path writes these (no pandas)
        def no_pandas(*a, **k):
            raise AssertionError("fell back to pandas")

        monkeypatch.setattr(pd.DataFrame, "to_csv", no_pandas)
    write_csv(df, tmp_path / "fast.csv", float_format=fmt)
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_quoted_rows_are_joined_a_slice_at_a_time(tmp_path, monkeypatch):
    """A table with cells to quote is joined by hand ``JOIN_ROWS`` rows at a time, never a whole
    part's text at once (memory: the customers' actions table, ~30 MB of text, took ~150 MB
    joined whole), with pandas' bytes."""
    import shocklab.fastcsv as fastcsv

    monkeypatch.setattr(fastcsv, "ROWS_PER_PART", 3_000)
    monkeypatch.setattr(fastcsv, "JOIN_ROWS", 700)
    df = _frame(10_000)
    df["s"] = pd.Series(df["s"], dtype="string")
    df.loc[df.index % 5 == 0, "s"] = 'a, "b"'
    joined: list[int] = []
    join = fastcsv.pc.binary_join_element_wise

    def spy(*args, **kw):
        if args[-1].as_py() == ",":  # a row's cells (not a cell's quotes, not a float's ".0")
            joined.append(len(args[0]))
        return join(*args, **kw)

    monkeypatch.setattr(fastcsv.pc, "binary_join_element_wise", spy)
    write_csv(df, tmp_path / "fast.csv")
    assert (tmp_path / "fast.csv").read_bytes() == _pandas_bytes(df, tmp_path / "ref.csv")
    assert max(joined) <= 700 and sum(joined) == len(df)


@pytest.mark.parametrize("large", [False, True])
def test_special_cell_check_reads_only_the_slice(large):
    """A part of a long column (an arrow slice) shares the whole column's character buffer: the
    quick check for cells to quote reads the part's own characters only (copying the whole
    buffer for every part cost the default run's writers ~0.2 s), so a comma in another part
    leaves it False, and one in the part, at its first or last cell, makes it True."""
    import pyarrow as pa

    from shocklab.fastcsv import _has_special

    words = ["plain"] * 1_000
    words[10] = "a,b"
    words[900] = 'say "hi"'
    arr = pa.array(words, type=pa.large_string() if large else pa.string())
    assert _has_special(arr)
    assert not _has_special(arr.slice(11, 800))     # both specials outside the slice
    assert _has_special(arr.slice(10, 5))           # the first cell
    assert _has_special(arr.slice(600, 301))        # the last cell
    assert not _has_special(arr.slice(500, 0))      # no cell at all
