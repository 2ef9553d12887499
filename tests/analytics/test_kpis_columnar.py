"""The columnar (DuckDB) KPI path gives the same kpis_daily as the pandas path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.context import DataSet
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


def _many_lines(n_orders: int, seed: int = 4) -> DataSet:
    """Orders of 1-4 lines over three categories, cents and discounts: sums whose last digit
    depends on the order of addition."""
    g = np.random.default_rng(seed)
    n_lines = g.integers(1, 5, n_orders)
    oid = np.array([f"O{i:07d}" for i in range(n_orders)], dtype=object)
    line_order = np.repeat(np.arange(n_orders), n_lines)
    qty = g.integers(1, 4, len(line_order))
    price = np.round(g.uniform(0.5, 300.0, len(line_order)), 2)
    disc = g.choice([0.0, 0.1, 0.15, 0.3], len(line_order))
    value = np.bincount(line_order, weights=qty * price * (1 - disc), minlength=n_orders)
    orders = pd.DataFrame({
        "order_id": oid,
        "order_date": pd.Timestamp("2025-01-01") + pd.to_timedelta(
            np.sort(g.integers(0, 60, n_orders)), unit="D"),
        "customer_id": np.array([f"C{i:06d}" for i in g.integers(0, 5000, n_orders)], dtype=object),
        "channel": g.choice(np.array(["email", "organic", "paid"], dtype=object), n_orders),
        "country": g.choice(np.array(["DE", "GB", "US"], dtype=object), n_orders),
        "status": g.choice(np.array(["completed", "cancelled"], dtype=object), n_orders,
                           p=[0.95, 0.05]),
        "net_revenue": np.round(value * g.uniform(0.9, 1.0, n_orders), 2),
        "units": np.bincount(line_order, weights=qty, minlength=n_orders).astype(np.int64),
    })
    products = pd.DataFrame({"product_id": np.array([f"P{i:03d}" for i in range(30)], dtype=object),
                             "category": np.array(["books", "fashion", "home"] * 10, dtype=object)})
    items = pd.DataFrame({"order_id": oid[line_order],
                          "product_id": products["product_id"].to_numpy()[
                              g.integers(0, 30, len(line_order))],
                          "quantity": qty, "unit_price": price, "discount_pct": disc})
    return DataSet(path=None, tables={"orders": orders, "order_items": items, "products": products})


def test_duckdb_gives_the_pandas_bytes_on_every_thread_count(monkeypatch):
    """run_analysis.py aggregates with DuckDB from kpis.COLUMNAR_MIN_ROWS rows; its revenue was
    summed by DuckDB's parallel SUM (and per order × category), so the same data gave
    kpis_daily.csv bytes that changed from run to run and from the pandas path's. Revenue is now
    the pandas path's row-order sums: the same bytes whatever the engine and DuckDB's threads."""
    import os

    ds = _many_lines(300_000)
    ref = compute_kpis_daily(ds, engine="pandas").to_csv(index=False)
    for threads in (1, 3, 3, 8):
        monkeypatch.setattr(os, "cpu_count", lambda t=threads: t)
        assert compute_kpis_daily(ds, engine="duckdb").to_csv(index=False) == ref, threads


@pytest.mark.parametrize("memory", ["lots", "0"])
def test_a_memory_size_duckdb_refuses_is_bad_input(synth_dir, tmp_path, monkeypatch, memory):
    """SHOCKLAB_DUCKDB_MEMORY=lots was DuckDB's ParserException, an internal error (exit 3); it is
    one InputError naming the variable, and the spill directory made for it is removed."""
    import tempfile

    monkeypatch.setenv("SHOCKLAB_DUCKDB_MEMORY", memory)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(InputError, match=rf"SHOCKLAB_DUCKDB_MEMORY: '{memory}' is no memory size"):
        kpis_daily_from_files(synth_dir)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("SHOCKLAB_DUCKDB_MEMORY", "500MB")   # a size it takes: read as before
    ref = compute_kpis_daily(load_data_dir(synth_dir), engine="pandas")
    _assert_same(ref, kpis_daily_from_files(synth_dir))
    assert list(tmp_path.iterdir()) == []


def test_a_bad_memory_size_is_exit_2_whatever_engine_the_data_gets(synth_dir, tmp_path,
                                                                    monkeypatch, capsys):
    """The variable was checked only when the columnar engine ran (3 M order lines up): on the
    default scenario (~0.5 M) 'lots' passed with exit 0 (audit 2026-12-05)."""
    import run_analysis

    from shocklab.cli import run_cli

    monkeypatch.setenv("SHOCKLAB_DUCKDB_MEMORY", "lots")
    monkeypatch.delenv("SHOCKLAB_KPI_ENGINE", raising=False)
    out = tmp_path / "run"
    rc = run_cli(run_analysis.main, ["--data", str(synth_dir), "--out", str(out),
                                     "--detectors", "rolling_zscore"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "SHOCKLAB_DUCKDB_MEMORY: 'lots'" in err, err
    assert not out.exists()
