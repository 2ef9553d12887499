"""The one JSON-cleaning helper (shocklab.hashing.json_ready)."""

import math
from datetime import date

import numpy as np
import pandas as pd

from shocklab.hashing import canonical_json, json_ready


def test_json_ready_cleans_numpy_nan_and_timestamps():
    obj = {1: (np.int64(3), np.float32(0.5), np.bool_(True), math.nan, np.inf, None),
           "t": [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-02 03:04:05"), date(2024, 1, 3)],
           "na": [pd.NA, pd.NaT], "df": pd.DataFrame({"a": [1, 2]})}
    out = json_ready(obj)
    assert out == {"1": [3, 0.5, True, None, None, None],
                   "t": ["2024-01-02", "2024-01-02T03:04:05", "2024-01-03"],
                   "na": [None, None], "df": [{"a": 1}, {"a": 2}]}
    canonical_json(out)  # valid strict JSON (raises on NaN or numpy types)


def test_json_ready_fallback_only_for_unknown_objects():
    class Thing:
        def __str__(self) -> str:
            return "thing"
    t = Thing()
    assert json_ready([t])[0] is t
    assert json_ready([t, "s", 1], str) == ["thing", "s", 1]
