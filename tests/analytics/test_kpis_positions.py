"""``analytics.kpis.positions`` equals ``pd.Index(index).get_indexer(targets)`` for every kind of id
(digit ids of one width take an integer path, sorted or not; other text the Arrow path)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.kpis import positions


def _ids(kind: str, n: int, g: np.random.Generator) -> np.ndarray:
    v = g.choice(10**6, n, replace=False)
    if kind == "digits":
        return np.array([f"2024{x:08d}" for x in v], dtype=object)
    if kind == "zeros":  # leading zeros: "007" and "070" must stay apart
        return np.array([f"{x:07d}" for x in v], dtype=object)
    if kind == "widths":  # "7" and "007" are different ids
        return np.array([str(x) if i % 2 else f"{x:09d}" for i, x in enumerate(v)], dtype=object)
    return np.array([f"C{x}" for x in v], dtype=object)


@pytest.mark.parametrize("kind", ["digits", "zeros", "widths", "text"])
@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("dtype", ["str", object])
def test_positions_match_get_indexer(kind, sort, dtype):
    g = np.random.default_rng(3)
    index = _ids(kind, 2000, g)
    if sort:
        index = np.sort(index)
    targets = np.concatenate([g.choice(index, 3000), _ids(kind, 50, np.random.default_rng(4))])
    mk = (lambda a: pd.Series(pd.array(a, dtype="str"))) if dtype == "str" else (lambda a: a)
    got = positions(mk(index), mk(targets))
    assert np.array_equal(got, pd.Index(index).get_indexer(targets))
    assert (got >= 0).sum() >= 3000


def test_positions_of_nothing():
    assert len(positions(pd.Series(["1", "2"], dtype="str"), pd.Series([], dtype="str"))) == 0


@pytest.mark.parametrize("kind", ["digits", "zeros", "widths", "text"])
def test_factorize_sorted_matches_pandas(kind):
    from analytics.kpis import factorize_sorted

    g = np.random.default_rng(5)
    ids = pd.Series(pd.array(g.choice(_ids(kind, 3000, g), 5000), dtype="str"), name="customer_id")
    codes, uniques = factorize_sorted(ids)
    want_codes, want_uniques = pd.factorize(ids, sort=True)
    assert np.array_equal(codes, want_codes) and codes.dtype == want_codes.dtype
    assert uniques.equals(want_uniques) and uniques.dtype == want_uniques.dtype
    assert type(uniques) is type(want_uniques) and uniques.name == want_uniques.name
