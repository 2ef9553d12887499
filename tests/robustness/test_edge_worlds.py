"""Valid but unusual worlds through the CLIs (edge-worlds audit): what the schemas allow, the
generator writes and the analysis then reads, with exit 0 and its outputs complete."""

from __future__ import annotations

import json

import pytest
from tests.robustness.conftest import write_yaml
from tests.simulation.simtools import tiny_config


@pytest.mark.slow
def test_a_store_whose_every_order_is_cancelled_is_analysed(cli, tmp_path):
    """basket.cancel_rate 1 is valid: the world was generated (exit 0) and its analysis ran
    every stage, then exited 2 in the customer stage ('orders: no completed orders on or before
    … to compute RFM on'), writing nothing. Now the customer models are skipped with a warning
    and the KPIs, detection, insights and scorecard are written."""
    raw = tiny_config(basket={"cancel_rate": 1.0, "return_rate": 0.0})
    cfg = write_yaml(tmp_path / "all_cancelled.yaml", raw)
    r = cli("generate", "--config", cfg, "--out", tmp_path / "data", "--quiet")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "run"
    r = cli("analysis", "--data", tmp_path / "data", "--out", out, "--quiet",
            "--set", "insights.plots=false", "--set", "customers.plots=false")
    assert r.returncode == 0, r.stderr
    insights = json.loads((out / "insights.json").read_text())
    assert insights["customers"]["status"] == "skipped: no completed order"
    assert json.loads((out / "scorecard.json").read_text())["events"]["unexpected"] == 2
    assert (out / "kpis_daily.csv").exists() and not (out / "customers").exists()


def test_the_data_end_is_the_last_traffic_day_when_orders_stop_before_it():
    """rfm.data_end_date: a store's days with sessions and no order are days of data (as in
    kpis_daily), so recency runs to the traffic's last day; a file without traffic keeps its
    last order day."""
    import pandas as pd

    from analytics.customers.rfm import data_end_date

    orders = pd.DataFrame({"order_date": pd.to_datetime(["2025-01-01", "2025-01-16"])})
    traffic = pd.DataFrame({"date": pd.to_datetime(["2025-01-01", "2025-03-31"])})
    assert data_end_date(orders, traffic) == pd.Timestamp("2025-03-31")
    assert data_end_date(orders) == pd.Timestamp("2025-01-16")
    assert data_end_date(orders, traffic.iloc[:0]) == pd.Timestamp("2025-01-16")
    assert data_end_date(orders, traffic.iloc[:1]) == pd.Timestamp("2025-01-16")


@pytest.mark.slow
def test_a_store_without_orders_in_its_last_days_measures_recency_to_the_data_end(cli, tmp_path):
    """A small store's last days without an order (here every product out of stock for the last
    ten days) are still days of its data: the customer models measured recency from the last
    order (a customer whose order was 77 days before the data's end read as 3 days recent, and
    the summary's end_date disagreed with the run's period_end), and --as-of on one of those
    days was refused as 'after the data's last order day'."""
    raw = tiny_config(calendar=[], events=[
        {"type": "stockout", "start": "2025-03-22", "duration_days": 10, "share_out": 1.0,
         "scope": {"category": c}} for c in ("gadgets", "books")])
    cfg = write_yaml(tmp_path / "quiet_end.yaml", raw)
    data = tmp_path / "data"
    assert cli("generate", "--config", cfg, "--out", data, "--quiet").returncode == 0
    import pandas as pd

    last_order = pd.read_csv(data / "orders.csv")["order_date"].max()
    assert last_order < "2025-03-22"
    out = tmp_path / "run"
    r = cli("analysis", "--data", data, "--out", out, "--quiet", "--set", "insights.plots=false",
            "--set", "customers.plots=false")
    assert r.returncode == 0, r.stderr
    insights = json.loads((out / "insights.json").read_text())
    assert insights["customers"]["end_date"] == insights["run"]["period_end"] == "2025-03-31"
    seg = pd.read_csv(out / "customers" / "segments.csv")
    assert seg["recency_days"].min() >= 10
    r = cli("analysis", "--data", data, "--out", tmp_path / "asof", "--quiet",
            "--as-of", "2025-03-31", "--set", "insights.plots=false",
            "--set", "customers.plots=false")
    assert r.returncode == 0, r.stderr
