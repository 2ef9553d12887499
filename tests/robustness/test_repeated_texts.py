"""Dates, quantities and prices are parsed once per distinct text and the rows take the result
(an invoice's lines share one time; a file holds a few thousand prices). What a row gets, what is
counted and which row an error or warning names must be what parsing row by row gave: counts are
of rows, not texts, and a "first" row is the first row."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from tests.robustness.txgen import transactions

from analytics.transactions import _number, load_transactions, parse_dates
from shocklab.errors import InputError

T = pd.Timestamp
NAT = pd.NaT


def test_repeated_and_distinct_texts_give_each_row_its_own_datetime():
    ts = pd.Series(["01/12/2009 07:45", " 01/12/2009 07:45", "01/12/2009 07:45", None,
                    "13/12/2009 10:00", "32/12/2009 10:00", "01/12/2009 07:45",
                    "2009-12-14 08:00:00", "32/12/2009 10:00", "13/12/2009 10:00 "],
                   index=[9, 8, 7, 6, 5, 4, 3, 2, 1, 0], name="InvoiceDate")
    got, rep = parse_dates(ts)
    assert got.index.tolist() == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    assert got.dtype == "datetime64[ns]"
    assert got.tolist() == [T("2009-12-01 07:45")] * 3 + [NAT, T("2009-12-13 10:00"), NAT,
                                                          T("2009-12-01 07:45"),
                                                          T("2009-12-14 08:00"), NAT,
                                                          T("2009-12-13 10:00")]
    # 4 rows (2 texts, one of them written twice) prove day-first; 2 rows (1 text) are no date
    assert rep == {"layout": "day-first", "detected_from": 4, "ambiguous_rows": 0,
                   "unparsed_rows": 2}


def test_the_first_ambiguous_date_is_the_first_row_and_rows_are_counted(caplog):
    ts = pd.Series(["2010-01-01 10:00:00"] * 3 + ["05/05/2011", "01/02/2011 10:00", "03/04/2011",
                                                  "01/02/2011 10:00", "01/02/2011 10:00"])
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        got, rep = parse_dates(ts)
    assert rep == {"layout": "month-first", "detected_from": 0, "ambiguous_rows": 4,
                   "first_ambiguous": {"row": 5, "value": "01/02/2011 10:00"},
                   "unparsed_rows": 0}
    assert got.tolist() == [T("2010-01-01 10:00")] * 3 + [
        T("2011-05-05"), T("2011-01-02 10:00"), T("2011-03-04"), T("2011-01-02 10:00"),
        T("2011-01-02 10:00")]
    assert "4 date(s) such as '01/02/2011 10:00' could be day- or month-first" in caplog.text


def test_both_orders_name_the_first_row_of_each_in_its_sheet():
    ts = pd.Series(["01/02/2011"] * 3 + ["25/01/2011 10:00"] * 2 + ["01/25/2011 10:00"] * 2)
    with pytest.raises(InputError) as e:
        parse_dates(ts, sheets=[("A", 4), ("B", 3)])
    assert str(e.value) == (
        "InvoiceDate: both day-first ('25/01/2011 10:00', sheet 'A' data row 4) and month-first "
        "('01/25/2011 10:00', sheet 'B' data row 2) dates in one file; pass --date-format")
    with pytest.raises(InputError) as e:
        parse_dates(ts.iloc[::-1].reset_index(drop=True))
    assert str(e.value) == (
        "InvoiceDate: both day-first ('25/01/2011 10:00', data row 3) and month-first "
        "('01/25/2011 10:00', data row 1) dates in one file; pass --date-format")


def test_utc_offsets_and_a_given_format_count_rows():
    ts = pd.Series(["2011-03-27T23:30:00+0100"] * 3 + ["2011-03-28 09:05Z", "2011-03-29 08:00",
                                                      "2011-03-27T23:30:00+0100"])
    got, rep = parse_dates(ts)
    assert got.tolist() == [T("2011-03-27 23:30")] * 3 + [T("2011-03-28 09:05"),
                                                          T("2011-03-29 08:00"),
                                                          T("2011-03-27 23:30")]
    assert rep["utc_offsets_dropped"] == 5 and rep["unparsed_rows"] == 0
    ts = pd.Series(["01/12/2009 07:45", "bad", "01/12/2009 07:45", None, "bad", "13/12/2009 10:00"])
    got, rep = parse_dates(ts, "%d/%m/%Y %H:%M")
    assert got.tolist() == [T("2009-12-01 07:45"), NAT, T("2009-12-01 07:45"), NAT, NAT,
                            T("2009-12-13 10:00")]
    assert rep == {"layout": "--date-format %d/%m/%Y %H:%M", "ambiguous_rows": 0,
                   "unparsed_rows": 2}
    with pytest.raises(InputError, match=r"matches none of the InvoiceDate values \(first: "
                                         r"'2009-12-01'\)"):
        parse_dates(pd.Series([None, "2009-12-01", "2009-12-01", "x"]), "%d/%m/%Y %H:%M")


def _day_first_file(path, bad_row=None, conflict_row=None):
    df = transactions(n_rows=600, days=60)   # ~2 lines per invoice: texts repeat
    df["InvoiceDate"] = df["InvoiceDate"].dt.strftime("%d/%m/%Y %H:%M")
    if bad_row is not None:
        df.loc[bad_row, "InvoiceDate"] = "31/02/2011 10:00"
    if conflict_row is not None:
        df.loc[conflict_row, "InvoiceDate"] = "01/25/2011 10:00"
    df.to_csv(path, index=False)
    return df


def test_a_file_of_repeated_dates_keeps_each_invoice_day_and_names_the_bad_row(tmp_path):
    f = tmp_path / "tx.csv"
    df = _day_first_file(f, bad_row=250)
    ds = load_transactions(f)
    rep = ds.manifest["cleaning"]
    assert rep["dates"]["layout"] == "day-first" and rep["dates"]["unparsed_rows"] == 1
    assert rep["dates"]["detected_from"] == int(
        (df["InvoiceDate"].str[:2].astype(int) > 12).sum())
    assert rep["bad_values"]["InvoiceDate"] == {"rows": 1, "first_row": 251,
                                                "value": "31/02/2011 10:00"}
    good = df.drop(index=250)
    want = pd.to_datetime(good.groupby("Invoice")["InvoiceDate"].min(), format="%d/%m/%Y %H:%M")
    got = ds.tables["orders"].set_index("order_id")["order_ts"]
    assert (got.reindex(want.index) == want).all() and got.notna().all()


def test_a_file_with_both_orders_is_one_line_exit_2_naming_file_column_and_rows(cli, tmp_path):
    f = tmp_path / "tx.csv"
    df = _day_first_file(f, conflict_row=400)
    first_day_first = int((df["InvoiceDate"].str[:2].astype(int) > 12).idxmax())
    assert first_day_first < 400
    out = tmp_path / "run"
    r = cli("analysis", "--transactions", f, "--out", out, "--quiet")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert (f"{f}: InvoiceDate: both day-first ({df['InvoiceDate'][first_day_first]!r}, data row "
            f"{first_day_first + 1}) and month-first ('01/25/2011 10:00', data row 401)") in line
    assert not out.exists()


def test_repeated_number_texts_give_each_row_its_number():
    col = pd.Series(["1.000", "2,55", "1.000", "2.5", None, "12.345,67", "2,55", " 3 ", "abc"],
                    index=list("abcdefghi"), dtype="str")
    nan = np.nan
    got = _number(col, decimal_comma=True, locale=True)   # a ';' file in a decimal-comma locale
    assert got.index.tolist() == list("abcdefghi") and got.dtype == "float64"
    np.testing.assert_array_equal(got.to_numpy(),
                                  [1000.0, 2.55, 1000.0, nan, nan, 12345.67, 2.55, 3.0, nan])
    got = _number(col, decimal_comma=True)                # a ';' file whose points are decimal
    np.testing.assert_array_equal(got.to_numpy(),
                                  [1.0, 2.55, 1.0, 2.5, nan, nan, 2.55, 3.0, nan])
    got = _number(pd.Series(["3", "3", "-1", "3"], dtype="str"), decimal_comma=False)
    assert got.dtype == "int64" and got.tolist() == [3, 3, -1, 3]
    got = _number(pd.Series(["3", "x", "3", "2.5"], dtype="str"), decimal_comma=False)
    np.testing.assert_array_equal(got.to_numpy(), [3.0, nan, 3.0, 2.5])
    # cells that are not text (1 and 1.0 are one value to a hash) are read one by one
    got = _number(pd.Series([1, 1.0, "2"], dtype=object), decimal_comma=False)
    assert got.dtype == "float64" and got.tolist() == [1.0, 1.0, 2.0]


def test_a_decimal_comma_file_names_the_first_of_its_repeated_bad_numbers(tmp_path):
    df = transactions(n_rows=300, days=40)
    df["InvoiceDate"] = df["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M:%S")
    df["Price"] = df["Price"].map(lambda x: f"{x:.2f}".replace(".", ","))
    df["Quantity"] = df["Quantity"].astype(str)
    df.loc[[40, 41], "Quantity"] = "1.000"
    df.loc[[70, 20, 90], "Quantity"] = "2.5"       # groups nothing: a bad value
    f = tmp_path / "tx.csv"
    df.to_csv(f, sep=";", index=False)
    ds = load_transactions(f)
    assert ds.manifest["cleaning"]["bad_values"]["Quantity"] == {"rows": 3, "first_row": 21,
                                                                 "value": "2.5"}
    items = ds.tables["order_items"].set_index(["order_id", "product_id"])
    for i in (40, 41):
        assert items.loc[(df.loc[i, "Invoice"], df.loc[i, "StockCode"]), "quantity"] >= 1000
    same = df.assign(Price=df["Price"].str.replace(",", ".", regex=False))
    same.loc[[40, 41], "Quantity"] = "1000"
    same.loc[[70, 20, 90], "Quantity"] = "x"
    same.to_csv(tmp_path / "same.csv", index=False)   # the same file, written with points
    ref = load_transactions(tmp_path / "same.csv")
    for name in ("orders", "order_items", "products"):
        pd.testing.assert_frame_equal(ds.tables[name], ref.tables[name])
