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


def _one_episode(tmp_path, kpi: str, dim: str, seg: str):
    """The one episode of a store whose AOV rose 20 % on DAY in ``dim`` ``seg``, explaining one
    ``kpi`` up incident there."""
    from analytics.insights.models import Episode

    ctx = make_ctx(tmp_path, [Shock(DAY, DAY, "aov", 1.2, {dim: seg})],
                   [(kpi, DAY, DAY, "up", None)])
    ctx.config = make_config(**NO_FORECAST)
    ctx.incidents[0].dimension, ctx.incidents[0].segment = dim, seg
    insights.run(ctx)
    (doc,) = ctx.insights["episodes"]
    return Episode.model_validate(doc)


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


def test_a_sub_daily_episode_quotes_its_incident_not_the_whole_day(tmp_path):
    # an hourly file with a 3-hour outage (-100 %): its episode read "requests down -18.3%"
    # (the whole day), and an episode of one up incident read "requests down -0.1%"
    import json

    import numpy as np
    from run_analysis import main
    from tests.analytics.test_insights_reasons import _daily_doc

    from analytics import insights as ins

    rng = np.random.default_rng(3)
    t = pd.date_range("2025-01-01", periods=24 * 60, freq="h")
    v = rng.poisson(1000 * (1 + 0.5 * np.sin((t.hour.to_numpy() - 6) / 24 * 2 * np.pi)))
    v = v.astype(float)
    v[(t >= pd.Timestamp("2025-02-10 10:00")) & (t < pd.Timestamp("2025-02-10 13:00"))] = 0.0
    csv = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": t, "requests": v}).to_csv(csv, index=False)
    assert main(["--kpis", str(csv), "--out", str(tmp_path / "run"), "--quiet",
                 "--set", "insights.forecast.enabled=false"]) == 0
    doc = json.loads((tmp_path / "run" / "insights.json").read_text())
    incs = {i["incident_id"]: i for i in doc["incidents"]}
    (outage,) = [e for e in doc["episodes"] if e["start"] == "2025-02-10"]
    ic = outage["incident_change"]
    own = incs[ic["incident_id"]]
    assert ic["why"] == "sub_daily" and ic["slice"] == "overall"
    assert own["direction"] == "down" and own["start_time"] == "2025-02-10T10:00"
    assert ic["change_pct"] == own["magnitude_pct"] < outage["kpi_changes"]["requests"]
    assert outage["title"].startswith(f"requests down {own['magnitude_pct']:+.1f}% vs expected")
    assert "(2025-02-10, 10:00 to " in outage["title"]
    assert "Overall vs baseline (whole days): requests " in outage["narrative"]
    for ep in doc["episodes"]:  # the title's direction is its incidents' (one way each here)
        dirs = {incs[i]["direction"] for i in ep["incident_ids"] if incs[i]["kpi"] == "requests"}
        if len(dirs) == 1:
            assert ep["title"].startswith(f"requests {dirs.pop()} "), ep["title"]
    # a day and its incident moving opposite ways is among them (the case that read "down" for an
    # up incident; with median hour factors, 2026-12-05, the one left is a down incident on a day
    # up overall)
    assert any((e["kpi_changes"]["requests"] < 0) != (e["incident_change"]["change_pct"] < 0)
               for e in doc["episodes"])
    ins.validate_json(doc)
    assert grounding.check(doc) == []
    # a daily file's episodes quote their days, and carry no incident_change
    assert all("incident_change" not in e for e in _daily_doc(tmp_path)["episodes"])


def test_a_product_price_episode_is_titled_by_the_products_price_move(tmp_path):
    # random world audit: "aov in category sports up +12.2%: pricing error of product 285"
    # while product 285's list price fell 80 % (the category's AOV is what the episode measures)
    from datetime import date
    from types import SimpleNamespace

    from analytics.insights.headline import _product_change
    from analytics.insights.narrative import _episode_action, _episode_narrative, _episode_title

    ep = _one_episode(tmp_path, "aov", "category", "home")
    assert ep.scope_changes["aov"] > 0  # a pricing error's primary KPI: the category's AOV
    d = date.fromisoformat(DAY)
    price = SimpleNamespace(incident_id=f"I-price-product-285-{DAY}-down", kpi="price",
                            dimension="product", segment="285", magnitude_pct=-79.982, start=d,
                            end=d, start_time=None, end_time=None)
    diag = ep.diagnosis.model_copy(update={"type": "pricing_error", "label": "pricing error"})
    ep = ep.model_copy(update={"slices": ["product 285"], "kpis": ["price"], "primary_kpi": "aov",
                               "incident_ids": [price.incident_id], "diagnosis": diag})
    assert _episode_title(ep).startswith("aov in category home up +")  # the other way
    assert _product_change(ep.model_copy(update={"slices": ["category home", "product 285"]}),
                         [price]) is None  # a store episode keeps its own headline
    ep.incident_change = _product_change(ep, [price])
    assert ep.incident_change.why == "product_price"
    ep.title, ep.narrative = _episode_title(ep), _episode_narrative(ep)
    ep.recommended_action = _episode_action(ep)
    assert ep.title == f"price in product 285 down -80.0% vs expected: pricing error ({DAY})"
    assert "(whole days)" not in ep.narrative  # daily input: only the title changed
    out = ep.model_dump(mode="json")
    assert grounding.check_episode(out) == []
    assert grounding.check_episode({**out, "title": out["title"].replace("-80.0", "-70.0")})


def test_a_product_stockout_episode_is_titled_by_the_products_orders(tmp_path):
    # TRAIN world s1 EP-2025-11-04: "revenue in category beauty up +7.2%: stockout of product 16"
    # (the category the episode is measured on rose while product 16 sold nothing); every
    # product stockout quoted its category's revenue, -0.1 % to -16 %, not the product's fall
    from datetime import date
    from types import SimpleNamespace

    from analytics.insights.headline import _product_change
    from analytics.insights.narrative import _episode_action, _episode_narrative, _episode_title

    ep = _one_episode(tmp_path, "revenue", "category", "home")
    assert ep.scope_changes["revenue"] > 0
    d = date.fromisoformat(DAY)

    def orders(seg, pct):
        return SimpleNamespace(incident_id=f"I-orders-product-{seg}-{DAY}-down", kpi="orders",
                               dimension="product", segment=seg, magnitude_pct=pct, start=d,
                               end=d, start_time=None, end_time=None, measured_start=None,
                               measured_end=None, measured_change_pct=None)

    small, big = orders("16", -61.25), orders("34", -97.5)
    diag = ep.diagnosis.model_copy(update={"type": "stockout", "label": "stockout"})
    ep = ep.model_copy(update={"slices": ["product 16", "product 34"], "kpis": ["orders"],
                               "primary_kpi": "revenue", "diagnosis": diag,
                               "incident_ids": [small.incident_id, big.incident_id]})
    assert _episode_title(ep).startswith("revenue in category home up +")  # the other way
    assert _product_change(ep.model_copy(update={"slices": ["category home", "product 16"]}),
                           [small, big]) is None  # a store episode keeps its own headline
    ep.incident_change = _product_change(ep, [small, big])
    assert (ep.incident_change.why, ep.incident_change.slice) == ("product_orders", "product 34")
    ep.title, ep.narrative = _episode_title(ep), _episode_narrative(ep)
    ep.recommended_action = _episode_action(ep)
    assert ep.title == ("orders in product 34 down -97.5% vs expected: stockout of product 16, "
                        f"product 34 ({DAY})"), ep.title
    out = ep.model_dump(mode="json")
    assert grounding.check_episode(out) == []
    assert grounding.check_episode({**out, "title": out["title"].replace("-97.5", "-61.2")})
    # a price incident beside them is the pricing case's headline (as before)
    price = SimpleNamespace(**{**vars(small), "kpi": "price", "magnitude_pct": -40.0})
    assert _product_change(ep, [small, price]).why == "product_price"


def test_a_title_does_not_quote_a_figure_against_every_incident_on_its_kpi(tmp_path):
    # random world 21 EP-2025-12-24: revenue up in country ES (a fraud order), the country had
    # no baseline revenue (no in-scope change), so the title fell back to the store's
    # "revenue down -6.2%"; it now quotes the incident
    from datetime import date
    from types import SimpleNamespace

    from analytics.insights.headline import _against, _incident_change
    from analytics.insights.narrative import _episode_action, _episode_narrative, _episode_title

    ep = _one_episode(tmp_path, "revenue", "country", "FR")
    d = date.fromisoformat(DAY)
    inc = SimpleNamespace(incident_id=f"I-revenue-country-FR-{DAY}-up", kpi="revenue",
                          dimension="country", segment="FR", direction="up",
                          magnitude_pct=4938.1, start=d, end=d, start_time=None, end_time=None)
    assert not _against(ep, [inc])  # as measured: FR's revenue rose
    ep = ep.model_copy(update={
        "primary_kpi": "revenue", "kpi_changes": {**ep.kpi_changes, "revenue": -6.2},
        "scope_changes": {**(ep.scope_changes or {}), "revenue": None}})
    assert _episode_title(ep).startswith("revenue down -6.2%")  # the store's, against it
    assert _against(ep, [inc])
    ep.incident_change = _incident_change(ep, [inc], "direction")
    ep.title, ep.narrative = _episode_title(ep), _episode_narrative(ep)
    ep.recommended_action = _episode_action(ep)
    assert ep.title.startswith("revenue in country FR up +4938.1% vs expected: ")
    assert "(whole days)" not in ep.narrative
    assert grounding.check_episode(ep.model_dump(mode="json")) == []
