"""The loader's key check (``analytics.loading.check_unique``): ids in increasing order pass
without hashing; duplicates are found whatever the order, nulls included. And ``coerce``'s
shortcuts for columns the reader already typed give what the general conversions give."""

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


def test_coerce_fast_paths_match_the_general_ones():
    """Columns pandas' pyarrow reader already typed (ints, floats, ``datetime.date`` objects) take
    shortcuts; the result is what the general conversions give."""
    import datetime

    import numpy as np

    from analytics.loading import coerce

    days = [datetime.date(2024, 1, 1), datetime.date(2024, 2, 29), datetime.date(2025, 12, 31)]
    df = pd.DataFrame({"d": pd.Series(days, dtype=object), "i": np.array([1, 2, 3]),
                       "f": [1.5, 2.0, 3.25], "i2f": np.array([4, 5, 6], dtype=np.int32)})
    got = coerce(df, {"d": "date", "i": "int", "f": "float", "i2f": "float"}, "t.csv")
    want = pd.DataFrame({"d": pd.to_datetime([str(d) for d in days]).astype("datetime64[ns]"),
                         "i": np.array([1, 2, 3], dtype=np.int64), "f": [1.5, 2.0, 3.25],
                         "i2f": [4.0, 5.0, 6.0]})
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    with pytest.raises(InputError, match="t.csv: column 'f' has an infinite value"):
        coerce(pd.DataFrame({"f": [1.0, np.inf]}), {"f": "float"}, "t.csv")
    with pytest.raises(InputError, match="column 'd' is not a date"):  # general path's error
        coerce(pd.DataFrame({"d": [datetime.date(2024, 1, 1), "soon"]}), {"d": "date"}, "t.csv")


def test_a_duplicate_compound_key_is_shown_as_written_not_as_python_reprs():
    """"= [Timestamp('2025-01-01 00:00:00'), 'organic', 'US']" (audit56 O3)."""
    df = pd.DataFrame({"date": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-02"]),
                       "channel": ["organic"] * 3, "country": ["US"] * 3})
    with pytest.raises(InputError) as info:
        check_unique(df, ["date", "channel", "country"], "website_traffic.csv")
    assert str(info.value).endswith(
        "website_traffic.csv: duplicate key (date, channel, country) = (2025-01-01, organic, US)")
