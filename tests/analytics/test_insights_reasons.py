"""An episode's "Likely <type> (confidence …): <reason>" states only what the changes the
diagnosis read show (audit-insightreader): a rule fires on relative sizes, and the fixed sentence
per type contradicted the numbers beside it on the default scenario and random worlds (a
promotion "with cheaper baskets" whose baskets grew +16.8 %, a pricing error "with orders level"
on orders -14.1 %, a stockout "with smaller baskets" on baskets +49.6 %, churn "not new ones"
with new customers -51.0 % against returning -51.1 %, an outage "store-wide" concentrated in one
country, a level shift that "stayed" where the data ended too soon to see it)."""

from __future__ import annotations

from datetime import date

from analytics.insights.models import Diagnosis, Driver, DriverSet, Episode, SignatureInfo
from analytics.insights.narrative import _episode_narrative, _reason

D0 = date(2025, 5, 10)
FUNNEL = ("sessions", "conversion_rate", "aov", "orders", "revenue")


def _top(dimension: str, value: str, rel: float) -> Driver:
    return Driver(dimension=dimension, value=value, actual=50.0, expected=100.0, change=-50.0,
                  relative_change_pct=rel, share_of_change=0.9, share_of_expected=0.3,
                  concentration=0.6)


def _episode(kind: str, overall: dict[str, float], scope: dict[str, float | None] | None = None,
             top: Driver | None = None, named_by: str = "incidents",
             persistence_z: float | None = 0.5, direction: str = "down",
             slices: list[str] | None = None) -> Episode:
    sig = SignatureInfo(label="mix", slice="overall", revenue_pct=overall.get("revenue"),
                        traffic_pct=overall.get("sessions"),
                        conversion_pct=overall.get("conversion_rate"),
                        basket_pct=overall.get("aov"))
    return Episode(
        episode_id="EP-x", start=D0, end=D0, days=1, measured_start=D0, measured_end=D0,
        baseline="centered", direction=direction, incident_ids=["I-x"], kpis=["orders"],
        slices=slices or ["overall"], primary_kpi="orders", kpi_changes=overall,
        scope_changes=scope, severity="high", confidence=0.5, signature=sig,
        drivers=DriverSet(scope="concentrated" if top else "broad", top=top, named_by=named_by,
                          expected_source="baseline"),
        diagnosis=Diagnosis(type=kind, label=kind, confidence=0.6, scope="broad",
                            persistence_z=persistence_z),
        planned=False, title="t", narrative="n", recommended_action="a",
    )


def _k(s=0.0, c=0.0, b=0.0, o=0.0, **more) -> dict[str, float]:
    return {"sessions": s, "conversion_rate": c, "aov": b, "orders": o,
            "revenue": (1 + o / 100) * (1 + b / 100) * 100 - 100, **more}


def test_a_promotion_whose_baskets_grew_is_not_told_cheaper():
    # default scenario EP-2024-06-09: country ES orders +88.5 %, aov +16.8 %, sessions +4.9 %
    ep = _episode("flash_sale", _k(3.1, 10.0, -1.4, 13.4),
                  _k(4.9, 79.7, 16.8, 88.5), _top("country", "ES", 92.6))
    text = _reason(ep)
    assert "cheaper" not in text and "bigger baskets" in text
    assert _reason(_episode("flash_sale", _k(35.0, 25.0, -21.4, 69.5))) == (
        "more visitors and more of them buying, with cheaper baskets")


def test_a_pricing_error_with_orders_moving_does_not_say_orders_level():
    # small scenario EP-2025-02-04: GB aov -15.6 %, orders -14.1 %
    ep = _episode("pricing_error", _k(-3.1, 10.9, -3.5, 7.4),
                  _k(-8.1, -6.5, -15.6, -14.1), _top("country", "GB", -18.1))
    text = _reason(ep)
    assert "orders level" not in text and text.startswith(
        "basket value in country GB fell more than the orders there")
    level = _episode("pricing_error", _k(b=-15.0, o=0.2))
    assert _reason(level).startswith("basket value fell with orders level")
    # a transactions run's price index flagged in a flash sale: orders +193.4 %, aov -22.3 %
    rose = _episode("pricing_error", {"orders": 193.4, "aov": -22.3, "revenue": 128.1})
    assert _reason(rose).startswith("basket value fell while orders rose")


def test_a_pricing_error_read_in_its_slice_names_the_slice_for_orders_that_rose():
    # random world 10 (rolling_zscore alone) EP-2024-10-08: jewelry's orders rose while the
    # store's fell -3.5 %; "basket value fell while orders rose" beside "orders -3.5%" failed
    # the grounding check ('orders rose' but the field is -3.5%)
    from analytics.insights import grounding

    ep = _episode("pricing_error", _k(-1.0, -2.6, -5.6, -3.5), _k(0.4, 6.0, -5.5, 6.4),
                  _top("category", "jewelry", -5.5))
    text = _reason(ep)
    assert text.startswith("basket value in category jewelry fell while orders there rose")
    signed = {"orders": -3.5, "aov": -5.6}
    assert grounding.check_text(text, where="r", dates=set(), signed=signed) == []
    assert grounding.check_text("basket value fell while orders rose", where="r", dates=set(),
                                signed=signed) != []  # the old wording


def test_a_type_the_product_watcher_set_against_the_funnel_cites_the_watcher():
    # a store episode retyped by its product incidents while its category's orders rose
    ep = _episode("stockout", _k(1.0, 2.0, 3.0, 5.0), slices=["category books", "product 7"])
    assert _reason(ep) == "the product watcher saw a product's orders collapse against its " \
        "category's"
    assert "fewer orders" not in _reason(_episode("stockout", _k(1.0, 2.0, 3.0, 5.0)))


def test_a_stockout_whose_category_baskets_grew_is_not_told_smaller():
    ep = _episode("stockout", _k(-2.4, -41.7, -11.3, -43.1),
                  {"sessions": None, "conversion_rate": None, "aov": 49.6, "orders": -56.1,
                   "revenue": -34.4}, _top("category", "fashion", -30.5))
    assert _reason(ep) == "fewer orders, confined to a category"
    store = _episode("stockout", _k(0.5, -2.0, -20.0, -25.0))  # a store-wide basket-led read
    assert _reason(store) == "fewer orders and smaller baskets"


def test_churn_with_new_customers_hit_alike_is_not_told_not_new_ones():
    alike = _episode("churn_wave", _k(c=-50.0, o=-51.0, returning_customers=-51.1,
                                      new_customers=-51.0))
    assert "not new ones" not in _reason(alike) and "alike" in _reason(alike)
    more = _episode("churn_wave", _k(c=-30.0, o=-30.0, returning_customers=-57.6,
                                     new_customers=-45.6))
    assert "mostly through returning customers" in _reason(more)
    only = _episode("churn_wave", _k(c=-30.0, o=-30.0, returning_customers=-57.3,
                                     new_customers=-1.0))
    assert _reason(only) == "the loss came through returning customers, not new ones"
    unknown = _episode("churn_wave", _k(c=-30.0, o=-30.0))  # no customer counts
    assert "alike" not in _reason(unknown) and "returning" not in _reason(unknown)


def test_an_outage_concentrated_in_a_country_is_not_store_wide():
    # random world 101 EP-2024-09-15: concentrated in country NL (drivers' ranking)
    ep = _episode("site_outage", _k(-17.7, -10.5, -2.0, -26.3), _k(-50.0, -15.7, -6.8, -57.9),
                  _top("country", "NL", -50.3), named_by="drivers")
    text = _episode_narrative(ep)
    assert "store-wide" not in text and "visits were lost in country NL" in text
    # JP's visits -79 % with its orders gone: buyers did not keep converting
    jp = _episode("site_outage", _k(5.2, -60.5, 12.4, -58.4),
                  {"sessions": -79.3, "conversion_rate": -100.0, "aov": None, "orders": -100.0,
                   "revenue": -100.0}, _top("country", "JP", -79.1))
    assert "kept converting" not in _reason(jp)


def test_a_level_shift_too_near_the_end_does_not_claim_it_stayed():
    ep = _episode("level_shift", _k(-20.0, 0.0, 0.0, -20.0), persistence_z=None)
    assert "stayed" not in _reason(ep) and "too near the start or end" in _reason(ep)
    assert _reason(_episode("level_shift", _k(-20.0, 0.0, 0.0, -20.0), persistence_z=-5.0)) \
        == "the new level stayed after the episode"


def test_bots_and_fraud_claim_level_only_where_it_was():
    bots = _episode("bot_traffic", _k(60.0, -27.0, 0.0, 18.0))
    assert "orders stayed level" not in _reason(bots)
    assert "orders stayed level" in _reason(_episode("bot_traffic", _k(50.0, -33.0, 0.0, 0.5)))
    fraud = _episode("fraud_orders", _k(-9.1, 0.0, 24.2, 0.0))
    assert "visits level" not in _reason(fraud)
    assert "visits level" in _reason(_episode("fraud_orders", _k(1.0, 0.0, 24.2, 1.0)))


def test_a_product_price_episode_says_which_way_the_price_went():
    # random world 101 EP-2024-11-24: product 285's list price -80 % under a title of the
    # category's aov up +12.2 %: the reason names the price's own direction
    ep = _episode("pricing_error", _k(0.6, 0.0, 8.3, 0.6), slices=["product 285"])
    assert "list price fall" in _reason(ep)
    up = _episode("pricing_error", _k(0.6, 0.0, 8.3, 0.6), slices=["product 285"],
                  direction="up")
    assert "list price rise" in _reason(up)


def test_a_driver_moving_against_the_total_says_so_in_the_markdown():
    # default scenario EP-2025-04-29: GB revenue up on a day the store's fell against the
    # detectors' expectation: its share of the change is negative
    from analytics.insights.markdown import _drivers_md

    top = {"dimension": "country", "value": "GB", "share_of_change": -0.269,
           "relative_change_pct": 38.1}
    ds = {"scope": "concentrated", "top": top, "drivers": [], "expected_source": "mixed"}
    assert _drivers_md(ds) == (
        "country GB -27% of change, against the total's direction (+38.1% vs expected)")
    with_top = {**ds, "top": {**top, "share_of_change": 0.98}}
    assert _drivers_md(with_top) == "country GB 98% of change (+38.1% vs expected)"


def _revenue_days(n: int):
    import numpy as np
    import pandas as pd

    dates = pd.date_range("2025-01-01", periods=n, freq="D")
    # a store losing a third of its revenue over the period: a trend, not a season
    rev = 60_000 * np.linspace(1.0, 0.66, n)
    return pd.DataFrame({"date": dates, "dimension": "overall", "segment": "all",
                         "revenue": rev})


def test_a_monthly_profile_needs_a_full_year_of_revenue():
    # small scenario (180 days): "monthly: peak Jan, trough Jun, amplitude 47.9%" was the churn
    # wave and the trend told as a season
    from analytics.insights.markdown import _tail
    from analytics.insights.sections import _seasonality

    half = _seasonality(_revenue_days(180))
    assert half.weekday is not None and half.monthly is None
    doc = {"forecast": {"status": "skipped", "reason": "off"},
           "seasonality": half.model_dump(), "customers": None}
    assert "- monthly: no profile (less than a year of revenue" in "\n".join(_tail(doc))
    year = _seasonality(_revenue_days(365))
    assert year.monthly is not None and len(year.monthly.points) == 12


def test_a_run_with_nothing_flagged_says_so_and_points_at_no_episodes(tmp_path):
    # a flat --kpis series (no revenue, no incident): the headline said "see the episodes" and
    # the brief had no episode to show
    import numpy as np
    import pandas as pd
    from run_analysis import main

    rng = np.random.default_rng(3)
    days = pd.date_range("2025-01-01", periods=120, freq="D").strftime("%Y-%m-%d")
    csv = tmp_path / "flat.csv"
    pd.DataFrame({"date": days, "value": (1000 * rng.lognormal(0, 0.01, 120)).round(2)}).to_csv(
        csv, index=False)
    assert main(["--kpis", str(csv), "--out", str(tmp_path / "run"), "--quiet",
                 "--set", "insights.forecast.enabled=false"]) == 0
    import json

    doc = json.loads((tmp_path / "run" / "insights.json").read_text())
    assert doc["episodes"] == [] and doc["incidents_total"] == 0
    assert "see the episodes" not in doc["brief"]["headline"]
    md = (tmp_path / "run" / "insights.md").read_text()
    assert "- No episode: no incident was flagged on any series." in md


def test_fractions_percents_and_the_two_confidences_say_which_they_are():
    # channels.revenue_share 0.418 sat next to revenue_vs_baseline_pct -28.97 with no unit in the
    # schema, and an episode's confidence 0.41 next to its narrative's "confidence 0.60" (the
    # diagnosis'): a reader could take either for the other
    import json

    from analytics.insights.schema import SCHEMA_PATH

    defs = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["$defs"]

    def desc(model: str, field: str) -> str:
        return defs[model]["properties"][field].get("description", "")

    assert "fraction" in desc("Channel", "revenue_share")
    assert "fraction" in desc("Channel", "conversion_rate")
    for field in ("revenue_vs_baseline_pct", "conversion_vs_baseline_pct"):
        assert "%" in desc("Channel", field)
    assert "%" in desc("KpiChange", "change_pct")
    assert "diagnosis" in desc("Episode", "confidence")
    assert "diagnosis" in desc("IncidentInsight", "confidence")
    # random world 101 EP-2025-01-15: direction "up" (its aov-up incident) under the title
    # "revenue in category fashion down -34.4%"
    assert "not the sign of the title's change" in desc("Episode", "direction")


def test_the_markdown_customers_section_keeps_the_alerts_and_is_whole_json():
    # default scenario: the sorted customers JSON cut at 3,000 characters ended mid-value inside
    # "clv" and dropped "monitor" (two churn alerts) and "segments", which sort after the churn
    # model's calibration bins
    import json

    from analytics.insights.markdown import _tail

    alerts = [{"segment": "At Risk", "severity": "high", "date": "2025-04-10", "growth": 0.1248}]
    customers = {
        "churn": {"calibration": {"reliability": [{"bin": f"0.{i}", "customers": 100 * i,
                                                   "mean_predicted": 0.1 * i}
                                                  for i in range(10)] * 6}},
        "clv": {"waves": [{"day": "2024-06-19", "share_lost": 0.043}] * 100},
        "monitor": {"alerts": alerts},
        "segments": {"At Risk": 12440, "Lapsing": 24168},
    }
    doc = {"forecast": {"status": "skipped", "reason": "off"}, "seasonality": {},
           "customers": customers}
    md = "\n".join(_tail(doc))
    body = md.split("```json\n", 1)[1].split("\n```", 1)[0]
    shown = json.loads(body)  # whole JSON, not a cut string
    assert shown["monitor"]["alerts"] == alerts and shown["segments"]["At Risk"] == 12440
    assert len(body) <= 3000
    assert "left out here, in insights.json: churn, clv" in md


def test_a_title_dates_its_change_by_the_days_it_is_measured_over():
    # small scenario: "revenue down -77.9%: stockout (2025-05-13 to 2025-05-21)" — the -77.9 %
    # is over 2025-05-13 to 2025-05-15 (the stockout's three days; -26 % over the nine)
    from datetime import timedelta

    from analytics.insights import grounding
    from analytics.insights.narrative import _episode_title

    ep = _episode("stockout", _k(-3.7, -25.3, -69.3, -28.1))
    ep = ep.model_copy(update={"primary_kpi": "revenue", "end": D0 + timedelta(days=8), "days": 9,
                               "measured_end": D0 + timedelta(days=2)})
    title = _episode_title(ep)
    assert title.endswith("(2025-05-10 to 2025-05-12; flagged 2025-05-10 to 2025-05-18)")
    doc = ep.model_dump(mode="json")
    doc["title"] = title
    assert not any(".title" in b for b in grounding.check_episode(doc))
    same = ep.model_copy(update={"measured_end": ep.end})
    assert _episode_title(same).endswith(": stockout (2025-05-10 to 2025-05-18)")


def test_a_sub_daily_incident_keeps_its_hours(tmp_path):
    # an hourly --kpis file whose requests went to zero for three hours: its incident read
    # "requests down -100.0% vs expected on 2025-04-29" with the hours gone from insights.json
    import json

    import numpy as np
    import pandas as pd
    from run_analysis import main

    from analytics.insights import grounding

    rng = np.random.default_rng(5)
    n = 24 * 35
    t = pd.date_range("2025-03-01", periods=n, freq="h")
    lam = 200 * (1 + 0.5 * np.sin(2 * np.pi * ((np.arange(n) % 24) - 6) / 24))
    v = rng.poisson(lam).astype(float)
    v[24 * 30 + 14: 24 * 30 + 17] = 0.0  # 2025-03-31, 14:00 to 16:00
    csv = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M"), "requests": v}).to_csv(
        csv, index=False)
    assert main(["--kpis", str(csv), "--out", str(tmp_path / "run"), "--quiet",
                 "--set", "insights.forecast.enabled=false"]) == 0
    doc = json.loads((tmp_path / "run" / "insights.json").read_text())
    (it,) = [i for i in doc["incidents"] if i["start"] == "2025-03-31"]
    assert it["start_time"] == "2025-03-31T14:00" and it["end_time"] >= "2025-03-31T16:00"
    hours = f"on 2025-03-31, 14:00 to {it['end_time'][11:]}."
    assert it["narrative"].endswith(hours)
    assert grounding.check(doc) == []
    assert hours in (tmp_path / "run" / "insights.md").read_text()
    # one period: "at 08:00", not "08:00 to 08:00"
    from analytics.insights.models import IncidentInsight
    from analytics.insights.narrative import _narrative

    one = IncidentInsight.model_validate({**it, "start_time": "2025-03-31T08:00",
                                          "end_time": "2025-03-31T08:00"})
    assert _narrative(one).endswith("on 2025-03-31, at 08:00.")
    # a daily run's incidents carry no times (left out of insights.json, not null)
    assert all("start_time" not in i for i in _daily_doc(tmp_path)["incidents"])


def _daily_doc(tmp_path):
    import json

    import numpy as np
    import pandas as pd
    from run_analysis import main

    rng = np.random.default_rng(6)
    days = pd.date_range("2025-01-01", periods=90, freq="D")
    v = rng.poisson(500, 90).astype(float)
    v[60:62] = 100.0
    csv = tmp_path / "daily.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "requests": v}).to_csv(csv, index=False)
    assert main(["--kpis", str(csv), "--out", str(tmp_path / "daily"), "--quiet",
                 "--set", "insights.forecast.enabled=false"]) == 0
    doc = json.loads((tmp_path / "daily" / "insights.json").read_text())
    assert doc["incidents"]
    return doc


def test_the_markdown_incident_lines_show_their_severity():
    # "## Incidents (62 most severe shown of 147)": ordered by severity, which no line showed
    from analytics.insights.markdown import render_markdown

    inc = {"incident_id": "I-orders-overall-all-2025-05-10-down", "severity": "critical",
           "narrative": "orders down -40.0% vs expected on 2025-05-10.", "matched_event_id": None}
    doc = {"run": {"source": "kpis", "period_start": "2025-01-01", "period_end": "2025-06-01",
                   "days": 152, "detectors": []},
           "schema_version": "2.1", "summary": {"totals": [], "week_over_week": [],
                                                 "month_over_month": []},
           "brief": {}, "channels": None, "episodes": [], "incidents": [inc],
           "incidents_total": 1, "forecast": {"status": "skipped", "reason": "off"},
           "seasonality": {}, "customers": None}
    md = render_markdown(doc)
    assert "- I-orders-overall-all-2025-05-10-down (critical): orders down -40.0%" in md


def test_a_slice_episode_is_not_confined_when_the_store_moved_more():
    # random world 3 EP 2024-03-20: "Confined to country SE (no overall incident; revenue in
    # country SE +9.2%)" beside "Overall vs baseline: revenue +23.3%" (audit-dashuser)
    from analytics.insights import grounding

    top = _top("country", "SE", 9.2)
    more = _episode("fraud_orders", _k(6.8, 12.2, 2.8, 19.9), _k(1.3, 3.6, 4.1, 5.0),
                    top, named_by="incidents", direction="up")
    text = _episode_narrative(more)
    assert "Confined" not in text
    assert ("Flagged only in country SE (no overall incident; orders in country SE +5.0%), "
            "though the store's orders moved as much or more the same way.") in text
    doc = more.model_dump(mode="json")
    doc["narrative"] = text
    assert not [b for b in grounding.check_episode(doc) if ".narrative" in b]
    less = _episode("fraud_orders", _k(0.5, 0.4, 0.3, 0.8), _k(1.3, 3.6, 4.1, 5.0),
                    top, named_by="incidents", direction="up")
    assert "Confined to country SE (no overall incident; orders in country SE +5.0%)." in (
        _episode_narrative(less))
