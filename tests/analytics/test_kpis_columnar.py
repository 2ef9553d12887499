"""The columnar (DuckDB) KPI path gives the same kpis_daily as the pandas path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.kpis import compute_kpis_daily
from analytics.loading import load_data_dir
from shocklab.errors import InputError

pytest.importorskip("duckdb")

from analytics.kpis_columnar import kpis_daily_from_files  # noqa: E402


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in ("date", "dimension", "segment"):
        assert (a[col].astype(str).to_numpy() == b[col].astype(str).to_numpy()).all(), col
    num = a.columns[3:]
    np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-9, atol=1e-9)


def test_duckdb_equals_pandas(synth_dir):
    ds = load_data_dir(synth_dir)
    ref = compute_kpis_daily(ds, engine="pandas")
    assert set(ref["dimension"]) == {"overall", "channel", "country", "category"}
    assert ref["new_customers"].sum() > 0 and ref["returning_customers"].sum() > 0
    _assert_same(ref, compute_kpis_daily(ds, engine="duckdb"))
    _assert_same(ref, kpis_daily_from_files(synth_dir))


def test_without_bit_masks(synth_dir, monkeypatch):
    """More channels/countries than fit the bit masks: distinct counts by dedupe instead."""
    import analytics.kpis_columnar as kc
    ds = load_data_dir(synth_dir)
    monkeypatch.setattr(kc, "MASK_BITS", 1)
    _assert_same(compute_kpis_daily(ds, engine="pandas"), compute_kpis_daily(ds, engine="duckdb"))


def test_files_path_reads_parquet(synth_dir, tmp_path):
    ref = compute_kpis_daily(load_data_dir(synth_dir), engine="pandas")
    out = tmp_path / "pq"
    out.mkdir()
    for p in synth_dir.glob("*.csv"):   # same data, stored as typed Parquet (ints, timestamps)
        df = pd.read_csv(p)
        for col in ("order_date", "order_ts", "signup_date", "date"):
            if col in df.columns:
                df[col] = pd.to_datetime(df[col])
        df.to_parquet(out / f"{p.stem}.parquet", index=False)
    _assert_same(ref, kpis_daily_from_files(out))


def test_auto_switch_and_bad_engine(synth_dir, monkeypatch):
    import analytics.kpis as kpis
    ds = load_data_dir(synth_dir)
    calls = []
    monkeypatch.setattr(
        "analytics.kpis_columnar.kpis_daily_columnar", lambda d: calls.append(d) or "columnar"
    )
    monkeypatch.setattr(kpis, "COLUMNAR_MIN_ROWS", 1)
    assert compute_kpis_daily(ds) == "columnar" and calls == [ds]
    monkeypatch.setattr(kpis, "COLUMNAR_MIN_ROWS", 10**12)
    assert isinstance(compute_kpis_daily(ds), pd.DataFrame) and len(calls) == 1
    with pytest.raises(InputError, match="KPI engine must be"):
        compute_kpis_daily(ds, engine="spark")


@pytest.mark.parametrize(
    "col,message",
    [
        ("order_id", r"order_items: order_id '999999999' is not in orders"),
        ("product_id", r"order_items: product_id '999999999' is not in products"),
    ],
)
def test_orphan_line_is_input_error(synth_dir, col, message):
    ds = load_data_dir(synth_dir)
    items = ds.tables["order_items"].copy()
    items.loc[0, col] = "999999999"
    ds.tables["order_items"] = items
    with pytest.raises(InputError, match=message):
        compute_kpis_daily(ds, engine="duckdb")


def test_files_path_reads_the_customers_table(tmp_path):
    """The streamed path joins customers.csv like the loaded one: a customer who signed up
    before the data starts is returning on their first order in it. The synthetic world has
    no such customer, so a files path that ignored customers (mutant C06) passed."""
    from tests.analytics.test_loading_kpis import _tiny

    ds = _tiny()
    for name, df in ds.tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
    got = kpis_daily_from_files(tmp_path)
    _assert_same(compute_kpis_daily(ds, engine="pandas"), got)
    day2 = got[(got["dimension"] == "overall") & (got["date"] == pd.Timestamp("2025-01-02"))]
    assert day2[["new_customers", "returning_customers"]].values.tolist() == [[0, 2]]
