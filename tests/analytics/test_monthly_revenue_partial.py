"""tables/monthly_revenue.csv compared a month the data covers in part with a whole one: a
transactions file ending on 6 February read `2012-02 … mom_growth_pct -80.6`, a random world
starting on 20 September read October +182 %, with nothing in the table saying the months were
partial. Such a month is now `partial` with its `days`, and neither it nor the month after it has
a growth."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from analytics.kpis import summary_tables


def test_partial_months_are_marked_and_get_no_growth():
    dates = pd.date_range("2025-01-20", "2025-04-06", freq="D")
    kd = pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                       "revenue": 100.0, "orders": 2.0})
    m = summary_tables(SimpleNamespace(tables={}), kd)["monthly_revenue"].set_index("month")
    assert m["days"].tolist() == [12, 28, 31, 6]
    assert m["partial"].tolist() == [True, False, False, True]
    # a month's aov is its revenue over its orders, 100 / 2 a day (mutant K25 used all orders)
    assert m["aov"].tolist() == [50.0] * 4
    growth = m["mom_growth_pct"]
    assert math.isnan(growth["2025-01"]) and math.isnan(growth["2025-04"])  # was -80.6
    assert math.isnan(growth["2025-02"])  # against a 12-day January: was +133 %
    assert growth["2025-03"] == pytest.approx((3100 - 2800) / 2800 * 100)
    # the columns an existing reader knows keep their places
    assert list(m.reset_index().columns[:5]) == ["month", "revenue", "orders", "aov",
                                                 "mom_growth_pct"]


def test_a_month_missing_two_days_is_partial():
    """Partial means fewer days than the month has, not fewer than 28: January from the 3rd (29
    of 31 days) is partial, so February gets no growth against it (mutant K26 passed)."""
    dates = pd.date_range("2025-01-03", "2025-03-31", freq="D")
    kd = pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                       "revenue": 100.0, "orders": 2.0})
    m = summary_tables(SimpleNamespace(tables={}), kd)["monthly_revenue"].set_index("month")
    assert m["partial"].tolist() == [True, False, False]
    assert math.isnan(m["mom_growth_pct"]["2025-02"])
    assert m["mom_growth_pct"]["2025-03"] == pytest.approx((3100 - 2800) / 2800 * 100)


def test_a_month_after_one_without_revenue_has_no_growth():
    """A small store with no order in May: June's growth over 0 was written as 'inf' in
    tables/monthly_revenue.csv (edge-worlds audit); it is empty, and a month of 0 after one with
    revenue is -100 %."""
    dates = pd.date_range("2025-04-01", "2025-07-31", freq="D")
    rev = [0.0 if d.month == 5 else 10.0 for d in dates]
    kd = pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                       "revenue": rev, "orders": [r / 10 for r in rev]})
    m = summary_tables(SimpleNamespace(tables={}), kd)["monthly_revenue"].set_index("month")
    growth = m["mom_growth_pct"]
    assert growth["2025-05"] == pytest.approx(-100.0)
    assert math.isnan(growth["2025-06"])     # was inf
    assert growth["2025-07"] == pytest.approx((310 - 300) / 300 * 100)
