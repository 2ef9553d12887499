"""Online Retail files (both layouts, CSV and XLSX) with dirty rows -> DataSet and cleaning
counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.outputs import write_artefacts
from analytics.transactions import load_transactions
from shocklab.errors import InputError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "transactions"

II_REMOVED = {"bad_value": 2, "exact_duplicate": 1, "missing_customer_id": 2, "cancellation": 2,
              "non_positive_quantity": 2, "non_positive_price": 1, "date_outlier": 0}


def test_online_retail_ii_layout_csv():
    ds = load_transactions(FIX / "online_retail_ii.csv")
    rep = ds.manifest["cleaning"]
    assert ds.source == "transactions" and ds.manifest["layout"] == "online_retail_ii"
    assert rep["rows_read"] == 17 and rep["removed"] == II_REMOVED and rep["rows_kept"] == 7
    o = ds.tables["orders"].set_index("order_id")
    assert (o["status"] == "completed").sum() == 6
    # the cancellation invoice is kept, as one cancelled order, for the cancellation-rate KPI
    assert o.loc["C489449", "status"] == "cancelled" and o.loc["C489449", "units"] == 18
    # the duplicated line is counted once: 12 x 6.95 + 12 x 6.75
    assert o.loc["489434", "net_revenue"] == pytest.approx(164.4)
    assert (
        o.loc["489434", "items"] == 2 and o.loc["489434", "customer_id"] == "13085"
    )  # not "13085.0"
    assert set(ds.tables["customers"]["customer_id"]) == {"13085", "13078", "16321"}
    assert ds.tables["customers"].set_index("customer_id").loc[
        "16321", "signup_date"
    ] == pd.Timestamp("2010-02-03")
    assert ds.tables["products"].set_index("product_id").loc["22350", "name"] == "CAT BOWL"
    assert len(ds.tables["order_items"]) == 7 and ds.tables["website_traffic"].empty
    assert ds.manifest["date_range"] == {"start": "2009-12-01", "end": "2010-02-03"}
    assert not (FIX / "truth").exists()  # nothing for the evaluation stages


def test_online_retail_old_layout_csv_month_first_dates():
    ds = load_transactions(FIX / "online_retail.csv")
    rep = ds.manifest["cleaning"]
    assert ds.manifest["layout"] == "online_retail"
    assert rep["removed"] == {
        "bad_value": 1,
        "exact_duplicate": 1,
        "missing_customer_id": 2,
        "cancellation": 1,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "date_outlier": 0,
    }
    assert rep["rows_kept"] == 5 and rep["orders"] == 4 and rep["cancelled_orders"] == 1
    o = ds.tables["orders"].set_index("order_id")
    assert o.loc["536600", "order_date"] == pd.Timestamp("2011-01-05")  # 1/5/2011 is 5 January
    assert o.loc["536365", "net_revenue"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    assert o.loc["536600", "country"] == "France"


def test_xlsx_with_two_sheets(tmp_path):
    """Online Retail II ships as a workbook with one sheet per year: every sheet is read."""
    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    path = tmp_path / "online_retail_II.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        raw.iloc[:9].to_excel(xw, sheet_name="Year 2009-2010", index=False)
        raw.iloc[9:].to_excel(xw, sheet_name="Year 2010-2011", index=False)
    ds = load_transactions(path)
    assert ds.manifest["cleaning"]["removed"] == II_REMOVED
    csv = load_transactions(FIX / "online_retail_ii.csv")
    pd.testing.assert_frame_equal(ds.tables["orders"], csv.tables["orders"])


def test_a_workbook_names_rows_in_their_sheet_and_leaves_out_a_notes_sheet(tmp_path, caplog):
    """The sheets are read one after the other: a bad cell in the second sheet of the UCI workbook
    was reported at its row in both sheets together (525,461 rows too far), and a sheet of notes
    was read as data rows, every column of them a bad_value."""
    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    path = tmp_path / "online_retail_II.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"Notes": ["exported 2011-12-10", "prices in GBP"]}).to_excel(
            xw, sheet_name="README", index=False)
        raw.iloc[:9].to_excel(xw, sheet_name="Year 2009-2010", index=False)
        raw.iloc[9:].to_excel(xw, sheet_name="Year 2010-2011", index=False)
    ds = load_transactions(path)
    assert ds.manifest["cleaning"]["removed"] == II_REMOVED  # the notes are no rows of it
    assert "sheet(s) 'README' left out: not in the Online Retail layout" in caplog.text
    # 'abc' and 'not a date' are the fixture's data rows 13 and 14: the second sheet's 4 and 5
    assert ds.manifest["cleaning"]["bad_values"] == {
        "Quantity": {"rows": 1, "first_row": 4, "value": "abc", "sheet": "Year 2010-2011"},
        "InvoiceDate": {"rows": 1, "first_row": 5, "value": "not a date",
                        "sheet": "Year 2010-2011"}}
    assert "Quantity: 1 row(s) empty or not a number, first sheet 'Year 2010-2011' data row 4: "\
        "'abc'" in caplog.text

    days = raw.iloc[9:].assign(InvoiceDate="03/17/2010 10:00")  # month-first in sheet 2 only
    first = raw.iloc[:9].assign(InvoiceDate="13/01/2010 10:00")
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        first.to_excel(xw, sheet_name="A", index=False)
        days.to_excel(xw, sheet_name="B", index=False)
    with pytest.raises(InputError, match=r"online_retail_II\.xlsx: InvoiceDate: both day-first "
                       r"\('13/01/2010 10:00', sheet 'A' data row 1\) and month-first "
                       r"\('03/17/2010 10:00', sheet 'B' data row 1\)"):
        load_transactions(path)


def test_customer_pipeline_runs_on_transactions(tmp_path, make_config):
    from analytics.context import RunContext
    from analytics.customers import pipeline

    ctx = RunContext(
        config=make_config(), data=load_transactions(FIX / "online_retail_ii.csv"),
        out_dir=tmp_path,
    )
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    s = ctx.customers
    assert s["source"] == "transactions" and s["customers"] == 3
    assert s["cleaning"]["removed"] == II_REMOVED
    assert s["churn"]["status"].startswith("skipped")
    assert sum(s["actions"].values()) == 3
    assert (tmp_path / "customers" / "actions.csv").is_file()


@pytest.mark.parametrize(
    "content, match",
    [
        ("", r"file is empty"),
        (
            "a,b,c\n1,2,3\n",
            r"not an Online Retail layout, missing column\(s\) for invoice, stock_code",
        ),
        (
            "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
            "C1,X,y,-1,2010-01-01,1.0,1,UK\n",
            r"no valid sales rows left after cleaning \(removed: cancellation 1\)",
        ),
        (  # a repeated column: which one holds the country was the reader's guess (the first)
            "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country,Country\n"
            "1,X,y,1,2010-01-01,1.0,1,UK,France\n",
            r"t\.csv: column 'Country' appears twice$",
        ),
        (  # both layouts' names for one field
            "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,InvoiceNo\n"
            "1,X,y,1,2010-01-01,1.0,1,2\n",
            r"t\.csv: columns 'Invoice' and 'InvoiceNo' both give invoice: keep one$",
        ),
    ],
)
def test_bad_files_are_one_line_input_errors(tmp_path, content, match):
    p = tmp_path / "t.csv"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_transactions(p)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="transactions file not found"):
        load_transactions(tmp_path / "nope.csv")
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"broken\.xlsx: cannot read"):
        load_transactions(bad)


def _retail_ii_file(n_customers: int, seed: int) -> pd.DataFrame:
    """An Online Retail II layout table (documented columns) with a real store's awkward shapes:
    many one-time buyers, a few heavy buyers with several invoices a day, big spenders, returns
    (C-invoices), rows without a customer, and a first purchase on the last day."""
    g = np.random.default_rng(seed)
    start = pd.Timestamp("2010-12-01")
    rows = []
    inv = 500000
    for c in range(n_customers):
        cid = str(12000 + c)
        heavy = c % 50 == 0
        n_inv = 1 if g.random() < 0.45 else int(g.geometric(0.08 if heavy else 0.3)) + 1
        first = int(g.integers(0, 360))
        days = np.sort(first + g.integers(0, max(1, 373 - first), n_inv))
        if heavy:
            days[: n_inv // 2] = days[0]  # a burst of invoices on one day
        for d in days:
            inv += 1
            for _ in range(int(g.integers(1, 5))):
                q = int(g.integers(1, 13)) * (40 if c % 97 == 0 else 1)
                rows.append(
                    (
                        str(inv),
                        f"2{int(g.integers(1000, 9999))}",
                        "ITEM",
                        q,
                        (start + pd.Timedelta(days=int(d), hours=10)).strftime("%Y-%m-%d %H:%M:%S"),
                        round(float(g.uniform(0.4, 12.0)), 2),
                        cid,
                        "United Kingdom",
                    )
                )
        if n_inv > 2 and g.random() < 0.2:  # a return
            inv += 1
            rows.append(
                (
                    f"C{inv}",
                    "21000",
                    "ITEM",
                    -2,
                    (start + pd.Timedelta(days=int(days[-1]))).strftime("%Y-%m-%d %H:%M:%S"),
                    2.5,
                    cid,
                    "United Kingdom",
                )
            )
    rows.append(
        (
            "599999",
            "22222",
            "ITEM",
            3,
            (start + pd.Timedelta(days=373)).strftime("%Y-%m-%d %H:%M:%S"),
            3.0,
            "99999",
            "France",
        )
    )  # first purchase on the last day: T = 0
    rows.append(("600000", "22223", "ITEM", 1, "2011-06-01 12:00:00", 1.0, "", "United Kingdom"))
    return pd.DataFrame(
        rows,
        columns=[
            "Invoice",
            "StockCode",
            "Description",
            "Quantity",
            "InvoiceDate",
            "Price",
            "Customer ID",
            "Country",
        ],
    )


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_real_layout_customer_gets_a_finite_clv_or_a_flag(tmp_path, fmt, make_config):
    """No "predictive model failed": every customer has a finite CLV and interval, from the model
    or (flagged, counted) from history."""
    from analytics.context import RunContext
    from analytics.customers import pipeline

    raw = _retail_ii_file(400, seed=15)
    path = tmp_path / f"online_retail_II.{fmt}"
    if fmt == "csv":
        raw.to_csv(path, index=False)
    else:
        raw.to_excel(path, sheet_name="Year 2010-2011", index=False, engine="openpyxl")
    cfg = make_config(customers={
        "plots": False,
        "monitor": {"enabled": False},
        "clusters": {"enabled": False},
        "churn": {"enabled": False},
    })
    ctx = RunContext(config=cfg, data=load_transactions(path), out_dir=tmp_path / "run")
    pipeline.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    s = ctx.customers["clv"]
    assert s["status"] == "ok", s["status"]
    t = pd.read_csv(tmp_path / "run" / "customers" / "clv.csv", dtype={"customer_id": str})
    assert len(t) == ctx.customers["customers"] == 401
    assert np.isfinite(t[["clv", "clv_low", "clv_high"]].to_numpy()).all()
    assert t["clv_source"].isin(["model", "historical"]).all()
    assert (t["clv_source"] == "historical").sum() == s["unscored_customers"]
    assert s["scored_customers"] + s["unscored_customers"] == 401
    assert t.set_index("customer_id").loc["99999", "p_alive"] == pytest.approx(1.0)


HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def test_unparseable_values_are_named_by_column_row_and_cell(tmp_path, caplog):
    """A price written with its currency ('£2.55') made every row a bad_value and the error said
    only 'removed: bad_value 2': not which column, nor what the cell held."""
    p = tmp_path / "t.csv"
    p.write_text(HEADER + "1,X,y,2,2010-01-01 10:00,£2.55,1,UK\n"
                          "2,X,y,3,2010-01-02 10:00,£1.00,2,UK\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"Price: 2 row\(s\) empty or not a number, first data "
                                         r"row 1: '£2.55'"):
        load_transactions(p)
    p.write_text(HEADER + "1,X,y,2,2010-01-01 10:00,2.55,1,UK\n"
                          "2,X,y,three,2010-01-02 10:00,1.00,2,UK\n", encoding="utf-8")
    ds = load_transactions(p)  # some rows bad: counted, named in the report and warned about
    assert ds.manifest["cleaning"]["bad_values"] == {
        "Quantity": {"rows": 1, "first_row": 2, "value": "three"}}
    assert "Quantity: 1 row(s) empty or not a number, first data row 2: 'three'" in caplog.text


def test_an_invoice_number_reused_by_other_customers_or_days_is_several_orders(tmp_path):
    """Invoice 100 reused on another day by another customer (numbering reset) was read as one
    order of the first customer on the first day: the second customer lost the order and the
    revenue moved to the first day."""
    p = tmp_path / "t.csv"
    p.write_text(HEADER + "100,X,y,2,2010-01-01 10:00,5.00,1,UK\n"
                          "100,Z,y,1,2010-01-01 10:01,1.00,1,UK\n"
                          "100,X,y,1,2010-03-01 09:00,5.00,2,UK\n"
                          "101,X,y,4,2010-03-01 09:30,5.00,2,UK\n"
                          "C100,X,y,-1,2010-03-02 09:00,5.00,2,UK\n", encoding="utf-8")
    ds = load_transactions(p)
    o = ds.tables["orders"].set_index("order_id")
    done = o[o["status"] == "completed"]
    assert sorted(done.index) == ["100", "100/2", "101"]
    assert done.loc["100", "customer_id"] == "1" and done.loc["100", "net_revenue"] == 11.0
    assert done.loc["100/2", "customer_id"] == "2" and done.loc["100/2", "net_revenue"] == 5.0
    assert done.loc["100/2", "order_date"] == pd.Timestamp("2010-03-01")
    assert ds.manifest["cleaning"]["split_invoices"] == 1
    items = ds.tables["order_items"]
    assert set(items["order_id"]) == {"100", "100/2", "101"} and len(items) == 4
    assert ds.tables["customers"].set_index("customer_id")["signup_date"].to_dict() == {
        "1": pd.Timestamp("2010-01-01"), "2": pd.Timestamp("2010-03-01")}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_or_tab_separated_export_reads_like_the_comma_file(tmp_path, sep):
    """A spreadsheet saved as CSV in a decimal-comma locale (';' between fields, '2,55' prices)
    was 'not an Online Retail layout, missing column(s) for invoice, …' — every column present."""
    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    if sep == ";":
        raw["Price"] = raw["Price"].str.replace(".", ",", regex=False)
    p = tmp_path / "export.csv"
    raw.to_csv(p, sep=sep, index=False)
    ds, ref = load_transactions(p), load_transactions(FIX / "online_retail_ii.csv")
    assert ds.manifest["cleaning"]["removed"] == II_REMOVED
    for name, table in ref.tables.items():
        pd.testing.assert_frame_equal(ds.tables[name], table)


def test_a_decimal_comma_export_reads_points_as_thousands(tmp_path):
    """In a ';' file whose prices have decimal commas a quantity of 1000 is written '1.000': it
    was read as 1 (a line's revenue cut a thousandfold, silently); '2.5' groups nothing there and
    is a bad value, named, not 2.5 or 25."""
    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    raw["Price"] = raw["Price"].str.replace(".", ",", regex=False)
    ok = raw["Quantity"].str.fullmatch(r"\d+") & (raw["Invoice"].str[0] != "C")
    i, j = ok[ok].index[:2]
    raw.loc[i, "Quantity"] = "1.000"
    raw.loc[j, "Quantity"] = "2.5"
    p = tmp_path / "export.csv"
    raw.to_csv(p, sep=";", index=False)
    ds = load_transactions(p)
    same = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    same.loc[i, "Quantity"], same.loc[j, "Quantity"] = "1000", "not a number"
    same.to_csv(tmp_path / "same.csv", index=False)
    for name in ("orders", "order_items"):  # the grouped quantity is 1000, the other line is out
        pd.testing.assert_frame_equal(ds.tables[name],
                                      load_transactions(tmp_path / "same.csv").tables[name])
    assert ds.tables["order_items"]["quantity"].max() == 1000
    bad = ds.manifest["cleaning"]["bad_values"]["Quantity"]
    assert bad["rows"] == 2 and bad["first_row"] == j + 1 and bad["value"] == "2.5"  # and 'abc'
    # a ';' file without any decimal comma keeps its points as decimal points
    raw2 = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    p2 = tmp_path / "points.csv"
    raw2.to_csv(p2, sep=";", index=False)
    ref = load_transactions(FIX / "online_retail_ii.csv")
    pd.testing.assert_frame_equal(load_transactions(p2).tables["order_items"],
                                  ref.tables["order_items"])



def test_a_decimal_comma_customer_id_is_the_same_customer(tmp_path):
    """A decimal-comma export writes the float Customer ID 13085.0 as '13085,0'. '13085.0' was
    read as customer 13085 but '13085,0' stayed a customer named '13085,0' in segments.csv,
    clv.csv and actions.csv (no join with the CRM, and a store exporting both ways had each
    customer twice)."""
    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    assert raw["Customer ID"].str.endswith(".0").any()
    for col in ("Price", "Customer ID"):
        raw[col] = raw[col].str.replace(".", ",", regex=False)
    p = tmp_path / "export.csv"
    raw.to_csv(p, sep=";", index=False)
    ds, ref = load_transactions(p), load_transactions(FIX / "online_retail_ii.csv")
    assert set(ds.tables["customers"]["customer_id"]) == {"13085", "13078", "16321"}
    for name, table in ref.tables.items():
        pd.testing.assert_frame_equal(ds.tables[name], table)

@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_utf16_export_reads_like_the_utf8_file(tmp_path, sep):
    """Excel's "Unicode text" export (UTF-16 with a byte-order mark) was read as Latin-1: 'not an
    Online Retail layout, missing column(s) for invoice' with every column present."""
    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    p = tmp_path / "export.txt"
    raw.to_csv(p, sep=sep, index=False, encoding="utf-16")
    ds, ref = load_transactions(p), load_transactions(FIX / "online_retail_ii.csv")
    assert ds.manifest["cleaning"]["removed"] == II_REMOVED
    for name, table in ref.tables.items():
        pd.testing.assert_frame_equal(ds.tables[name], table)


def test_one_day_file_segments_nobody_lost_and_says_why(tmp_path, make_config, caplog):
    """Every order of the file on one day: recency carries no information, so no customer is
    Lost for it (they all were: tied recencies ranked last), and the summary says why."""
    from analytics.context import RunContext
    from analytics.customers import pipeline

    lines = ["Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"]
    for i in range(40):
        lines.append(f"{500000 + i},2{i % 7},ITEM,{1 + i % 5},2011-03-01 {8 + i % 9:02d}:15:00,"
                     f"{2.5 + i % 3},{12000 + i % 25}.0,United Kingdom")
    (tmp_path / "oneday.csv").write_text("\n".join(lines) + "\n")
    ctx = RunContext(config=make_config(), data=load_transactions(tmp_path / "oneday.csv"),
                     out_dir=tmp_path / "run")
    with caplog.at_level("WARNING"):
        pipeline.run(ctx)
    s = ctx.customers
    assert s["customers"] == 25 and s["segments"]["Lost"] == 0
    assert s["segments"]["Hibernating"] == 0
    note = s["recency_note"]
    assert "recency not scored" in note and "recency_min_span_days" in note
    assert any("recency not scored" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("token", ["NaN", "nan", "NULL", "#N/A", "None"])
def test_an_exports_word_for_no_customer_is_a_missing_customer_id(tmp_path, token):
    """'NaN' in Customer ID (a tool's way to write an empty cell) was read as a customer named
    'NaN' who placed every guest order."""
    p = tmp_path / "t.csv"
    p.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "1,X,y,1,2010-01-01 10:00,1.0,12345.0,UK\n"
        f"2,X,y,1,2010-01-02 10:00,1.0,{token},UK\n"
        f"3,X,y,1,2010-01-03 10:00,1.0,{token},UK\n")
    ds = load_transactions(p)
    assert list(ds.tables["orders"]["customer_id"].unique()) == ["12345"]
    assert ds.manifest["cleaning"]["removed"]["missing_customer_id"] == 2


def test_the_header_line_is_read_once_for_its_separator(tmp_path, monkeypatch):
    """load_transactions read the header line a second time to learn whether a ';' file has
    decimal commas; the separator _read_raw found is passed on (same tables)."""
    import analytics.transactions as tx

    raw = pd.read_csv(FIX / "online_retail_ii.csv", dtype=str, keep_default_na=False)
    raw["Price"] = raw["Price"].str.replace(".", ",", regex=False)
    p = tmp_path / "export.csv"
    raw.to_csv(p, sep=";", index=False)
    calls = []
    real = tx.separator
    monkeypatch.setattr(tx, "separator", lambda path: calls.append(path) or real(path))
    ds, ref = load_transactions(p), load_transactions(FIX / "online_retail_ii.csv")
    assert calls == [p, FIX / "online_retail_ii.csv"]
    for name, table in ref.tables.items():
        pd.testing.assert_frame_equal(ds.tables[name], table)


def test_a_stock_code_twice_in_an_invoice_at_two_prices_keeps_what_was_paid(tmp_path):
    """Invoice 100 sells X twice: 10 at 1.00 and 1 at 9.00 (a quantity tier, a manual price).
    The merged order line took the unweighted mean price (5.00), so the line said 11 x 5.00 = 55
    while the order paid 19: tables/top_products.csv ranked and summed products on that (the
    order's revenue was right). The line's unit price is now what a unit cost on average, the
    quantity-weighted mean, so quantity x unit price is what was paid."""
    from analytics.kpis import compute_kpis_daily, summary_tables

    p = tmp_path / "t.csv"
    p.write_text(HEADER + "100,X,y,10,2010-01-01 10:00,1.00,1,UK\n"
                          "100,X,y,1,2010-01-01 10:01,9.00,1,UK\n"
                          "100,Z,y,1,2010-01-01 10:02,12.00,1,UK\n", encoding="utf-8")
    ds = load_transactions(p)
    o = ds.tables["orders"].set_index("order_id")
    assert o.loc["100", "net_revenue"] == 31.0
    items = ds.tables["order_items"].set_index("product_id")
    assert items.loc["X", "quantity"] == 11
    assert items.loc["X", "quantity"] * items.loc["X", "unit_price"] == pytest.approx(19.0)
    assert (items["quantity"] * items["unit_price"]).sum() == pytest.approx(31.0)
    top = summary_tables(ds, compute_kpis_daily(ds))["top_products"].set_index("product_id")
    assert top.loc["X", "revenue"] == pytest.approx(19.0)
    assert list(top.index) == ["X", "Z"]   # X paid 19, Z 12 (the mean price said X 55)


def test_several_currencies_in_one_file_are_refused_and_one_is_reported(tmp_path):
    """A multi-currency shop's export (a Currency column: GBP, EUR, JPY) was summed as written:
    ¥1,200 counted as 1200 pounds in revenue, monetary value, CLV and value tiers, silently. The
    file is now refused (exit 2) naming the currencies and their rows; a file in one currency
    reports it (cleaning["currency"]); blank cells (a Shopify order's later lines) are not one."""
    head = HEADER.rstrip("\n") + ",Currency\n"
    p = tmp_path / "t.csv"
    p.write_text(head + "1,X,y,2,2010-01-01 10:00,2.55,1,UK,GBP\n"
                        "2,X,y,3,2010-01-02 10:00,1.00,2,UK,GBP\n"
                        "3,X,y,1,2010-01-03 10:00,1200,3,Japan,JPY\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"t\.csv: column 'Currency' holds several currencies "
                                         r"\(GBP 2 rows, JPY 1 row\)"):
        load_transactions(p)
    p.write_text(head + "1,X,y,2,2010-01-01 10:00,2.55,1,UK,EUR\n"
                        "1,Z,y,1,2010-01-01 10:00,1.00,1,UK,\n"
                        "2,X,y,3,2010-01-02 10:00,1.00,2,UK,eur\n", encoding="utf-8")
    ds = load_transactions(p)
    assert ds.manifest["cleaning"]["currency"] == "EUR"
    assert ds.tables["orders"]["net_revenue"].sum() == pytest.approx(2 * 2.55 + 1 + 3)


def test_the_readme_shopify_recipe_gives_a_file_in_the_layout(tmp_path, monkeypatch):
    """README (Customers, "Other exports"): its pandas recipe turns a Shopify orders export into
    the layout; a refunded order becomes a cancellation, the country of an order's first line is
    the order's, blank Currency cells on later lines are not a second currency."""
    import re

    text = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
    m = re.search(r"\*\*Other exports\*\*.*?```python\n(.*?)```", text, re.S)
    assert m, "README: the Shopify recipe is gone"
    (tmp_path / "orders_export.csv").write_text(
        "Name,Email,Financial Status,Paid at,Currency,Subtotal,Total,Lineitem quantity,"
        "Lineitem name,Lineitem price,Lineitem sku,Billing Country,Created at\n"
        "#1001,a@x.com,paid,2024-03-01 10:00:00 +0100,EUR,30,35,1,Sock,10.00,S1,DE,"
        "2024-03-01 09:58:00 +0100\n"
        "#1001,a@x.com,,,,,,2,Hat,10.00,H1,,2024-03-01 09:58:00 +0100\n"
        "#1002,b@x.com,refunded,2024-03-02 11:00:00 +0100,EUR,10,15,1,Sock,10.00,S1,FR,"
        "2024-03-02 10:59:00 +0100\n"
        "#1003,a@x.com,paid,2024-03-09 12:00:00 +0100,EUR,10,15,1,Sock,10.00,S1,DE,"
        "2024-03-09 11:59:00 +0100\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    exec(compile(m.group(1), "README recipe", "exec"), {})
    ds = load_transactions(tmp_path / "transactions.csv")
    o = ds.tables["orders"].set_index("order_id")
    assert o.loc["#1001", "net_revenue"] == 30.0 and o.loc["#1001", "country"] == "DE"
    assert o.loc["C#1002", "status"] == "cancelled" and (o["status"] == "completed").sum() == 2
    assert ds.manifest["cleaning"]["currency"] == "EUR"
    assert set(ds.tables["customers"]["customer_id"]) == {"a@x.com"}


def test_the_rows_left_out_are_summed_up_on_the_console(caplog):
    """Guest sales (no Customer ID: a quarter of the UCI file's rows), cancellations, duplicates
    and zero prices were left out of every KPI with nothing said on the console (the counts were
    only in insights.json): revenue below the shop's books, unexplained. One info line now says
    what was read, kept and left out, by reason."""
    with caplog.at_level("INFO", logger="shocklab.transactions"):
        load_transactions(FIX / "online_retail_ii.csv")
    assert ("online_retail_ii.csv: 17 row(s) read, 7 kept; left out: bad_value 2, "
            "exact_duplicate 1, missing_customer_id 2 (guest sales: in no KPI, revenue included), "
            "cancellation 2 (lines of cancelled orders: the cancellation rate only), "
            "non_positive_quantity 2, non_positive_price 1") in caplog.text


def test_a_windows_1252_export_keeps_its_dashes_and_euro_signs(tmp_path):
    """Excel's "CSV (semicolon-separated)" in a Western European locale writes Windows-1252, not
    UTF-8: it was decoded as Latin-1, so '–' (0x96) and '€' (0x80) became the control characters
    U+0096 and U+0080 in the product names of tables/top_products.csv. Bytes Windows-1252 leaves
    undefined still read (as Latin-1)."""
    p = tmp_path / "export.csv"
    p.write_bytes(("Invoice;StockCode;Description;Quantity;InvoiceDate;Price;Customer ID;Country\n"
                   "1;X;Kuchenform – 3er Set, 5 €;2;2010-01-01 10:00;2,55;1;Österreich\n"
                   "2;X;Kuchenform – 3er Set, 5 €;1;2010-01-02 10:00;2,55;2;Österreich\n")
                  .encode("cp1252"))
    ds = load_transactions(p)
    assert ds.tables["products"]["name"].tolist() == ["Kuchenform – 3er Set, 5 €"]
    assert set(ds.tables["orders"]["country"]) == {"Österreich"}
    p.write_bytes(p.read_bytes().replace("€".encode("cp1252"), b"\x81"))  # undefined in 1252
    assert load_transactions(p).tables["products"]["name"].tolist() == [
        "Kuchenform \x96 3er Set, 5 \x81"]  # the whole file read as Latin-1, as before


def test_twelve_hour_times_do_not_bypass_the_day_month_decision():
    """'13/01/2011 09:00 AM' proves a day-first file, but dates with AM/PM did not match the
    d/m/y pattern: pandas read each row alone, so '02/01/2011 08:26 PM' became 1 February beside
    13 January (layout reported 'iso', nothing warned). They now take part in the decision, and
    12 AM / 12 PM are midnight / noon."""
    from analytics.transactions import parse_dates

    got, rep = parse_dates(pd.Series(["02/01/2011 08:26 PM", "13/01/2011 09:00 AM",
                                      "05/01/2011 12:05 am", "06/01/2011 12:30 p.m."]))
    assert got.tolist() == [pd.Timestamp("2011-01-02 20:26"), pd.Timestamp("2011-01-13 09:00"),
                            pd.Timestamp("2011-01-05 00:05"), pd.Timestamp("2011-01-06 12:30")]
    assert rep["layout"] == "day-first" and rep["unparsed_rows"] == 0
    us, rep = parse_dates(pd.Series(["12/13/2010 8:26 AM", "1/2/2011 1:05 PM"]))  # US export
    assert us.tolist() == [pd.Timestamp("2010-12-13 08:26"), pd.Timestamp("2011-01-02 13:05")]
    assert rep["layout"] == "month-first"
    bad, rep = parse_dates(pd.Series(["1/2/2011 13:05 PM", "1/3/2011 1:05 PM"]))
    assert bad.isna().tolist() == [True, False] and rep["unparsed_rows"] == 1
