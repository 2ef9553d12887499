"""The data-directory reader's value checks (analytics.loading), in-process: each test failed
against a hand-made mutant of the check it names that the file-level tests let pass
(audit-mutcli)."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.loading import coerce
from shocklab.errors import InputError


@pytest.mark.parametrize("values", [["1", "2.5"], [1.0, 2.5]])
def test_a_fractional_count_is_refused_in_a_whole_number_column(values):
    """order_items.quantity 2.5 was truncated to 2 units without a word."""
    df = pd.DataFrame({"quantity": values})
    with pytest.raises(InputError, match="'quantity' must hold whole numbers"):
        coerce(df, {"quantity": "int"}, "order_items.csv")
    out = coerce(pd.DataFrame({"quantity": ["1", "3"]}), {"quantity": "int"}, "order_items.csv")
    assert out["quantity"].tolist() == [1, 3]
