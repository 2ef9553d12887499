"""--transactions reader guards (analytics.transactions), in-process. Each test failed against a
hand-made mutant that tests/analytics/customers/test_transactions.py let pass (audit-mutcli)."""

from __future__ import annotations

import pytest

from analytics.transactions import load_transactions
from shocklab.errors import InputError

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"


def test_a_file_with_a_header_and_no_rows_says_so(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(HEADER)
    with pytest.raises(InputError, match=r"orders.csv: no data rows"):
        load_transactions(f)


def test_dates_that_could_be_either_order_are_counted_and_read_month_first(tmp_path):
    """No date proves the order (every day and month at most 12): each ambiguous row is
    counted in the cleaning report (and read month-first, with a warning)."""
    f = tmp_path / "orders.csv"
    f.write_text(HEADER + "".join(
        f"{536365 + i},85123A,MUG,2,{d} 08:26,2.55,17850,United Kingdom\n"
        for i, d in enumerate(["01/02/2010", "01/09/2010", "02/03/2010", "02/02/2010"])))
    ds = load_transactions(f)
    dates = ds.manifest["cleaning"]["dates"]
    assert dates["layout"] == "month-first" and dates["ambiguous_rows"] == 3   # 02/02 is not
    assert str(ds.tables["orders"]["order_date"].min().date()) == "2010-01-02"
