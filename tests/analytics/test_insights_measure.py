"""Which KPI an episode's text leads with (``insights.episodes._measure``), on hand-made stores
whose changes are known: the signature's KPI, a price change's basket, and the biggest mover
with the aggregate KPIs preferred within 5 % (mutants I08 and I09 of audit-mutrest survived)."""

from __future__ import annotations

import pandas as pd
import pytest
from tests.analytics.insights_synth import Shock, kpis_from_cube, make_cube

from analytics import drivers as dr
from analytics.insights.episodes import _measure
from analytics.insights_config import InsightsConfig

WIN = ("2025-05-12", "2025-05-16")


def measured(*shocks: tuple[str, float]):
    cube = make_cube([Shock(*WIN, what, mult) for what, mult in shocks], noise=0.0)
    panel = dr.SlicePanel(kpis_from_cube(cube))
    changes, sig, primary = _measure(panel, InsightsConfig(), pd.Timestamp(WIN[0]),
                                     pd.Timestamp(WIN[1]), fallback="orders")
    return changes, sig.label, primary


@pytest.mark.parametrize(("shocks", "label", "primary"), [
    ([("sessions", 0.6)], "traffic-driven", "sessions"),
    ([("conversion", 0.6)], "conversion-driven", "conversion_rate"),
    # a pricing error: the basket falls 40 %, orders rise 20 %, revenue only 28 %: the basket
    ([("aov", 0.6), ("conversion", 1.2)], "basket-driven", "aov"),
    # the basket falls 40 % and orders 10 %: revenue moves more (46 %) and is named
    ([("aov", 0.6), ("conversion", 0.9)], "basket-driven", "revenue"),
    # a mix: orders -36 %, revenue -37.3 % (within 5 % of it): the aggregate, orders, is named
    ([("sessions", 0.8), ("conversion", 0.8), ("aov", 0.98)], "mix", "orders"),
    # revenue -42.4 %: orders' -36 % is more than 5 % below it, revenue is named
    ([("sessions", 0.8), ("conversion", 0.8), ("aov", 0.9)], "mix", "revenue"),
])
def test_the_primary_kpi_follows_the_signature_then_the_biggest_mover(shocks, label, primary):
    changes, got_label, got = measured(*shocks)
    assert got_label == label, changes
    assert got == primary, changes


def test_the_changes_are_the_windows_percent_changes():
    changes, _, _ = measured(("aov", 0.6), ("conversion", 1.2))
    assert changes["aov"] == pytest.approx(-40.0, abs=0.5)
    assert changes["orders"] == pytest.approx(20.0, abs=0.5)
    assert changes["revenue"] == pytest.approx(-28.0, abs=0.5)
