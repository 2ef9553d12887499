"""Session 43's customers audit: day-first dates with a UTC offset, fractional seconds or a
trailing zone word (``01/12/2010 11:18+0000``, ``… UTC``) missed the day-/month-first decision
and went to pandas' month-first guess, with exit 0: 1 December read as 12 January, the layout
reported "iso", nothing ambiguous, and December's first days left out as date outliers. A
``--date-format`` with ``%z`` was exit 3 (a time-zone-aware column) or, with summer-time offsets,
exit 2 "not a usable format" though the format was right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.robustness.txgen import transactions

from analytics.transactions import load_transactions, parse_dates
from shocklab.errors import InputError

T = pd.Timestamp

# (layout, suffix) per variant; each text is '01/12/2010 …' (1 December) and '13/12/2010 …'
DAY_FIRST = {
    "offset": ("%d/%m/%Y %H:%M", "+0100"),
    "space_colon_offset": ("%d/%m/%Y %H:%M", " +01:00"),
    "z": ("%d/%m/%Y %H:%M:%S", "Z"),
    "seconds_offset": ("%d/%m/%Y %H:%M:%S", "+0100"),
    "twelve_hour_offset": ("%d/%m/%Y %I:%M %p", " +0100"),
    "fraction": ("%d/%m/%Y %H:%M:%S.250", ""),
    "utc_word": ("%d/%m/%Y %H:%M", " UTC"),
    "fraction_offset": ("%d/%m/%Y %H:%M:%S,5", "-05:00"),
}


@pytest.mark.parametrize("variant", sorted(DAY_FIRST))
def test_day_first_dates_with_a_zone_or_fraction_take_part_in_the_layout(variant):
    fmt, suffix = DAY_FIRST[variant]
    stamps = [T("2010-12-01 11:18"), T("2010-12-13 07:29"), T("2011-01-02 23:30")]
    ts = pd.Series([s.strftime(fmt) + suffix for s in stamps])
    got, rep = parse_dates(ts)
    assert rep["layout"] == "day-first" and rep["unparsed_rows"] == 0
    assert got.dt.normalize().tolist() == [s.normalize() for s in stamps]
    assert got.iloc[2] == T("2011-01-02 23:30") + (pd.Timedelta("250ms")
                                                   if variant == "fraction" else
                                                   pd.Timedelta("500ms")
                                                   if variant == "fraction_offset" else
                                                   pd.Timedelta(0))
    assert rep.get("utc_offsets_dropped", 0) == (0 if variant == "fraction" else 3)


def test_month_first_dates_with_an_offset_are_counted_as_ambiguous():
    """Read right only by pandas' default before, their ambiguity never counted nor warned."""
    got, rep = parse_dates(pd.Series(["03/04/2011 10:00+0100", "04/03/2011 11:00+0100"]))
    assert rep["layout"] == "month-first" and rep["ambiguous_rows"] == 2
    assert got.tolist() == [T("2011-03-04 10:00"), T("2011-04-03 11:00")]
    _, rep = parse_dates(pd.Series(["03/04/2011 10:00+0100", "12/25/2011 11:00+0000"]))
    assert rep["layout"] == "month-first" and rep["ambiguous_rows"] == 0
    with pytest.raises(InputError, match="both day-first .* and month-first"):
        parse_dates(pd.Series(["25/01/2011 10:00+0000", "01/25/2011 10:00 UTC"]))


def _summer_file(tmp_path, fmt: str, suffix_summer: str, suffix_winter: str):
    df = transactions(n_rows=600, days=200, start="2010-12-01")   # December to June
    stamp = pd.to_datetime(df["InvoiceDate"])
    df["InvoiceDate"] = stamp.dt.strftime(fmt) + np.where(
        (stamp.dt.month >= 4) & (stamp.dt.month <= 9), suffix_summer, suffix_winter)
    df.to_csv(tmp_path / "tx.csv", index=False)
    return tmp_path / "tx.csv", stamp


def test_a_day_first_file_with_summer_time_offsets_keeps_its_days(tmp_path):
    path, stamp = _summer_file(tmp_path, "%d/%m/%Y %H:%M", "+0100", "+0000")
    ds = load_transactions(path)
    c = ds.manifest["cleaning"]
    assert c["dates"]["layout"] == "day-first"
    assert c["dates"]["utc_offsets_dropped"] == len(stamp)
    assert c["removed"]["date_outlier"] == 0
    orders = ds.tables["orders"]
    assert orders["order_date"].min() == stamp.min().normalize()
    assert orders["order_date"].max() == stamp.max().normalize()
    truth = stamp.groupby(pd.read_csv(path, dtype=str)["Invoice"]).min().dt.normalize()
    got = orders.set_index("order_id")["order_date"]
    assert (got == truth.reindex(got.index)).all()   # every order on the day written


@pytest.mark.parametrize("fmt,suffixes", [
    ("%d/%m/%Y %H:%M:%S%z", ("+0100", "+0100")),       # one offset: was exit 3
    ("%d/%m/%Y %H:%M%z", ("+0100", "+0000")),          # summer time: was "not a usable format"
    ("%d/%m/%Y %H:%M %z", (" +01:00", " +00:00")),
    ("%d/%m/%Y %H:%M:%S%z", ("Z", "Z")),
])
def test_a_date_format_with_an_offset_reads_the_local_time(tmp_path, fmt, suffixes):
    base = fmt.replace("%z", "").strip()
    path, stamp = _summer_file(tmp_path, base, *suffixes)
    auto = load_transactions(path)
    given = load_transactions(path, date_format=fmt)
    d = given.manifest["cleaning"]["dates"]
    assert d["layout"] == f"--date-format {fmt}" and d["unparsed_rows"] == 0
    assert d["utc_offsets_dropped"] == len(stamp)
    pd.testing.assert_frame_equal(given.tables["orders"], auto.tables["orders"])
    assert given.tables["orders"]["order_date"].min() == stamp.min().normalize()


def test_a_date_format_with_an_offset_still_names_a_real_mismatch():
    with pytest.raises(InputError, match=r"--date-format '%Y-%m-%d %H:%M%z': matches none of "
                                         r"the InvoiceDate values \(first: '01/12/2010 "
                                         r"11:18\+0000'\)"):
        parse_dates(pd.Series(["01/12/2010 11:18+0000"]), "%Y-%m-%d %H:%M%z")
