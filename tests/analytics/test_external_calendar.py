"""--kpis --calendar: the analyst's planned days (promotions, holidays, campaigns) do for a --kpis
run what a data directory's marketing_calendar does for a store run. Before, a --kpis run had no
way to take them: on shock-free daily exports of the TRAIN stores n1-n5, most remaining alerts
were planned days (README "Real series")."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pandas as pd
import pytest
import run_analysis

from analytics.external import load_kpis_file
from analytics.external_calendar import load_calendar
from runstore.store import RunStore
from shocklab.cli import run_cli
from shocklab.errors import InputError

SPIKE = 180   # the planned day (a promotion) of the daily file below


def cli(*args: str) -> int:
    return run_cli(run_analysis.main, list(args))


def _daily(tmp_path, days=240, seed=3, spike=SPIKE):
    """Shock-free daily store KPIs with one strong one-day promotion spike."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2025-01-01", periods=days, freq="D")
    sessions = rng.poisson(5000, days).astype(float)
    orders = rng.poisson(200, days).astype(float)
    revenue = orders * rng.normal(50, 1.5, days)
    sessions[spike] *= 1.6
    orders[spike] *= 1.9
    revenue[spike] *= 1.9
    p = tmp_path / "daily.csv"
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d"), "sessions": sessions, "orders": orders,
                  "revenue": revenue.round(2)}).to_csv(p, index=False)
    return p, t[spike]


def _incident_days(out):
    inc = json.loads((out / "incidents.json").read_text())["incidents"]
    return {d.date() for i in inc for d in pd.date_range(pd.Timestamp(i["start"]).normalize(),
                                                          pd.Timestamp(i["end"]).normalize())}


def test_planned_spike_is_flagged_without_the_calendar_and_not_with_it(tmp_path):
    path, day = _daily(tmp_path)
    bare = tmp_path / "bare"
    assert cli("--kpis", str(path), "--out", str(bare), "--quiet") == 0
    assert day.date() in _incident_days(bare)   # an unexpected incident without the calendar

    cal = tmp_path / "calendar.csv"   # the data directory's layout; a range row with `end`
    cal.write_text(f"date,end,name,kind,scope\n{day.date()},{(day + pd.Timedelta(days=1)).date()},"
                   "spring_sale,promotion,all\n2025-01-01,,new_year,holiday,\n")
    out = tmp_path / "planned"
    assert cli("--kpis", str(path), "--calendar", str(cal), "--out", str(out), "--quiet") == 0
    assert day.date() not in _incident_days(out)   # planned: not an incident
    ins = json.loads((out / "insights.json").read_text())
    unplanned = [e for e in ins["episodes"] if not e.get("planned")
                 and e["start"] <= str(day.date()) <= e["end"]]
    assert unplanned == []
    det = pd.read_csv(out / "detections.csv", parse_dates=["date"])
    assert not det.loc[det["date"] == day, "flag"].any()   # never flagged by any detector
    # the run records it and keeps a copy the dashboard/API read like a data directory's
    run = json.loads((out / "run.json").read_text())
    assert run["calendar"]["rows"] == 2 and run["calendar"]["days"] == 3
    assert run["calendar"]["days_in_period"] == 3
    assert run["run_id"] != json.loads((bare / "run.json").read_text())["run_id"]
    shown = RunStore(reports=tmp_path).run("planned").calendar()
    assert sorted(shown["date"]) == ["2025-01-01", str(day.date()),
                                     str((day + pd.Timedelta(days=1)).date())]
    assert set(shown["kind"]) == {"holiday", "promotion"}   # empty scope: the default (all)
    assert RunStore(reports=tmp_path).run("bare").calendar().empty


def _long(tmp_path):
    t = pd.date_range("2025-01-01", periods=60, freq="D").strftime("%Y-%m-%d")
    rows = [(d, "orders", 100.0 + i % 7, dim, seg) for i, d in enumerate(t)
            for dim, seg in (("overall", "all"), ("channel", "email"), ("channel", "direct"))]
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=["timestamp", "kpi", "value", "dimension", "segment"]).to_csv(
        p, index=False)
    return p


def test_scopes_on_a_long_file(tmp_path, caplog):
    ds = load_kpis_file(_long(tmp_path))
    cal = tmp_path / "c.csv"
    cal.write_text("date,scope,extra\n2025-01-10,channel=email,x\n2025-01-11,country=de,y\n")
    with caplog.at_level(logging.WARNING, logger="shocklab.analysis"):
        table, info = load_calendar(cal, ds.tables["kpis_daily"])
    assert list(table["scope"]) == ["channel=email", "country=de"]
    assert list(table["name"]) == ["planned", "planned"] and set(table["kind"]) == {"campaign"}
    assert info["rows_other_dimension"] == 1
    text = caplog.text
    assert "'extra' ignored" in text and "1 row(s) scoped to a dimension" in text
    from analytics.detectors.base import calendar_mask
    from analytics.kpis import to_long

    series = to_long(ds.tables["kpis_daily"], ["orders"], ["overall", "channel"])
    hit = series[calendar_mask(series, table)]
    # channel=email: the email slice and the overall series, not the direct channel; country=de
    # (a dimension the file lacks): every series
    assert set(zip(hit["date"].dt.day, hit["segment"], strict=True)) == {
        (10, "email"), (10, "all"), (11, "email"), (11, "all"), (11, "direct")}


def test_a_segment_holding_a_comma_is_named_as_written(tmp_path):
    """A country 'Korea, Republic of' could not be named: the scope was split at its comma
    ('no segment 'Korea'' or 'must be all or dimension=segment'), so its campaign days could
    only be given store-wide."""
    t = pd.date_range("2025-01-01", periods=60, freq="D").strftime("%Y-%m-%d")
    segs = ("Korea, Republic of", "Japan")
    rows = [(d, "orders", 100.0 + i % 7, dim, seg) for i, d in enumerate(t)
            for dim, seg in (("overall", "all"), *(("country", s) for s in segs),
                             ("channel", "email"), ("channel", "direct"))]
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=["timestamp", "kpi", "value", "dimension", "segment"]).to_csv(
        p, index=False)
    ds = load_kpis_file(p)
    cal = tmp_path / "c.csv"
    cal.write_text('date,scope\n2025-01-10,"country=Korea, Republic of"\n'
                   '2025-01-11,"country=Korea, Republic of,channel=email"\n')
    table, _ = load_calendar(cal, ds.tables["kpis_daily"])
    assert list(table["scope"]) == ["country=Korea, Republic of",
                                    "country=Korea, Republic of,channel=email"]
    from analytics.detectors.base import calendar_mask
    from analytics.kpis import to_long

    series = to_long(ds.tables["kpis_daily"], ["orders"], ["overall", "country", "channel"])
    hit = series[calendar_mask(series, table)]
    assert set(zip(hit["date"].dt.day, hit["segment"], strict=True)) == {
        (10, "all"), (10, "Korea, Republic of"), (10, "email"), (10, "direct"),
        (11, "all"), (11, "Korea, Republic of"), (11, "email")}
    cal.write_text('date,scope\n2025-01-10,"country=Korea, Republik"\n')
    with pytest.raises(InputError, match=r"no segment 'Korea, Republik' in dimension 'country' "
                                         r"\(it has Japan, Korea, Republic of\)"):
        load_calendar(cal, ds.tables["kpis_daily"])


@pytest.mark.parametrize("text,message", [
    (None, r"calendar file not found"),
    (b"\xff\xfe\x00bad\x00\xff\n\x00\x01", r"cannot read the calendar"),
    ("", r"calendar file is empty"),
    ("day,name\n2025-01-02,x\n", r"no 'date' column"),
    ("date,name\n2025-01-02,a\n2025-13-40,b\n", r"column 'date' is not a date: '2025-13-40' "
                                                r"\(data row 2"),
    ("date,name\n2025-01-02,a\n,b\n", r"column 'date' is empty \(data row 2\)"),
    ("date,end,name\n2025-01-05,2025-01-03,a\n", r"end 2025-01-03 is before date 2025-01-05 "
                                                 r"\(data row 1\)"),
    ("date,scope\n2025-01-05,channel=emial\n", r"no segment 'emial' in dimension 'channel' "
                                               r"\(it has direct, email\)"),
    ("date,scope\n2025-01-05,email\n", r"must be all or dimension=segment .*\(data row 1\)"),
    # a repeated column: read as 'date.1' and ignored with a warning, or (another case) the last
    # one silently replaced the first
    ("date,name,date\n2025-01-05,a,2025-01-06\n", r"cal\.csv: column 'date' appears twice$"),
    ("Date,name,date\n2025-01-05,a,2025-01-06\n", r"cal\.csv: column 'date' appears twice$"),
    # exit 3 before (qa10b): NaT has no normalize(); year 1 overflowed the nanosecond table
    ("date,name\nNaN,a\n", r"column 'date' is not a date: 'NaN' \(data row 1"),
    ("date,end,name\n0001-01-01,0001-01-02,a\n", r"column 'date': '0001-01-01' is out of range "
                                                  r"\(data row 1; dates between 1678 and 2261\)"),
    # pandas took the extra leading fields as an index: "column 'date' is not a date: 'b'"
    ("date,name\n2025-01-05,a,b,c\n", r"data row 1 has more fields than the header's 2"),
])
def test_bad_calendar_exit_2_one_line_nothing_written(tmp_path, capsys, text, message):
    cal = tmp_path / "cal.csv"
    if isinstance(text, bytes):
        cal.write_bytes(text)
    elif text is not None:
        cal.write_text(text)
    out = tmp_path / "run"
    assert cli("--kpis", str(_long(tmp_path)), "--calendar", str(cal), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not out.exists()


def test_calendar_needs_kpis(tmp_path, capsys):
    cal = tmp_path / "cal.csv"
    cal.write_text("date\n2025-01-02\n")
    out = tmp_path / "run"
    assert cli("--data", str(tmp_path), "--calendar", str(cal), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--calendar applies to --kpis only" in err, err
    assert not out.exists()


def test_load_calendar_raises_input_error_directly(tmp_path):
    ds = load_kpis_file(_long(tmp_path))
    with pytest.raises(InputError, match="is a directory"):
        load_calendar(tmp_path, ds.tables["kpis_daily"])


def test_a_planned_day_covers_every_period_of_a_sub_daily_file(tmp_path):
    """The consensus' own mute (consensus.mute_calendar) covers the planned day's 24 hours, not
    only its midnight: shown with the detectors' own mute switched off."""
    rng = np.random.default_rng(5)
    n = 24 * 21
    ts = pd.date_range("2025-03-01", periods=n, freq="h")
    value = 100 + 10 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.normal(0, 1, n)
    hot = (ts >= "2025-03-18 12:00") & (ts < "2025-03-18 16:00")
    value[hot] += 40
    path = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S"), "value": value}).to_csv(
        path, index=False)
    cal = tmp_path / "cal.csv"
    cal.write_text("date,name\n2025-03-18,launch\n")
    unmuted = ["--set", "detectors.rolling_zscore.mute_calendar=false",
               "--set", "detectors.isolation_forest.mute_calendar=false", "--quiet"]

    def planned_day_incidents(out, *extra):
        assert cli("--kpis", str(path), "--out", str(out), *unmuted, *extra) == 0
        inc = json.loads((out / "incidents.json").read_text())["incidents"]
        return [i for i in inc if i["start"].startswith("2025-03-18")]

    assert planned_day_incidents(tmp_path / "bare")   # the afternoon spike is an incident
    assert planned_day_incidents(tmp_path / "planned", "--calendar", str(cal)) == []


@pytest.mark.parametrize(("bom", "codec", "sep"), [
    (b"\xff\xfe", "utf-16-le", "\t"), (b"\xfe\xff", "utf-16-be", ","),
    (b"\xef\xbb\xbf", "utf-8", ","), (b"", "utf-8", ";"), (b"", "utf-8", "\t"),
])
def test_a_utf16_or_bom_calendar_reads_like_the_utf8_file(tmp_path, bom, codec, sep):
    """Excel's "Unicode text" export of a calendar (UTF-16 with a byte-order mark) was exit 2
    "cannot read the calendar ('utf-8' codec can't decode byte 0xff …)"; a ';'-separated (a
    decimal-comma locale's CSV) or tab-separated UTF-8 one had no 'date' column."""
    kd = load_kpis_file(_long(tmp_path)).tables["kpis_daily"]
    text = "date,end,name,kind,scope\n2025-01-10,2025-01-11,Fête,promotion,channel=email\n"
    plain, exported = tmp_path / "plain.csv", tmp_path / "export.csv"
    plain.write_text(text, encoding="utf-8")
    exported.write_bytes(bom + text.replace(",", sep).encode(codec))
    (want, _), (got, _) = load_calendar(plain, kd), load_calendar(exported, kd)
    pd.testing.assert_frame_equal(got, want)
    assert "Fête" in set(got["name"])
