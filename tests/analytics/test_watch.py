"""channel x country cells as watched series (analytics/watch.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.config import AnalysisConfig
from analytics.watch import pair_kpis


def _tables():
    days = pd.date_range("2025-01-01", periods=3, freq="D")
    orders = pd.DataFrame({
        "order_date": [days[0], days[0], days[0], days[2], days[1]],
        "channel": ["web", "web", "mail", "web", "tiny"],
        "country": ["DE", "DE", "FR", "DE", "FR"],
        "status": ["completed", "completed", "completed", "cancelled", "completed"],
        "net_revenue": [10.0, 30.0, 5.0, 99.0, 1.0],
    })
    traffic = pd.DataFrame({
        "date": [days[0], days[1], days[2], days[0]],
        "channel": ["web", "web", "web", "mail"],
        "country": ["DE", "DE", "DE", "FR"],
        "sessions": [100, 80, 90, 50],
    })
    return days, {"orders": orders, "website_traffic": traffic}


def test_pair_kpis_on_a_full_grid():
    days, tables = _tables()
    p = pair_kpis(tables, days)
    web = p[p["segment"] == "web|DE"].set_index("date")
    assert list(web.index) == list(days)  # every day, even without orders
    assert web["orders"].tolist() == [2.0, 0.0, 0.0]  # the cancelled order does not count
    assert web["revenue"].tolist() == [40.0, 0.0, 0.0]
    assert web["aov"].iloc[0] == 20.0 and np.isnan(web["aov"].iloc[1])
    assert web["conversion_rate"].tolist() == [0.02, 0.0, 0.0]
    assert set(p["dimension"]) == {"channel_country"}
    # cells below the share of orders are not watched
    assert set(pair_kpis(tables, days)["segment"]) == {"web|DE", "mail|FR", "tiny|FR"}
    assert set(pair_kpis(tables, days, min_share=0.3)["segment"]) == {"web|DE"}


def test_config_accepts_the_pair_dimension():
    cfg = AnalysisConfig(dimensions=["overall", "channel_country"], pair_min_share=0.02)
    assert "channel_country" in cfg.dimensions
