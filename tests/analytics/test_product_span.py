"""A product orders incident is measured over the days its orders departed (insights.product_span):
the watcher's 3- and 7-day windows flag on for days after a short stockout."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.analytics.insights_synth import make_ctx
from tests.configs import make_config

from analytics import insights
from analytics.context import Incident
from analytics.insights import grounding
from analytics.insights.product_span import measured_days, scan

START, END = "2025-05-20", "2025-05-26"   # the incident; the product sold nothing 05-20..05-22


def test_scan_finds_the_run_that_departed():
    exp = np.full(7, 5.0)
    act = np.array([0, 0, 0, 6, 4, 5, 6], float)
    assert scan(act, exp, -1) == (0, 2, -1.0)
    # the whole run is the answer when every day departed alike
    assert scan(np.zeros(7), exp, -1) == (0, 6, -1.0)
    # a rise is not a fall: nothing moved down
    assert scan(np.full(7, 9.0), exp, -1) is None
    # equal likelihood ratios: the longer run, then the earlier
    assert scan(np.array([0, 5, 0], float), np.full(3, 5.0), -1) == (0, 0, -1.0)
    got = scan(np.array([0, 0, 5, 5, 0, 0], float), np.full(6, 5.0), -1)
    assert got[:2] == (0, 5) or got[:2] == (0, 1)
    i, j, pct = got
    a, e = np.array([0, 0, 5, 5, 0, 0], float)[i:j + 1].sum(), 5.0 * (j - i + 1)
    assert pct == a / e - 1


def _watcher_rows(actual: list[float], expected: float = 5.0, segment: str = "141"
                  ) -> pd.DataFrame:
    days = pd.date_range("2025-05-13", periods=len(actual), freq="D")
    return pd.DataFrame({"date": days, "kpi": "orders", "dimension": "product",
                         "segment": segment, "detector": "product_watch", "score": -5.0,
                         "flag": True, "direction": "down", "expected": expected,
                         "actual": actual, "mode": "causal"})


def _product_incident(actual: float, expected: float, segment: str = "141") -> Incident:
    return Incident(
        incident_id=f"I-orders-product-{segment}-{START}-down", kpi="orders",
        dimension="product", segment=segment, start=pd.Timestamp(START),
        end=pd.Timestamp(END), direction="down", detectors=["product_watch"], level="single",
        confidence=0.9, severity="critical", peak_score=6.0, actual=actual, expected=expected,
        magnitude_pct=(actual - expected) / expected * 100)


def test_measured_days_of_a_product_incident():
    # 7 normal days, then 05-20..05-22 nothing sold, then normal again
    det = _watcher_rows([5, 6, 4, 5, 5, 6, 4, 0, 0, 0, 6, 4, 5, 7, 5])
    other = _watcher_rows([0] * 15, segment="142")        # another product: not read
    inc = _product_incident(22.0, 35.0)
    got = measured_days(pd.concat([det, other]), [inc])
    assert got == {inc.incident_id: (pd.Timestamp("2025-05-20"), pd.Timestamp("2025-05-22"),
                                     -100.0)}
    # flagged late (its first flag on the last day it sold nothing): the run reaches back to
    # where the orders stopped, up to 7 days before the incident
    late = Incident(**{**vars(inc), "start": pd.Timestamp("2025-05-22")})
    assert measured_days(det, [late])[inc.incident_id][:2] == (pd.Timestamp("2025-05-20"),
                                                              pd.Timestamp("2025-05-22"))
    assert measured_days(det, [late], back=0)[inc.incident_id][:2] == (
        pd.Timestamp("2025-05-22"), pd.Timestamp("2025-05-22"))
    # store series and sub-daily incidents are not measured here
    store = Incident(**{**vars(inc), "incident_id": "I-orders-overall", "dimension": "overall",
                        "segment": "all"})
    assert measured_days(det, [store]) == {}
    assert measured_days(None, [inc]) == {}


def test_the_title_and_narrative_quote_the_days_it_sold_nothing(tmp_path):
    ctx = make_ctx(tmp_path, [], [])
    ctx.config = make_config(insights={"forecast": {"enabled": False}})
    ctx.detections = _watcher_rows([5, 6, 4, 5, 5, 6, 4, 0, 0, 0, 6, 4, 5, 7, 5])
    inc = _product_incident(22.0, 35.0)
    ctx.incidents = [inc]
    insights.run(ctx)
    (item,) = ctx.insights["incidents"]
    assert (item["measured_start"], item["measured_end"]) == ("2025-05-20", "2025-05-22")
    assert item["measured_change_pct"] == -100.0
    assert item["narrative"].endswith(
        "the change is in 2025-05-20 to 2025-05-22, which deviated down -100.0% vs expected.")
    (ep,) = ctx.insights["episodes"]
    assert ep["incident_change"]["change_pct"] == -100.0
    assert ep["title"].startswith("orders in product 141 down -100.0% vs expected: stockout")
    assert "(2025-05-20 to 2025-05-22; flagged 2025-05-20 to 2025-05-26)" in ep["title"]
    assert grounding.check(ctx.insights) == []
