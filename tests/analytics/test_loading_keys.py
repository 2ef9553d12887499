"""The loader's key check (``analytics.loading.check_unique``): ids in increasing order pass
without hashing; duplicates are found whatever the order, nulls included."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.loading import check_unique
from shocklab.errors import InputError


@pytest.mark.parametrize(
    ("ids", "duplicate"),
    [
        (["a1", "a2", "b"], None),
        (["b", "a2", "a1"], None),          # unique, not sorted
        (["a1", "a1", "b"], "a1"),          # sorted with a repeat
        (["b", "a1", "a1"], "a1"),
        (["a1", None, "b", None], "nan"),   # two missing ids are a duplicate, as in pandas
        (["a1"], None),
    ],
)
@pytest.mark.parametrize("dtype", ["str", object])
def test_check_unique(ids, duplicate, dtype):
    df = pd.DataFrame({"order_id": pd.array(ids, dtype=dtype) if dtype == "str" else ids,
                       "x": range(len(ids))})
    if duplicate is None:
        check_unique(df, ["order_id"], "orders.csv")
        return
    with pytest.raises(InputError, match=r"orders.csv: duplicate key \(order_id\)") as info:
        check_unique(df, ["order_id"], "orders.csv")
    assert duplicate in str(info.value) or duplicate == "nan"
