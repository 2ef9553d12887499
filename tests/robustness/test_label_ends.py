"""Label ends (`--events`): only an end written as a date covers its day; an end written with a
time is its instant, midnight too, in every label format; a reversed window is exit 2 in every
format; an unreadable date names its field and value."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from evaluation.labels import load_events_file
from evaluation.ts_metrics import label_windows
from shocklab.errors import InputError

DAY = pd.Timestamp("2015-09-16")
END_OF_DAY = pd.Timestamp("2015-09-16 23:59:59.999999")


def _kpis(tmp_path):
    """Five days of 5-minute values from 2014-04-10 14:00 (NAB's layout)."""
    g = np.random.default_rng(3)
    t = pd.date_range("2014-04-10 14:00", periods=5 * 288, freq="5min")
    d = tmp_path / "edge"
    d.mkdir(exist_ok=True)
    f = d / "win_end.csv"
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"),
                  "value": g.normal(50, 2, len(t)).round(3)}).to_csv(f, index=False)
    return f


def _ends(path, kpi_file=None) -> list[pd.Timestamp]:
    return [b for _, b in label_windows(load_events_file(path, ["value"], kpi_file=kpi_file))]


def test_an_end_written_with_a_time_is_its_instant_in_every_format(tmp_path):
    """2015-09-15 20:00 -> 2015-09-16 00:00:00 scored NAB standard 71.8 (found) as a CSV or
    ShockLab's list, -27.5 (missed) in NAB's layout: the CSV's and the list's end was stretched to
    the end of the 16th, as if written as a date."""
    kpi = tmp_path / "realTraffic" / "speed_7578.csv"
    files = {
        "mid.csv": "start,end\n2015-09-15 20:00:00,2015-09-16 00:00:00\n",
        "mid_list.json": json.dumps([{"start": "2015-09-15 20:00:00",
                                      "end": "2015-09-16T00:00:00"}]),
        "mid.json": json.dumps({"realTraffic/speed_7578.csv": [["2015-09-15 20:00:00",
                                                                 "2015-09-16 00:00:00"]]}),
        "numeric.csv": "start,end\n15/09/2015 20:00,16/09/2015 00:00\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert _ends(tmp_path / name, kpi) == [DAY], name


@pytest.mark.parametrize("end", ["2015-09-16", "16/09/2015", "20150916"])
def test_an_end_written_as_a_date_covers_its_day(tmp_path, end):
    p = tmp_path / "day.csv"
    p.write_text(f"start,end\n15/09/2015,{end}\n" if "/" in end else
                 f"start,end\n2015-09-15,{end}\n")
    events = load_events_file(p, ["value"])
    assert _ends(p) == [END_OF_DAY]
    assert events[0]["end_is_day"] is True


def test_the_scorecard_keeps_a_midnight_end_written_with_a_time(tmp_path):
    """The headline's matching (scoring.Event) and event_detail read the end as written:
    event_detail showed '2015-09-16' for '2015-09-16 00:00:00'."""
    from evaluation.scoring import Event, _window

    p = tmp_path / "mid.csv"
    p.write_text("start,end\n2015-09-15 20:00:00,2015-09-16 00:00:00\n"
                 "2015-09-17 20:00:00,2015-09-18\n")
    timed, dated = (Event.from_dict(e) for e in load_events_file(p, ["value"]))
    assert _window(timed, 0, 0)[1] == DAY
    assert _window(dated, 0, 0)[1] == pd.Timestamp("2015-09-18 23:59:59.999999")
    assert not timed.end_is_day and dated.end_is_day


def test_a_nab_window_ending_at_midnight_before_its_start_is_exit_2(cli, tmp_path):
    """['2014-04-11 16:15', '2014-04-11 00:00'] passed the check (a midnight end "covers that
    day") and was then dropped by the NAB score: exit 0, headline recall 1.00 with nab_windows 0.
    The day rule is for ends written as dates, which NAB's are not."""
    kpi = _kpis(tmp_path)
    ev = tmp_path / "rev.json"
    ev.write_text(json.dumps({"edge/win_end.csv": [["2014-04-11 16:15:00",
                                                     "2014-04-11 00:00:00"]]}))
    r = cli("analysis", "--kpis", kpi, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    # named by its entry's key (was "[0]", which of the file's 58 entries?)
    assert r.stderr.strip() == (f"error: {ev}: ['edge/win_end.csv'][0]: end 2014-04-11 00:00:00 "
                                "is before start 2014-04-11 16:15:00"), r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("end", ["2014-04-11 00:00", "2014-04-11T00:00:00", "2014-04-11 00"])
def test_a_timed_midnight_end_before_its_start_is_reversed_in_a_csv_too(tmp_path, end):
    p = tmp_path / "rev.csv"
    p.write_text(f"start,end\n2014-04-11 16:15,{end}\n")
    with pytest.raises(InputError, match="end 2014-04-11 00:00:00 is before start"):
        load_events_file(p, ["value"])
    p.write_text("start,end\n2014-04-11 16:15,2014-04-11\n")   # a date: that day, to its end
    assert _ends(p) == [pd.Timestamp("2014-04-11 23:59:59.999999")]


@pytest.mark.parametrize(("window", "says"), [
    (["2014-04-10 16:15:00", "2014-04-32 01:45:00"],
     "end '2014-04-32 01:45:00' is not a date (day is out of range for month; write"),
    (["yesterday", "2014-04-12 01:45:00"], "start 'yesterday' is not a date ("),
    (["0001-03-05", "2014-04-12"], "start '0001-03-05' is not a date between 1678 and 2261"),
])
def test_an_unreadable_label_date_names_its_field_and_value(tmp_path, window, says):
    """'[0]: start/end are not dates between 1678 and 2261' named neither."""
    p = tmp_path / "badts.json"
    p.write_text(json.dumps({"edge/win_end.csv": [window]}))
    with pytest.raises(InputError) as exc:
        load_events_file(p, ["value"], kpi_file=tmp_path / "edge" / "win_end.csv")
    assert str(exc.value).startswith(f"{p}: ['edge/win_end.csv'][0]: {says}"), exc.value
