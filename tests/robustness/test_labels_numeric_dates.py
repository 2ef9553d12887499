"""`--events` labels with numeric dates (a spreadsheet's `05/03/2025`) were read one cell at a
time, month-first unless the first number is above 12: `02/03/2025,05/03/2025` (2 to 5 March,
day-first) became 3 February to 3 May, a three-month window, silently; `10/03/2025,13/03/2025`
was "end 2025-03-13 is before start 2025-10-03". They are read as a KPI file's dates are: one
order for the whole file, proved by a number above 12; both orders, or only dates that could be
either, is exit 2 asking for ISO 8601."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaluation.labels import load_events_file
from shocklab.errors import InputError


def _windows(path):
    return [(e["start"][:10], e["end"][:10]) for e in load_events_file(path, ["signups"])]


def test_day_first_labels_are_read_day_first(tmp_path):
    ev = tmp_path / "ev.csv"
    ev.write_text("start,end\n10/03/2025,13/03/2025\n02/03/2025,05/03/2025 18:00\n")
    assert _windows(ev) == [("2025-03-10", "2025-03-13"), ("2025-03-02", "2025-03-05")]
    js = tmp_path / "ev.json"
    js.write_text(json.dumps([{"start": "10/03/2025", "end": "13/03/2025"}]))
    assert _windows(js) == [("2025-03-10", "2025-03-13")]


def test_day_first_labels_with_an_offset_or_fraction_take_part_in_the_order(tmp_path):
    """A label date with a UTC offset, a zone word or fractional seconds after the time missed
    the decision (the pattern allowed nothing after the time) and was read alone, month-first:
    '02/03/2025 10:00+0100' beside '13/03/2025 …' was 3 February (session 43, the label twin of
    the --transactions and --kpis finding)."""
    ev = tmp_path / "ev.csv"
    ev.write_text("start,end\n13/03/2025 10:00+0100,14/03/2025 12:00+0100\n"
                  "02/03/2025 10:00 UTC,05/03/2025 18:00 UTC\n"
                  "06/03/2025 10:00:00.000,07/03/2025 10:00:00.500\n")
    assert _windows(ev) == [("2025-03-13", "2025-03-14"), ("2025-03-02", "2025-03-05"),
                            ("2025-03-06", "2025-03-07")]


def test_month_first_labels_stay_month_first(tmp_path):
    ev = tmp_path / "ev.csv"
    ev.write_text("start,end\n03/10/2025,03/13/2025\n02/03/2025,2025-02-05\n")
    assert _windows(ev) == [("2025-03-10", "2025-03-13"), ("2025-02-03", "2025-02-05")]


@pytest.mark.parametrize("rows, says", [
    ("02/03/2025,05/03/2025", "[0].start '02/03/2025' could be day- or month-first"),
    ("13/03/2025,14/03/2025\n03/13/2025,03/14/2025",
     "both day-first ([0].start '13/03/2025') and month-first ([1].start '03/13/2025')"),
])
def test_undecidable_numeric_dates_are_one_line(tmp_path, rows, says):
    ev = tmp_path / "ev.csv"
    ev.write_text(f"start,end\n{rows}\n")
    with pytest.raises(InputError) as exc:
        load_events_file(ev, ["signups"])
    assert str(exc.value).startswith(f"{ev}: ") and says in str(exc.value)
    assert "ISO 8601" in str(exc.value)


def test_an_ambiguous_label_file_is_exit_2_and_writes_nothing(cli, tmp_path):
    days = pd.date_range("2025-01-01", periods=90, freq="D")
    f = tmp_path / "k.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"),
                  "signups": (100 + np.random.default_rng(0).normal(0, 2, 90)).round(2)}
                 ).to_csv(f, index=False)
    ev = tmp_path / "ev.csv"
    ev.write_text("start,end\n02/03/2025,05/03/2025\n")
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "02/03/2025" in r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fmt, label, want", [
    ("%d.%m.%Y %H:%M", "06.03.2025 04:00", "2025-03-06"),   # a German export and its labels
    ("%m/%d/%Y %I:%M %p", "03/06/2025 04:00", "2025-03-06"),  # a US one
])
def test_undecided_label_dates_follow_the_kpi_files_order(tmp_path, fmt, label, want):
    """Labels whose dates alone cannot say (06.03.2025) take the order the KPI file's own dates
    proved; an order the file contradicts is exit 2."""
    from analytics.external import load_kpis_file
    from evaluation.labels import labels_truth

    ts = pd.date_range("2025-03-01", periods=400, freq="h")
    f = tmp_path / "k.csv"
    pd.DataFrame({"timestamp": ts.strftime(fmt), "signups": np.arange(400.0)}).to_csv(
        f, index=False)
    ds = load_kpis_file(f)
    ev = tmp_path / "ev.csv"
    ev.write_text(f"start,end\n{label},{label[:11]}08:00\n")
    (e,) = labels_truth(ev, ds).events
    assert (e["start"], e["end"]) == (f"{want}T04:00:00", f"{want}T08:00:00")
    other = "03/13/2025" if "." in label else "13/03/2025"      # proves the other order
    ev.write_text(f"start,end\n{other},{other}\n")
    with pytest.raises(InputError, match="the KPI file's dates"):
        labels_truth(ev, ds)


def test_an_end_given_as_the_start_day_covers_it(tmp_path):
    """An end given as a day covers that day (docs/real-series.md): `2025-03-06 04:00,2025-03-06`
    was exit 2 "end 2025-03-06 00:00:00 is before start 2025-03-06 04:00:00"; an end on an
    earlier day still is."""
    ev = tmp_path / "ev.csv"
    ev.write_text("start,end\n2025-03-06 04:00,2025-03-06\n")
    (e,) = load_events_file(ev, ["signups"])
    assert (e["start"], e["end"]) == ("2025-03-06T04:00:00", "2025-03-06T00:00:00")
    ev.write_text("start,end\n2025-03-06 04:00,2025-03-05\n")
    with pytest.raises(InputError, match="is before start"):
        load_events_file(ev, ["signups"])


@pytest.mark.parametrize("value, want", [(False, False), ("false", False), ("FALSE", False),
                                         ("no", False), (0, False), (True, True), ("true", True),
                                         ("yes", True), (1, True)])
def test_a_labels_expected_flag_is_read_as_written(tmp_path, value, want):
    """JSON "expected": "false" was bool("false"), True: every label was a planned window and
    none was scored, without a word (docs audit 2026-12-05)."""
    js = tmp_path / "ev.json"
    js.write_text(json.dumps([{"start": "2025-03-10", "end": "2025-03-11", "expected": value}]))
    assert [e["expected"] for e in load_events_file(js, ["signups"])] == [want]


@pytest.mark.parametrize("suffix", ["json", "csv"])
def test_a_labels_expected_flag_it_cannot_read_is_exit_2(tmp_path, suffix):
    """A CSV's 'maybe' read as False, a JSON's as True."""
    p = tmp_path / f"ev.{suffix}"
    if suffix == "json":
        p.write_text(json.dumps([{"start": "2025-03-10", "end": "2025-03-11",
                                  "expected": "maybe"}]))
    else:
        p.write_text("start,end,expected\n2025-03-10,2025-03-11,maybe\n")
    with pytest.raises(InputError, match=r"\[0\]\.expected: expected true or false .*'maybe'"):
        load_events_file(p, ["signups"])


@pytest.mark.parametrize("flag", ["--events", "--calendar"])
def test_a_workbook_given_as_labels_or_calendar_says_save_it_as_csv(cli, tmp_path, flag):
    """--calendar cal.xlsx said "cannot read the calendar (Error tokenizing data …)", --events
    ev.xlsx "cannot read JSON (UnicodeDecodeError …)"; --kpis already named the workbook."""
    kpis = tmp_path / "k.csv"
    kpis.write_text("date,orders\n" + "".join(f"2025-01-{d:02d},{10 + d % 3}\n"
                                              for d in range(1, 29)))
    book = tmp_path / "sheet.xlsx"
    pd.DataFrame({"date": ["2025-01-05"], "name": ["sale"]}).to_excel(book, index=False)
    r = cli("analysis", "--kpis", kpis, flag, book, "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"sheet.xlsx: a spreadsheet workbook (.xlsx); {flag} reads" in r.stderr
    assert "save the sheet as CSV" in r.stderr and not (tmp_path / "run").exists()
