"""How an episode names its slice and headline: never from a slice without support, never
against the direction of the incidents it explains."""

from __future__ import annotations

import pandas as pd
from tests.analytics.insights_synth import Shock, make_ctx
from tests.configs import make_config

from analytics import insights
from analytics.insights import grounding

NO_FORECAST = {"insights": {"forecast": {"enabled": False}}}
DAY = "2025-05-14"


def test_a_pair_whose_few_orders_fell_to_none_does_not_name_an_aov_rise(tmp_path):
    # country FR's AOV quadrupled on one day (the incident: aov in country FR up); the same day
    # the email x FR pair's 3 orders (one synthetic order row per category) fell to none, which
    # alone moves FR's orders -25 %: ``drivers.pair_within`` (sessions / orders only) picks the
    # pair. It has no AOV to show the rise and 3 -> 0 orders is chance: the country is named.
    ctx = make_ctx(tmp_path, [Shock(DAY, DAY, "aov", 4.0, {"country": "FR"})],
                   [("aov", DAY, DAY, "up", None)])
    ctx.config = make_config(**NO_FORECAST)
    inc = ctx.incidents[0]
    inc.dimension, inc.segment = "country", "FR"
    o = ctx.data.tables["orders"]
    gone = (o["order_date"] == pd.Timestamp(DAY)) & (o["channel"] == "email") & (
        o["country"] == "FR")
    ctx.data.tables["orders"] = o.loc[~gone].reset_index(drop=True)
    insights.run(ctx)
    (ep,) = ctx.insights["episodes"]
    top = ep["drivers"]["top"]
    assert (top["dimension"], top["value"]) == ("country", "FR")
    assert ep["signature"]["slice"] == "country FR"
    assert "channel x country" not in ep["title"] and " in country FR up " in ep["title"]
    assert grounding.check(ctx.insights) == []


def test_counts_moved_needs_a_move_beyond_poisson_noise():
    from analytics import drivers as dr
    from analytics.insights.episodes import _counts_moved

    days = pd.date_range("2025-01-01", periods=70, freq="D")
    rows = [{"date": d, "dimension": "channel_country", "segment": seg, "sessions": 500.0,
             "orders": (0.0 if d == days[35] else n), "revenue": 100.0 * n}
            for d in days for seg, n in (("email|FR", 3.0), ("organic|FR", 40.0))]
    k = pd.DataFrame(rows)
    k["aov"], k["conversion_rate"] = k["revenue"] / k["orders"], k["orders"] / k["sessions"]
    panel = dr.SlicePanel(k, None)
    t = days[35]
    # 3 orders expected, 0 seen: |3| < 2 sqrt(3); 40 -> 0 is a move; sessions did not move
    assert not _counts_moved(panel, 4, ("channel_country", "email|FR"), "orders", t, t)
    assert _counts_moved(panel, 4, ("channel_country", "organic|FR"), "orders", t, t)
    assert not _counts_moved(panel, 4, ("channel_country", "organic|FR"), "sessions", t, t)
