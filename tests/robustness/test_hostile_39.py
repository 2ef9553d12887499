"""Session 39's hostile audit of `run_analysis.py --kpis`: files as shops, Google Analytics and
spreadsheets export them. Before: a Windows-1252 export was "cannot read ('utf-8' codec …)"; US
thousands separators ('1,003.77') and a tab-separated file's decimal commas were "must be
numeric"; GA's YYYYMMDD dates "numbers, not timestamps", its Date + Hour export read daily (24
"duplicates" a day averaged, the hour analysed as a KPI), its preamble a tokenizer error; ISO
weeks "not a timestamp"; a monthly file snapped to a 31-day grid that drifted off its months and
averaged two of them (exit 0, one warning line); trailing ',,' rows an empty timestamp. Each now
reads, or is exit 2 with one line naming what is wrong, nothing written."""

from __future__ import annotations

import logging
import zipfile

import numpy as np
import pandas as pd
import pytest
from tests.robustness.test_kpis_file_shapes import _bad  # exit 2, one line, nothing written

from analytics.external import load_kpis_file

DAYS = pd.date_range("2025-01-01", periods=60, freq="D")
REV = np.round(1000 + 300 * np.random.default_rng(0).random(len(DAYS)), 2)
ORDERS = np.arange(len(DAYS)) + 1000


def _frame(ds, col):
    return ds.tables["kpis_daily"][col].to_numpy()


def _write(path, header, rows, sep=",", encoding="utf-8"):
    path.write_bytes((sep.join(header) + "\n" + "".join(
        sep.join(r) + "\n" for r in rows)).encode(encoding))
    return path


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_a_western_european_export_reads_with_its_names(tmp_path, encoding):
    """Excel's CSV in a Western European locale is Windows-1252 (or Latin-1): read like the
    --transactions reader does, the name keeps its '€' / 'Ø'."""
    name = "Umsatz (€)" if encoding == "cp1252" else "Umsatz (Ø)"
    p = _write(tmp_path / "de.csv", ["Datum", name],
               [[f"{d:%Y-%m-%d}", f"{v:.2f}".replace(".", ",")] for d, v in zip(
                   DAYS, REV, strict=True)], sep=";", encoding=encoding)
    ds = load_kpis_file(p)
    np.testing.assert_allclose(_frame(ds, name), REV)


@pytest.mark.parametrize("sep", [",", "\t", "|"])
def test_thousands_commas_are_read_where_the_file_proves_them(tmp_path, sep):
    q = '"' if sep == "," else ""
    p = _write(tmp_path / "us.csv", ["date", "revenue", "orders"],
               [[f"{d:%Y-%m-%d}", f"{q}{v * 1000:,.2f}{q}", f"{q}{o:,}{q}"]
                for d, v, o in zip(DAYS, REV, ORDERS, strict=True)], sep=sep)
    ds = load_kpis_file(p)
    np.testing.assert_allclose(_frame(ds, "revenue"), np.round(REV * 1000, 2))
    np.testing.assert_array_equal(_frame(ds, "orders"), ORDERS)


def test_a_comma_file_groups_thousands_even_without_a_decimal_part(tmp_path):
    """Google Analytics' '1,234' sessions: a decimal-comma locale does not write ','-separated
    files, so in one a comma between digits groups thousands."""
    p = _write(tmp_path / "ga.csv", ["date", "sessions"],
               [[f"{d:%Y-%m-%d}", f'"{o:,}"'] for d, o in zip(DAYS, ORDERS, strict=True)])
    np.testing.assert_array_equal(_frame(load_kpis_file(p), "sessions"), ORDERS)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_tab_file_with_decimal_commas_reads_them(tmp_path, encoding):
    """Excel's "Text (tab delimited)" / "Unicode text" exports in a decimal-comma locale."""
    p = _write(tmp_path / "de.txt", ["date", "revenue", "orders"],
               [[f"{d:%Y-%m-%d}", f"{v:.2f}".replace(".", ","), str(o)]
                for d, v, o in zip(DAYS, REV, ORDERS, strict=True)], sep="\t",
               encoding=encoding)
    ds = load_kpis_file(p)
    np.testing.assert_allclose(_frame(ds, "revenue"), REV)
    np.testing.assert_array_equal(_frame(ds, "orders"), ORDERS)


def test_a_tab_files_lone_grouping_comma_is_refused_not_guessed(cli, tmp_path):
    """'1,234' in a tab file could be 1234 or 1.234 and no number decides: exit 2 saying so."""
    p = _write(tmp_path / "amb.tsv", ["date", "orders"],
               [[f"{d:%Y-%m-%d}", f"{o:,}"] for d, o in zip(DAYS, ORDERS, strict=True)],
               sep="\t")
    _bad(cli, tmp_path, p, "'orders'", "'1,000'", "data row 1", "1234 or 1.234")


def test_both_comma_styles_in_one_file_is_refused(cli, tmp_path):
    p = _write(tmp_path / "mix.tsv", ["date", "revenue", "cost"],
               [[f"{d:%Y-%m-%d}", f"{v:.2f}".replace(".", ","), f"{v * 10:,.2f}"]
                for d, v in zip(DAYS, REV, strict=True)], sep="\t")
    _bad(cli, tmp_path, p, "decimal comma", "grouping thousands", "'revenue'", "'cost'")


@pytest.mark.parametrize("value", ["$1,003.77", "1.22%", "1003.77 €", "EUR 1003.77"])
def test_currency_and_percent_signs_get_a_hint(cli, tmp_path, value):
    p = _write(tmp_path / "sym.csv", ["date", "revenue"],
               [[f"{d:%Y-%m-%d}", f'"{value}"'] for d in DAYS])
    _bad(cli, tmp_path, p, "'revenue'", "data row 1", "currency symbol")


def test_ga_yyyymmdd_dates_read_as_dates(tmp_path):
    p = _write(tmp_path / "ga.csv", ["Date", "sessions"],
               [[f"{d:%Y%m%d}", str(o)] for d, o in zip(DAYS, ORDERS, strict=True)])
    ds = load_kpis_file(p)
    assert (ds.tables["kpis_daily"]["date"].to_numpy() == DAYS.to_numpy()).all()
    assert ds.ingest["step"] == str(pd.Timedelta("1D"))


def test_epoch_seconds_stay_refused_beside_yyyymmdd(cli, tmp_path):
    p = _write(tmp_path / "epoch.csv", ["ts", "sessions"],
               [[str(d.value // 10**9), str(o)] for d, o in zip(DAYS, ORDERS, strict=True)])
    _bad(cli, tmp_path, p, "holds numbers", "ISO 8601")


def test_ga4_date_and_hour_columns_make_one_hourly_timestamp(tmp_path, caplog):
    """Before: 24 'duplicate' rows a day averaged into a daily series, 'Hour' a KPI."""
    hours = pd.date_range("2025-03-01", periods=24 * 10, freq="h")
    vals = np.arange(len(hours), dtype=float)
    p = _write(tmp_path / "ga4.csv", ["Date", "Hour", "sessions"],
               [[f"{t:%Y%m%d}", f"{t:%H}", f"{v:g}"] for t, v in zip(hours, vals, strict=True)])
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(p)
    assert ds.ingest["step"] == str(pd.Timedelta("1h")) and ds.ingest["duplicate_rows"] == 0
    assert ds.ingest["kpis"] == ["sessions"]
    np.testing.assert_array_equal(_frame(ds, "sessions"), vals)
    assert "'Hour' (0-23) read as the hour of the day" in caplog.text


def test_a_ga_preamble_is_named_not_a_tokenizer_error(cli, tmp_path):
    p = tmp_path / "ga.csv"
    p.write_text("# ----------------------------------------\n# All Web Site Data\n"
                 "# 20250101-20250301\n\nDay Index,Sessions\n"
                 + "".join(f"{d:%m/%d/%y},{o}\n" for d, o in zip(DAYS, ORDERS, strict=True)))
    _bad(cli, tmp_path, p, "line 1 is a comment", "preamble", "header row first")


def test_iso_weeks_read_as_their_mondays(tmp_path):
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    p = _write(tmp_path / "w.csv", ["week", "revenue"],
               [[f"{t.isocalendar()[0]}-W{t.isocalendar()[1]:02d}", "1"] for t in weeks])
    ds = load_kpis_file(p)
    assert (ds.tables["kpis_daily"]["date"].to_numpy() == weeks.to_numpy()).all()
    assert ds.ingest["step"] == str(pd.Timedelta("7D"))


def test_an_iso_week_the_year_lacks_is_named(cli, tmp_path):
    p = _write(tmp_path / "w.csv", ["week", "revenue"],
               [["2025-W50", "1"], ["2025-W51", "2"], ["2025-W52", "3"], ["2025-W53", "4"]])
    _bad(cli, tmp_path, p, "'2025-W53' is no ISO week", "data row 4")


@pytest.mark.parametrize("fmt", ["%Y-%m", "%Y-%m-%d"])
def test_monthly_rows_are_refused_not_drifted_and_averaged(cli, tmp_path, fmt):
    """On the modal 31-day grid 46 of 48 months snapped and two were averaged into one period,
    exit 0 with one warning line."""
    months = pd.date_range("2020-01-01", periods=48, freq="MS")
    p = _write(tmp_path / "m.csv", ["month", "revenue"],
               [[f"{t:{fmt}}", f"{v:.2f}"] for t, v in zip(months, np.arange(48.0), strict=True)])
    _bad(cli, tmp_path, p, "'month'", "28 to 31 days apart", "averaged", "--step")
    ds = load_kpis_file(p, step="30D")   # a forced step is the user's choice
    assert ds.ingest["step"] == str(pd.Timedelta("30D"))


def test_weekly_and_four_weekly_rows_still_read(tmp_path):
    for freq in ("7D", "28D"):
        t = pd.date_range("2024-01-01", periods=20, freq=freq)
        p = _write(tmp_path / f"{freq}.csv", ["date", "revenue"],
                   [[f"{d:%Y-%m-%d}", "1"] for d in t])
        assert load_kpis_file(p).ingest["step"] == str(pd.Timedelta(freq))


def test_trailing_empty_rows_are_left_out(tmp_path, caplog):
    p = tmp_path / "t.csv"
    p.write_text("date,revenue\n" + "".join(f"{d:%Y-%m-%d},{v}\n" for d, v in zip(
        DAYS, REV, strict=True)) + ",\n,\n")
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(p)
    assert ds.ingest["rows"] == len(DAYS)
    assert "2 empty row(s) after data row 60 left out" in caplog.text


def test_an_empty_row_inside_the_data_stays_an_error(cli, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("date,revenue\n2025-01-01,1\n,\n2025-01-03,2\n2025-01-04,3\n")
    _bad(cli, tmp_path, p, "'date' has an empty value (data row 2)")


def test_a_capitalised_store_kpi_name_is_said_to_be_a_gauge(tmp_path, caplog):
    """GA's 'Sessions' is no store 'sessions': its day is a mean; the run now says so."""
    p = _write(tmp_path / "ga.csv", ["date", "Sessions", "Conversion Rate"],
               [[f"{d:%Y-%m-%d}", str(o), "0.02"] for d, o in zip(DAYS, ORDERS, strict=True)])
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(p)
    assert ds.ingest["day_figures"] == {"Sessions": "mean", "Conversion Rate": "mean"}
    assert "'Sessions' is read as a gauge" in caplog.text and "--sum-columns 'Sessions'" in \
        caplog.text
    assert "rename it 'conversion_rate'" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        load_kpis_file(p, sum_columns=["Sessions"])
    assert "'Sessions' is read as a gauge" not in caplog.text


def test_a_zip_of_one_csv_reads(tmp_path):
    p = tmp_path / "k.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("k.csv", "date,revenue\n" + "".join(
            f"{d:%Y-%m-%d},{v}\n" for d, v in zip(DAYS, REV, strict=True)))
    np.testing.assert_allclose(_frame(load_kpis_file(p), "revenue"), REV)


def test_one_stray_timestamp_is_named_not_a_grid_of_gaps(cli, tmp_path):
    """A 1970-01-01 row before 60 days of 2025 made a grid of ~20,000 days, 99.7 % gaps,
    analysed with one warning line (the old guard allows 50,000 periods to a small file)."""
    p = tmp_path / "stray.csv"
    p.write_text("date,revenue\n" + "".join(f"{d:%Y-%m-%d},{v}\n" for d, v in zip(
        DAYS, REV, strict=True)) + "1970-01-01,5\n")
    _bad(cli, tmp_path, p, "a gap of", "after 1970-01-01", "data rows 61 and 1",
         "fix the timestamp")
    ds = load_kpis_file(p, step="1D")   # a step given is the user's: the gaps are kept
    assert ds.ingest["periods"] > 20000


def test_a_weekday_only_file_keeps_its_gaps(tmp_path):
    """Sparse but regular (weekends missing: 71 % full) is no stray timestamp."""
    days = DAYS[DAYS.day_of_week < 5]
    p = _write(tmp_path / "wd.csv", ["date", "revenue"], [[f"{d:%Y-%m-%d}", "1"] for d in days])
    span = (days[-1] - days[0]).days + 1
    assert load_kpis_file(p).ingest["missing_periods"] == span - len(days) == 16


def test_header_names_are_trimmed(tmp_path):
    p = _write(tmp_path / "ws.csv", [" date ", " revenue "],
               [[f"{d:%Y-%m-%d}", f"{v}"] for d, v in zip(DAYS, REV, strict=True)])
    ds = load_kpis_file(p, sum_columns=["revenue"])
    assert ds.ingest["kpis"] == ["revenue"] and ds.ingest["day_figures"] == {"revenue": "sum"}


@pytest.mark.parametrize(("sep", "group", "point"), [
    (";", "\u202f", ","), (";", " ", ","), (";", "\u00a0", ","), (",", "'", "."), ("\t", " ", ".")])
def test_thousands_grouped_by_spaces_or_apostrophes_read(tmp_path, sep, group, point):
    """French (narrow no-break space, '10 037,70') and Swiss ("10'037.70") groupings."""
    p = _write(tmp_path / "g.csv", ["date", "revenue"],
               [[f"{d:%Y-%m-%d}", f"{v * 10:,.2f}".replace(".", "P").replace(",", group)
                 .replace("P", point)] for d, v in zip(DAYS, REV, strict=True)], sep=sep)
    np.testing.assert_allclose(_frame(load_kpis_file(p), "revenue"), np.round(REV * 10, 2))


def test_a_text_column_in_a_wide_file_says_what_to_do(cli, tmp_path):
    p = _write(tmp_path / "t.csv", ["date", "country", "revenue"],
               [[f"{d:%Y-%m-%d}", "DE", f"{v}"] for d, v in zip(DAYS, REV, strict=True)])
    _bad(cli, tmp_path, p, "'country'", "'DE'", "every value is text", "dimension and segment")


def test_step_warnings_say_the_step_as_people_write_it(tmp_path, caplog):
    t = pd.date_range("2025-01-01", periods=300, freq="5min").delete(range(10, 20))
    p = _write(tmp_path / "m.csv", ["ts", "cpu"], [[f"{x:%Y-%m-%d %H:%M}", "1"] for x in t])
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        load_kpis_file(p)
    assert "10 missing period(s) of 5 min" in caplog.text and "0 days" not in caplog.text


def test_a_calendar_range_of_centuries_is_named_not_an_internal_error(cli, tmp_path):
    """1700-01-01 to 2260-01-01: pandas' Timedelta overflowed in the range check (exit 3)."""
    kp = _write(tmp_path / "k.csv", ["date", "revenue"],
                [[f"{d:%Y-%m-%d}", f"{v}"] for d, v in zip(DAYS, REV, strict=True)])
    cal = tmp_path / "cal.csv"
    cal.write_text("date,end,name\n1700-01-01,2260-01-01,x\n")
    r = cli("analysis", "--kpis", kp, "--calendar", cal, "--out", tmp_path / "run")
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert "spans more than" in r.stderr and "data row 1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["date", None])
def test_a_parquet_file_indexed_by_its_timestamps_reads(tmp_path, name):
    """``df.set_index("date").to_parquet()``: the times came back as the index and the first KPI
    column was taken for the time ("holds numbers, not timestamps")."""
    p = tmp_path / "k.parquet"
    pd.DataFrame({"revenue": REV}, index=pd.DatetimeIndex(DAYS, name=name)).to_parquet(p)
    ds = load_kpis_file(p)
    assert ds.ingest["kpis"] == ["revenue"]
    np.testing.assert_allclose(_frame(ds, "revenue"), REV)


def test_a_numeric_segment_beside_a_text_dimension_is_a_slice(tmp_path):
    """Store numbers as segments ('store', 101): was "give both 'dimension' and 'segment'
    columns, or neither" of a file that had both."""
    p = _write(tmp_path / "s.csv", ["date", "dimension", "segment", "revenue"],
               [[f"{d:%Y-%m-%d}", "store", seg, f"{v}"] for d, v in zip(DAYS, REV, strict=True)
                for seg in ("101", "0102")])
    k = load_kpis_file(p).tables["kpis_daily"]
    assert sorted(set(zip(k["dimension"], k["segment"], strict=True))) == [
        ("store", "0102"), ("store", "101")]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_local_midnights_with_an_offset_keep_their_dates(tmp_path, caplog, kind):
    """A daily export at local midnight with its offset (+01:00, +02:00 after the DST change):
    converted to UTC every day was reported under the previous date (23:00 / 22:00)."""
    local = pd.date_range("2025-03-01", periods=60, freq="D", tz="Europe/Berlin")
    frame = pd.DataFrame({"date": local, "revenue": REV})
    p = tmp_path / f"d.{kind}"
    if kind == "csv":
        frame.assign(date=[t.isoformat() for t in local]).to_csv(p, index=False)
    else:
        frame.to_parquet(p)
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(p)
    dates = ds.tables["kpis_daily"]["date"]
    assert (dates.to_numpy() == local.tz_localize(None).to_numpy()).all()
    assert ds.ingest["resampled_rows"] == 0 and ds.ingest["_utc_offset"] is None
    assert "local midnights with a UTC offset" in caplog.text


def _local_times(tmp_path, local):
    """A file of ``local`` (tz-aware) times written with their offsets, and a value each."""
    p = tmp_path / "local.csv"
    pd.DataFrame({"ts": [t.isoformat() for t in local],
                  "v": np.arange(float(len(local)))}).to_csv(p, index=False)
    return p


def test_sub_daily_times_with_an_offset_are_still_converted_to_utc(tmp_path):
    local = pd.date_range("2025-03-29", periods=72, freq="h", tz="Europe/Berlin")
    ds = load_kpis_file(_local_times(tmp_path, local))
    assert ds.tables["kpis_daily"]["date"].iloc[0] == pd.Timestamp("2025-03-28 23:00")
    assert ds.ingest["_utc_offset"] == "+01:00"


def test_local_midnights_with_trailing_empty_rows(tmp_path):
    local = pd.date_range("2025-03-01", periods=60, freq="D", tz="Europe/Berlin")
    p = tmp_path / "d.csv"
    p.write_text("date,revenue\n" + "".join(f"{t.isoformat()},{v}\n" for t, v in zip(
        local, REV, strict=True)) + ",\n,\n")
    ds = load_kpis_file(p)
    first = ds.tables["kpis_daily"]["date"].iloc[0]
    assert ds.ingest["rows"] == 60 and first == local[0].tz_localize(None)


@pytest.mark.parametrize(("name", "needle"), [("k.xlsx", "spreadsheet workbook"),
                                              ("k.json", "a JSON file"),
                                              ("k.json.gz", "a JSON file")])
def test_a_workbook_or_json_export_is_named_not_tokenized(cli, tmp_path, name, needle):
    """An .xlsx was "cannot read (Error tokenizing data …)", a .json "table is empty"."""
    p = tmp_path / name
    p.write_bytes(b"PK\x03\x04" + b"\x00" * 64 if name.endswith("xlsx") else b'[{"date": 1}]')
    _bad(cli, tmp_path, p, needle, "CSV")


def test_a_four_weekly_cadence_drifting_by_a_dst_hour_is_no_calendar(tmp_path):
    local = pd.date_range("2024-01-05 09:00", periods=20, freq="28D", tz="Europe/Berlin")
    ds = load_kpis_file(_local_times(tmp_path, local))
    assert ds.ingest["step"] == str(pd.Timedelta("28D")) and ds.ingest["periods"] == 20
