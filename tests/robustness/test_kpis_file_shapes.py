"""`--kpis` files shaped in ways qa8 found unhandled: epoch-number timestamps (read as nanoseconds:
an 86-ns grid, every detector failing with a 51 TiB MemoryError, exit 0 with no detection), a file
without a header row (its first data row became the column names: a KPI named "1002.5"), a
duplicated column name (silently analysed twice as "signups" and "signups.1"), and 200 columns
(200 pandas PerformanceWarnings on stderr). Each bad one is exit 2 with one line naming it,
nothing written."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

DAYS = pd.date_range("2025-01-01", periods=60, freq="D")
VALUES = np.round(1000 + np.random.default_rng(0).normal(0, 20, len(DAYS)), 1)


def _bad(cli, tmp_path, path, *needles, args=None):
    """Exit 2, one line naming ``path`` and holding ``needles``, nothing written; ``args`` (default
    ``--kpis path``) is the rest of the command line."""
    r = cli("analysis", *(args or ("--kpis", path)), "--out", tmp_path / "run")
    line = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert len(line.splitlines()) == 1 and str(path) in line, line
    for n in needles:
        assert n in line, line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("scale", [10**9, 10**3])   # epoch seconds, epoch milliseconds … as ns
def test_epoch_number_timestamps_are_refused_with_a_hint(cli, tmp_path, scale):
    p = tmp_path / "epoch.csv"
    pd.DataFrame({"ts": DAYS.astype("int64") // scale, "signups": VALUES}).to_csv(p, index=False)
    _bad(cli, tmp_path, p, "'ts'", "numbers", "ISO 8601")


def test_a_file_without_a_header_row_is_refused(cli, tmp_path):
    p = tmp_path / "nohdr.csv"
    p.write_text("\n".join(f"{d:%Y-%m-%d},{v}" for d, v in zip(DAYS, VALUES, strict=True)) + "\n")
    _bad(cli, tmp_path, p, "header")


def test_a_duplicated_column_name_is_refused(cli, tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("date,signups,signups\n" + "\n".join(
        f"{d:%Y-%m-%d},{v},{v}" for d, v in zip(DAYS, VALUES, strict=True)) + "\n")
    _bad(cli, tmp_path, p, "duplicate column name 'signups'")


def test_a_saved_row_index_is_refused_not_analysed(cli, tmp_path):
    """A frame saved with pandas' default ``to_csv(path)`` has a first column with no name: it
    was analysed as a KPI named 'Unnamed: 0' (0, 1, 2 …), and a one-series NAB file became two
    series, so its benchmark metrics were skipped. A time column without a name still reads."""
    p = tmp_path / "indexed.csv"
    pd.DataFrame({"timestamp": DAYS.strftime("%Y-%m-%d"), "value": VALUES}).to_csv(p)
    _bad(cli, tmp_path, p, "column 1 has no name", "row index")
    from analytics.external import load_kpis_file

    ok = tmp_path / "nameless_time.csv"
    pd.DataFrame({"": DAYS.strftime("%Y-%m-%d"), "value": VALUES}).to_csv(ok, index=False)
    assert load_kpis_file(ok).ingest["kpis"] == ["value"]


def test_many_columns_load_without_pandas_warnings(tmp_path):
    from analytics.external import load_kpis_file

    p = tmp_path / "wide.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"),
                  **{f"s{i}": VALUES + i for i in range(150)}}).to_csv(p, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_kpis_file(p)
    assert [str(w.message)[:60] for w in caught] == []
    kd = ds.tables["kpis_daily"]
    assert list(kd.columns) == ["date", "dimension", "segment", *[f"s{i}" for i in range(150)]]
    assert kd["s149"].to_numpy() == pytest.approx(VALUES + 149)


def test_day_first_dates_are_read_day_first_throughout(tmp_path):
    """'02/01/2025' was read month-first (1 February) and '13/01/2025' day-first (13 January) in
    one file: a daily series became a 12-day grid of mixed-up rows, exit 0. The column's order is
    decided once, as for --transactions."""
    from analytics.external import load_kpis_file

    p = tmp_path / "dmy.csv"
    pd.DataFrame({"date": DAYS.strftime("%d/%m/%Y"), "signups": VALUES}).to_csv(p, index=False)
    kd = load_kpis_file(p).tables["kpis_daily"]
    assert list(pd.to_datetime(kd["date"])) == list(DAYS)
    assert list(kd["signups"]) == list(VALUES)


def test_twelve_hour_timestamps_take_part_in_the_day_month_decision(tmp_path):
    """Timestamps with AM/PM ('02/01/2025 08:00 PM') were left out of the column's decision, so
    pandas read each alone: 1 February beside '13/01/2025 09:00 AM' (13 January), exit 0."""
    from analytics.external import load_kpis_file

    p = tmp_path / "ampm.csv"
    pd.DataFrame({"date": DAYS.strftime("%d/%m/%Y 08:00 PM"), "signups": VALUES}).to_csv(
        p, index=False)
    kd = load_kpis_file(p).tables["kpis_daily"]
    assert list(pd.to_datetime(kd["date"])) == list(DAYS + pd.Timedelta(hours=20))
    assert list(kd["signups"]) == list(VALUES)


@pytest.mark.parametrize(("dates", "needle"), [
    (["02/01/2025", "03/01/2025", "04/01/2025"], "'02/01/2025' (data row 1) could be day- or "
                                                 "month-first"),
    (["13/01/2025", "01/14/2025", "2025-01-15"], "both day-first ('13/01/2025', data row 1) and "
                                                 "month-first ('01/14/2025', data row 2)"),
])
def test_dates_whose_day_month_order_nothing_decides_are_refused(tmp_path, dates, needle):
    from analytics.external import load_kpis_file
    from shocklab.errors import InputError

    p = tmp_path / "amb.csv"
    pd.DataFrame({"date": dates, "signups": VALUES[: len(dates)]}).to_csv(p, index=False)
    with pytest.raises(InputError, match="column 'date'") as exc:
        load_kpis_file(p)
    assert needle in str(exc.value) and str(p) in str(exc.value)


def test_a_value_too_large_to_add_up_is_refused(tmp_path):
    """-1e308 is finite, but a week of it sums to -inf: the run died with exit 3 (a pydantic
    error on the seasonality profile) instead of naming the value."""
    from analytics.external import load_kpis_file
    from shocklab.errors import InputError

    p = tmp_path / "huge.csv"
    vals = VALUES.copy()
    vals[4] = -1e308
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "revenue": vals}).to_csv(p, index=False)
    with pytest.raises(InputError, match=r"column 'revenue' has a value too large to analyse: "
                                         r"-1e\+308 \(data row 5; at most ±1e\+100\)"):
        load_kpis_file(p)
    vals[4] = 1e99  # large, but its sums and squares stay finite
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "revenue": vals}).to_csv(p, index=False)
    assert load_kpis_file(p).tables["kpis_daily"]["revenue"].max() == 1e99


def _encoded(text: str, how: str) -> bytes:
    if how == "utf-16-le":   # Excel's "Unicode text" on Windows: ff fe, then little-endian
        return b"\xff\xfe" + text.encode("utf-16-le")
    if how == "utf-16-be":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(how)  # utf-8-sig: ef bb bf


@pytest.mark.parametrize(("how", "sep"), [("utf-16-le", "\t"), ("utf-16-le", ","),
                                          ("utf-16-be", "\t"), ("utf-8-sig", ",")])
def test_a_utf16_or_bom_export_reads_like_the_utf8_file(tmp_path, how, sep):
    """Excel's "Unicode text" export (UTF-16 with a byte-order mark, tab-separated) was exit 2
    "cannot read ('utf-8' codec can't decode byte 0xff …)"; a UTF-8 mark must keep working."""
    from analytics.external import load_kpis_file

    frame = pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "signups": VALUES,
                          "Révenue €": VALUES * 2})
    plain, exported = tmp_path / "plain.csv", tmp_path / "export.csv"
    frame.to_csv(plain, index=False)
    exported.write_bytes(_encoded(frame.to_csv(index=False, sep=sep), how))
    want = load_kpis_file(plain).tables["kpis_daily"]
    got = load_kpis_file(exported).tables["kpis_daily"]
    pd.testing.assert_frame_equal(got, want)


def test_a_utf16_export_with_a_repeated_column_is_still_refused(cli, tmp_path):
    p = tmp_path / "dup16.csv"
    p.write_bytes(_encoded("date\tsignups\tsignups\n" + "".join(
        f"{d:%Y-%m-%d}\t{v}\t{v}\n" for d, v in zip(DAYS, VALUES, strict=True)), "utf-16-le"))
    _bad(cli, tmp_path, p, "duplicate column name 'signups'")


def _long_rows(segment_of=lambda i, dim, seg: seg, kpi="signups"):
    rows = []
    for i, d in enumerate(DAYS.strftime("%Y-%m-%d")):
        for dim, seg in (("overall", "all"), ("channel", "web"), ("channel", "email")):
            rows.append((d, kpi, VALUES[i], dim, segment_of(i, dim, seg)))
    return pd.DataFrame(rows, columns=["timestamp", "kpi", "value", "dimension", "segment"])


def test_an_empty_segment_under_a_dimension_is_refused(cli, tmp_path):
    """It became segment 'all': a series 'channel all' beside 'web' and 'email', exit 0."""
    p = tmp_path / "long.csv"
    _long_rows(lambda i, dim, seg: "" if (i, seg) == (3, "email") else seg).to_csv(p, index=False)
    _bad(cli, tmp_path, p, "column 'segment' is empty in a 'channel' row (data row 12)")


def test_an_overall_row_with_another_segment_is_refused(cli, tmp_path):
    """'overall' with segment 'web' was kept as its own series 'overall web', exit 0."""
    p = tmp_path / "long.csv"
    _long_rows(lambda i, dim, seg: "web" if (i, dim) == (5, "overall") else seg).to_csv(
        p, index=False)
    _bad(cli, tmp_path, p, "column 'segment' is 'web' in an 'overall' row (data row 16)")


def test_overall_rows_may_leave_dimension_and_segment_empty(tmp_path):
    from analytics.external import load_kpis_file

    p = tmp_path / "long.csv"
    df = _long_rows()
    df.loc[df["dimension"] == "overall", ["dimension", "segment"]] = ""
    df.to_csv(p, index=False)
    kd = load_kpis_file(p).tables["kpis_daily"]
    assert set(zip(kd["dimension"], kd["segment"], strict=True)) == {
        ("overall", "all"), ("channel", "web"), ("channel", "email")}


def test_an_entirely_empty_kpi_column_is_refused(cli, tmp_path):
    """Read as numbers (all NaN), it made auto pick the wide layout: 'kpi' and 'value' were
    analysed as two series, exit 0."""
    p = tmp_path / "long.csv"
    _long_rows(kpi="").to_csv(p, index=False)
    _bad(cli, tmp_path, p, "column 'kpi' is empty (data row 1)")


@pytest.mark.parametrize("flag", ["--kpis", "--events"])
def test_a_first_row_with_more_fields_than_the_header_is_named(cli, tmp_path, flag):
    """pandas made the extra leading fields the row index and shifted the values: --kpis said
    "column 'date' holds numbers (np.int64(1) …)", --events "start/end are not dates"."""
    bad = tmp_path / "ragged.csv"
    if flag == "--kpis":
        bad.write_text("date,signups\n2025-01-01,1,2\n2025-01-02,3\n2025-01-03,4\n")
        args = ("--kpis", bad)
    else:
        bad.write_text("start,end\n2025-01-05,2025-01-06,x\n")
        good = tmp_path / "k.csv"
        pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "signups": VALUES}).to_csv(
            good, index=False)
        args = ("--kpis", good, "--events", bad)
    r = cli("analysis", *args, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"error: {bad}: data row 1 has more fields than the header's 2 "
                                f"(quote a value that holds a comma)"), r.stderr
    assert not (tmp_path / "run").exists()


def test_kpi_names_that_make_bad_file_names_still_get_their_plots(cli, tmp_path):
    """A 300-character KPI name: "plot plots/kpi_xxx….png not written: [Errno 36] File name too
    long" and a collapsed-layout warning; 'a/b' and 'a?b': one plot overwrote the other."""
    from analytics.report import plot_names

    long_name = "x" * 300
    p = tmp_path / "names.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), long_name: VALUES, "a/b": VALUES,
                  "a?b": VALUES + 1}).to_csv(p, index=False)
    r = cli("analysis", "--kpis", p, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr[-500:]
    written = sorted(f.name for f in (tmp_path / "run" / "plots").glob("kpi_*.png"))
    assert written == sorted(plot_names([long_name, "a/b", "a?b"])) and len(set(written)) == 3
    assert all(len(n.encode()) < 120 for n in written)
    assert plot_names(["revenue", "Révenue €"]) == ["kpi_revenue.png", "kpi_Révenue__.png"]


def _export(frame: pd.DataFrame, sep: str, decimal: str = ".") -> str:
    """``frame`` as Excel writes it in a locale: ``sep`` between fields, ``decimal`` in numbers."""
    return frame.to_csv(index=False, sep=sep, decimal=decimal)


@pytest.mark.parametrize(("sep", "decimal"), [(";", ","), (";", "."), ("\t", "."), ("|", ".")])
def test_a_semicolon_or_tab_export_reads_like_the_comma_file(tmp_path, sep, decimal):
    """A European Excel export ('date;signups' over '2025-01-01;1002,5') was exit 2 "the header
    is separated by ';', not commas"; without decimal commas (or tab-separated) it was one column
    'date;signups' and "not a date"."""
    from analytics.external import load_kpis_file

    frame = pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "signups": VALUES,
                          "Révenue, €": VALUES * 2, "orders": np.arange(len(DAYS))})
    plain, exported = tmp_path / "plain.csv", tmp_path / "export.csv"
    frame.to_csv(plain, index=False)
    exported.write_text(_export(frame, sep, decimal), encoding="utf-8")
    if decimal == ",":   # the file really holds decimal commas
        assert f";{str(VALUES[0]).replace('.', ',')};" in exported.read_text()
    want = load_kpis_file(plain).tables["kpis_daily"]
    got = load_kpis_file(exported).tables["kpis_daily"]
    pd.testing.assert_frame_equal(got, want)


def test_a_semicolon_export_analyses_like_the_comma_file(cli, tmp_path):
    """End to end: the same KPI values in kpis_daily.csv, exit 0."""
    frame = pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "signups": VALUES})
    plain, semi = tmp_path / "plain.csv", tmp_path / "semi.csv"
    frame.to_csv(plain, index=False)
    semi.write_text(_export(frame, ";", ","))
    for src, out in ((plain, "a"), (semi, "b")):
        r = cli("analysis", "--kpis", src, "--out", tmp_path / out, "--quiet",
                "--set", "insights.plots=false")
        assert r.returncode == 0, r.stderr[-500:]
    a = pd.read_csv(tmp_path / "a" / "kpis_daily.csv")
    b = pd.read_csv(tmp_path / "b" / "kpis_daily.csv")
    pd.testing.assert_frame_equal(a, b)
    assert b["signups"].tolist() == VALUES.tolist()


def test_a_long_semicolon_export_reads_decimal_commas_in_value(tmp_path):
    from analytics.external import load_kpis_file

    plain, semi = tmp_path / "plain.csv", tmp_path / "semi.csv"
    _long_rows().to_csv(plain, index=False)
    semi.write_text(_export(_long_rows(), ";", ","))
    pd.testing.assert_frame_equal(load_kpis_file(semi).tables["kpis_daily"],
                                  load_kpis_file(plain).tables["kpis_daily"])


def test_a_decimal_comma_export_reads_points_as_thousands(cli, tmp_path):
    """Excel in a decimal-comma locale groups thousands with points: 'orders' of '1.000' were
    read as 1.0 (the reader took the column for numbers), a thousandfold off, silently; where
    the file's numbers have decimal commas a point grouping nothing ('1.5') is named, not read."""
    from analytics.external import load_kpis_file

    days = [f"2025-01-{d:02d}" for d in range(1, 5)]
    semi, plain = tmp_path / "semi.csv", tmp_path / "plain.csv"
    sessions = ["1.200", "1.300", "1.250", "1.100"]   # a column the reader takes for floats
    semi.write_text("date;orders;revenue;sessions\n" + "".join(
        f"{d};{o};{r};{x}\n" for d, o, r, x in zip(days, ["1.000", "2.000", "3", "1.000.000"],
                                                   ["1.234,5", "2.000", "999,25", "12"],
                                                   sessions, strict=True)))
    plain.write_text("date,orders,revenue,sessions\n" + "".join(
        f"{d},{o},{r},{x}\n" for d, o, r, x in zip(days, [1000, 2000, 3, 1000000],
                                                   [1234.5, 2000, 999.25, 12],
                                                   [1200, 1300, 1250, 1100], strict=True)))
    pd.testing.assert_frame_equal(load_kpis_file(semi).tables["kpis_daily"],
                                  load_kpis_file(plain).tables["kpis_daily"], check_dtype=False)
    bad = tmp_path / "bad.csv"
    bad.write_text(semi.read_text().replace(";999,25", ";1.5"))
    _bad(cli, tmp_path, bad, "column 'revenue' must be numeric", "'1.5'", "data row 3",
         "a point groups thousands")


@pytest.mark.parametrize(("text", "needles"), [
    # one ';' and one ',' in the header and in the data row: which one separates?
    ("date;revenue, EUR\n2025-01-01;1,5\n2025-01-02;2,5\n",
     ("cannot tell the column separator", "',' and at ';'", "data row 1")),
    # ';'-separated with a decimal comma that is not a number ('1,2,3'): named, not guessed
    ("date;signups\n" + "".join(f"2025-01-{d:02d};{d},5\n" for d in range(1, 9))
     + "2025-01-09;1,2,3\n", ("column 'signups' must be numeric", "'1,2,3'", "data row 9")),
    # ragged: a data row with more ';' fields than the header
    ("date;signups\n2025-01-01;1;2\n2025-01-02;3\n2025-01-03;4\n",
     ("data row 1 has more fields than the header's 2", "holds a ';'")),
])
def test_an_ambiguous_or_garbled_separated_file_is_one_clear_line(cli, tmp_path, text, needles):
    p = tmp_path / "garbled.csv"
    p.write_text(text)
    _bad(cli, tmp_path, p, *needles)


@pytest.mark.parametrize(("char", "escaped"), [("\x07", r"\x07"), ("\x1b", r"\x1b"),
                                                ("\n", r"\n"), ("\x85", r"\x85")])
def test_a_control_character_in_a_segment_name_is_refused(cli, tmp_path, char, escaped):
    """'we\\x07b' came out as 'web' (or a quoted newline broke insights.md's lines): the name
    goes into file names, JSON and Markdown. Exit 2 naming the column, the row and the
    character escaped."""
    p = tmp_path / "long.csv"
    _long_rows(lambda i, dim, seg: f"we{char}b" if (i, seg) == (2, "web") else seg).to_csv(
        p, index=False)
    _bad(cli, tmp_path, p, "column 'segment'", f"control character {escaped}", "(data row 8)")


def test_a_control_character_in_a_dimension_or_kpi_name_is_refused(cli, tmp_path):
    p = tmp_path / "long.csv"
    df = _long_rows()
    df.loc[4, "dimension"] = "chan\x1bnel"
    df.to_csv(p, index=False)
    _bad(cli, tmp_path, p, "column 'dimension'", r"\x1b", "(data row 5)")
    df = _long_rows()
    df.loc[0, "kpi"] = "sign\x07ups"
    df.to_csv(p, index=False)
    _bad(cli, tmp_path, p, "column 'kpi'", r"\x07", "(data row 1)")
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "sign\x07ups": VALUES}).to_csv(
        p, index=False)
    _bad(cli, tmp_path, p, "column name 'sign\\x07ups'", r"\x07", "(header)")


def test_a_control_character_in_a_transactions_country_is_refused(cli, tmp_path):
    from tests.robustness.txgen import transactions, write_csv

    df = transactions(n_rows=300, days=30)
    df.loc[6, "Country"] = "Fra\x07nce"
    p = write_csv(df, tmp_path / "tx.csv")
    r = cli("analysis", "--transactions", p, "--out", tmp_path / "run")
    line = r.stderr.strip()
    assert r.returncode == 2 and len(line.splitlines()) == 1, r.stderr[-500:]
    assert "column 'Country'" in line and r"\x07" in line and "(data row 7)" in line, line
    assert not (tmp_path / "run").exists()


def test_a_file_name_with_a_newline_stays_one_line_of_the_brief(cli, tmp_path):
    """The file's stem names the data in insights.md ("Data: <stem> · …"): a file named
    'k\\n# Injected.csv' wrote a Markdown heading of its own there (exit 0). File names are
    legitimate input: the name is shown escaped."""
    days = pd.date_range("2025-01-01", periods=90, freq="D")
    f = tmp_path / "k\n# Injected.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"),
                  "orders": np.random.default_rng(2).poisson(300, 90)}).to_csv(f, index=False)
    r = cli("analysis", "--kpis", f, "--out", tmp_path / "run", "--quiet",
            "--set", "insights.plots=false")
    assert r.returncode == 0, r.stderr
    md = (tmp_path / "run" / "insights.md").read_text()
    assert "# Injected" not in md.splitlines()
    assert any(ln.startswith("Data: k\\n# Injected · ") for ln in md.splitlines()), md[:300]
