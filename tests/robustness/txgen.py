"""Synthetic Online Retail II transaction files for the robustness tests (deterministic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def transactions(n_rows: int = 5000, days: int = 120, customers: int = 300, seed: int = 5,
                 start: str = "2011-01-03") -> pd.DataFrame:
    """Invoices of 1-4 lines spread over ``days`` days; timestamps as datetimes."""
    g = np.random.default_rng(seed)
    n_inv = max(1, n_rows // 2)
    inv_day = np.sort(g.integers(0, days, n_inv))
    inv_ts = pd.Timestamp(start) + pd.to_timedelta(inv_day, unit="D") + pd.to_timedelta(
        g.integers(8 * 60, 18 * 60, n_inv), unit="min")
    inv = g.integers(0, n_inv, n_rows)
    inv.sort()
    cust = 12000 + g.integers(0, customers, n_inv)
    return pd.DataFrame({
        "Invoice": (500000 + inv).astype(str),
        "StockCode": (20000 + g.integers(0, 80, n_rows)).astype(str),
        "Description": "ITEM",
        "Quantity": g.integers(1, 12, n_rows),
        "InvoiceDate": inv_ts[inv],
        "Price": np.round(g.uniform(0.5, 20.0, n_rows), 2),
        "Customer ID": cust[inv].astype(float),
        "Country": "United Kingdom",
    })


def write_csv(df: pd.DataFrame, path: Path, date_format: str = "%Y-%m-%d %H:%M:%S") -> Path:
    out = df.copy()
    out["InvoiceDate"] = pd.to_datetime(out["InvoiceDate"]).dt.strftime(date_format)
    out.to_csv(path, index=False)
    return path
