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
