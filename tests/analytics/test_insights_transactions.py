"""Insights on a ``--transactions`` file: one channel, one category ("uncategorized"), no visits.

A slice that is the whole store (the file's one category) is no evidence of concentration, and
an unknown conversion is no evidence that the basket led a fall in orders: neither may turn a
churn wave into a stockout (README "Insights", diagnosis rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.configs import make_config

from analytics import insights
from analytics.context import Incident, RunContext
from analytics.insights import diagnosis, grounding
from analytics.insights.models import Driver, DriverSet
from analytics.kpis import compute_kpis_daily
from analytics.transactions import load_transactions

START = pd.Timestamp("2011-01-03")
DAYS = 140
CHURN = ("2011-04-11", "2011-04-24")  # days 98-111: most regular customers stop ordering
DIMS = ["overall", "channel", "country", "category", "product"]


def _retail_ii_with_churn(seed: int = 3) -> pd.DataFrame:
    """An Online Retail II file (documented columns): 600 regular customers ordering about every
    5 days, ~25 first-time buyers a day; in ``CHURN`` 70 % of the regulars place no order."""
    g = np.random.default_rng(seed)
    c0, c1 = ((pd.Timestamp(d) - START).days for d in CHURN)
    rows, inv, new_id = [], 500000, 20000
    lost = set(range(0, 600, 10)) | {c for c in range(600) if c % 10 < 7}
    for d in range(DAYS):
        day = (START + pd.Timedelta(days=d)).strftime("%Y-%m-%d")
        buyers = [str(12000 + c) for c in range(600) if g.random() < 0.2
                  and not (c0 <= d <= c1 and c in lost)]
        for _ in range(int(g.poisson(25))):
            new_id += 1
            buyers.append(str(new_id))
        for k, cid in enumerate(buyers):
            inv += 1
            for _ in range(int(g.integers(1, 4))):
                rows.append((str(inv), f"2{int(g.integers(1000, 1050))}", "ITEM",
                             int(g.integers(1, 7)), f"{day} {8 + k % 10:02d}:00:00",
                             round(float(g.uniform(1.0, 9.0)), 2), cid, "United Kingdom"))
    return pd.DataFrame(rows, columns=["Invoice", "StockCode", "Description", "Quantity",
                                       "InvoiceDate", "Price", "Customer ID", "Country"])


def _incident(kpi: str, dimension: str, segment: str) -> Incident:
    return Incident(incident_id=f"I-{kpi}-{dimension}-{segment}-{CHURN[0]}-down", kpi=kpi,
                    dimension=dimension, segment=segment, start=pd.Timestamp(CHURN[0]),
                    end=pd.Timestamp(CHURN[1]), direction="down", detectors=["rolling_zscore"],
                    level="single", confidence=0.8, severity="high", peak_score=-6.0,
                    actual=None, expected=None, magnitude_pct=None)


@pytest.fixture(scope="module")
def tx_ctx(tmp_path_factory):
    base = tmp_path_factory.mktemp("tx")
    path = base / "online_retail_II.csv"
    _retail_ii_with_churn().to_csv(path, index=False)
    data = load_transactions(path)
    ctx = RunContext(config=make_config(insights={"forecast": {"enabled": False}}), data=data,
                     out_dir=base / "run")
    ctx.kpis_daily = compute_kpis_daily(data)
    return ctx


@pytest.mark.parametrize("slices", [
    [("category", "uncategorized")],                      # named by the file's one category
    [("category", "uncategorized"), ("channel", "online")],
    [("overall", "all"), ("category", "uncategorized")],  # the store's own incident
])
def test_a_churn_wave_on_transactions_is_not_a_stockout_of_the_one_category(tx_ctx, slices):
    tx_ctx.incidents = [_incident(k, d, s) for d, s in slices for k in ("orders", "revenue")]
    doc = insights.build(tx_ctx).model_dump(mode="json")
    (ep,) = [e for e in doc["episodes"] if e["start"] <= CHURN[1] and e["end"] >= CHURN[0]]
    ch = ep["kpi_changes"]
    assert ch["sessions"] is None and ch["orders"] < -20  # the file has no visits; orders fell
    assert ch["returning_customers"] < 2 * min(ch["new_customers"], 0.0) - 20
    assert ep["diagnosis"]["type"] == "churn_wave", ep["diagnosis"]
    assert "stockout" not in ep["title"] and grounding.check_episode(ep) == []


_NO_VISITS = {"sessions": None, "conversion_rate": None, "orders": -36.9, "aov": -7.3,
              "revenue": -41.5, "returning_customers": -59.1, "new_customers": -8.6}


def _top(dimension: str, value: str, share_of_expected: float) -> DriverSet:
    top = Driver(dimension=dimension, value=value, actual=60.0, expected=100.0, change=-40.0,
                 share_of_change=1.0, share_of_expected=share_of_expected,
                 concentration=1.0 - share_of_expected, relative_change_pct=-40.0)
    return DriverSet(scope="concentrated", top=top, expected_source="baseline")


def test_the_whole_store_as_top_slice_or_no_slice_is_read_overall():
    """The small scenario's churn wave as a transactions file (orders -36.9 %, baskets -7.3 %,
    returning customers -59.1 %, new ones -8.6 %) was a stockout both ways."""
    inside = {k: v for k, v in _NO_VISITS.items() if k in ("sessions", "conversion_rate", "orders",
                                                           "aov", "revenue")}
    for drivers, ins in ((_top("category", "uncategorized", 1.0), inside),
                         (DriverSet(scope="broad", expected_source="baseline"), None)):
        d = diagnosis.diagnose(_NO_VISITS, drivers, 9, False, (None, None), None, "orders", ins)
        assert d.type == "churn_wave", (drivers.top, d)


def test_a_category_that_stands_out_is_still_a_stockout():
    """A multi-category store: electronics (20 % of the expected) lost its orders and baskets."""
    changes = {"sessions": 0.5, "conversion_rate": -12.0, "orders": -11.6, "aov": -6.0,
               "revenue": -17.0, "returning_customers": -11.0, "new_customers": -12.5}
    inside = {"sessions": None, "conversion_rate": None, "orders": -59.0, "aov": -26.0,
              "revenue": -70.0}
    d = diagnosis.diagnose(changes, _top("category", "electronics", 0.2), 3, False, (None, None),
                           None, "revenue", inside)
    assert d.type == "stockout"
    assert any(e.slice == "category electronics" and e.kpi == "orders" for e in d.evidence)
    # … and without visits (a transactions file with real categories) too
    d = diagnosis.diagnose({**changes, "sessions": None, "conversion_rate": None},
                           _top("category", "electronics", 0.2), 3, False, (None, None), None,
                           "revenue", inside)
    assert d.type == "stockout"


@pytest.mark.parametrize("mode, source, watched", [
    ("auto", "transactions", False),   # paid prices: every discount would be a price alarm
    ("auto", "simulated", True),       # a store's list prices
    ("on", "transactions", True),
    ("off", "simulated", False),
])
def test_product_prices_are_watched_where_they_are_list_prices(tx_ctx, mode, source, watched):
    """A transactions file's prices are the ones paid (here each line's price is drawn anew), so
    by default its products' own prices are not watched; their orders and the category's and the
    store's list-price indexes are, whatever the mode."""
    from dataclasses import replace

    from analytics.pipeline import detector_input

    ctx = RunContext(config=make_config(product_prices=mode, dimensions=DIMS),
                     out_dir=tx_ctx.out_dir, data=replace(tx_ctx.data, source=source))
    ctx.kpis_daily = tx_ctx.kpis_daily
    s = detector_input(ctx).series
    product = s[s["dimension"] == "product"]
    assert product["segment"].nunique() >= 40 and "orders" in set(product["kpi"])
    assert ("price" in set(product["kpi"])) == watched
    idx = s[(s["kpi"] == "price") & (s["dimension"] != "product")]
    assert set(idx["dimension"]) == {"category", "overall"}
