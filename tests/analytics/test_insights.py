"""insights.json / insights.md: schema, determinism and content on hand-made runs."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from tests.analytics.insights_synth import Shock, make_ctx
from tests.configs import make_config

from analytics import insights
from analytics.insights import grounding
from analytics.insights.stage import INCIDENT_DETAILS
from analytics.insights_config import InsightsConfig
from analytics.outputs import write_artefacts
from shocklab.errors import InputError

SHOCKS = [Shock("2025-05-10", "2025-05-14", "sessions", 0.4, {"channel": "paid_social"}),
          Shock("2025-06-01", "2025-06-04", "conversion", 0.6, {"country": "DE"}),
          Shock("2025-06-15", "2025-06-18", "aov", 0.6, {"category": "electronics"}),
          Shock("2025-06-24", "2025-07-01", "sessions", 0.5, {"channel": "email"})]
INCIDENTS = [("revenue", "2025-05-10", "2025-05-14", "down", "E1"),
             ("revenue", "2025-06-01", "2025-06-04", "down", "E2"),
             ("aov", "2025-06-15", "2025-06-18", "down", None)]
CALENDAR = pd.DataFrame(
    {
        "date": ["2025-06-16", "2025-03-01"],
        "name": ["Summer sale", "Spring day"],
        "kind": ["campaign", "holiday"],
        "scope": ["{}", None],
    }
)
NO_FORECAST = {"insights": {"forecast": {"enabled": False}}}


def _ctx(tmp_path, config=NO_FORECAST, **kw):
    ctx = make_ctx(tmp_path, SHOCKS, INCIDENTS, calendar=CALENDAR, **kw)
    ctx.config = make_config(**config)
    return ctx


def test_committed_schema_matches_the_models():
    committed = insights.SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == insights.schema_text(), \
        "schemas/insights.schema.json is stale: run `python -m analytics.insights --write-schema`"


def test_insights_json_validates_round_trips_and_is_byte_identical(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    ctx = _ctx(a)
    ctx.customers = {"segments": {"At Risk": 12, "Champions": 40}, "alert": float("nan"),
                     "as_of": pd.Timestamp("2025-07-01")}
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    ctx2 = _ctx(b)
    ctx2.customers = dict(ctx.customers)
    insights.run(ctx2)
    write_artefacts(ctx2)  # the files, as analytics.outputs writes them
    raw = (a / "insights.json").read_bytes()
    assert raw == (b / "insights.json").read_bytes()
    assert (a / "insights.md").read_bytes() == (b / "insights.md").read_bytes()
    doc = json.loads(raw)
    assert doc == ctx.insights
    insights.validate_json(doc)
    model = insights.Insights.model_validate(doc)          # round trip through the models
    back = insights.to_json_dict(model)
    for it in back["incidents"]:       # left out of insights.json (in the details file)
        assert all(it.pop(k) is None for k in INCIDENT_DETAILS)
        if it["calendar"] == []:
            it.pop("calendar")
        for k in ("start_time", "end_time"):  # sub-daily input only: left out for daily data
            if it[k] is None:
                it.pop(k)
    for ep in back["episodes"]:  # sub-daily input only: left out for daily data
        if ep["incident_change"] is None:
            ep.pop("incident_change")
    assert back == doc
    assert doc["schema_version"] == insights.SCHEMA_VERSION
    assert doc["customers"] == {
        "alert": None,
        "as_of": "2025-07-01",
        "segments": {"At Risk": 12, "Champions": 40},
    }
    assert "generated" not in raw.decode() and "seconds" not in raw.decode()


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    elif isinstance(obj, float):
        yield obj


def _details(tmp_path):
    return json.loads((tmp_path / "insights_details.json").read_text())


def test_incident_content(tmp_path):
    ctx = _ctx(tmp_path)
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    doc = ctx.insights
    assert all(math.isfinite(x) for x in _numbers(doc))
    inc = {i["incident_id"]: i for i in doc["incidents"]}
    # drivers, signature and action of incidents live in the details file the document names
    assert doc["details_file"] == "insights_details.json"
    det = _details(tmp_path)["incidents"]
    assert not any(set(INCIDENT_DETAILS) & set(i) for i in inc.values())
    i1, d1 = (
        inc["I-revenue-overall-all-2025-05-10-down"],
        det["I-revenue-overall-all-2025-05-10-down"],
    )
    assert (d1["drivers"]["top"]["dimension"], d1["drivers"]["top"]["value"]) == (
        "channel",
        "paid_social",
    )
    assert d1["signature"]["label"] == "traffic-driven"
    assert i1["matched_event_id"] == "E1" and not i1["planned"]
    assert (
        i1["narrative"].startswith("revenue down -") and "paid_social" in d1["recommended_action"]
    )
    assert i1["days"] == 5 and len(i1["detectors"]) == d1["n_detectors"] == 3
    i2, d2 = (
        inc["I-revenue-overall-all-2025-06-01-down"],
        det["I-revenue-overall-all-2025-06-01-down"],
    )
    assert d2["drivers"]["top"]["value"] == "DE" and d2["signature"]["label"] == "conversion-driven"
    assert "checkout" in d2["recommended_action"]
    # 40 % conversion drop in a country holding ~30 % of orders: about -12 % overall
    assert i2["baseline_magnitude_pct"] == pytest.approx(-12, abs=3)
    i3, d3 = inc["I-aov-overall-all-2025-06-15-down"], det["I-aov-overall-all-2025-06-15-down"]
    assert (
        d3["drivers"]["top"]["value"] == "electronics"
        and d3["signature"]["label"] == "basket-driven"
    )
    assert i3["planned"] and i3["calendar"][0]["name"] == "Summer sale"
    assert i3["matched_event_id"] is None


def test_summary_channels_and_seasonality(tmp_path):
    ctx = _ctx(tmp_path)
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    doc = ctx.insights
    s = doc["summary"]
    assert {t["kpi"] for t in s["totals"]} == {
        "revenue",
        "orders",
        "sessions",
        "conversion_rate",
        "aov",
    }
    wow = {c["kpi"]: c for c in s["week_over_week"]}
    assert (
        wow["revenue"]["current_end"] == "2025-07-01"
        and wow["revenue"]["previous_end"] == "2025-06-24"
    )
    assert wow["revenue"]["drivers"]["top"]["value"] == "email"   # email halved from 06-24
    assert "email" in s["headline"]
    assert len(s["month_over_month"]) == 5
    ch = doc["channels"]
    assert ch["underperformers"] == ["email"]
    assert sum(c["revenue_share"] for c in ch["channels"]) == pytest.approx(1.0)
    email = next(c for c in ch["channels"] if c["channel"] == "email")
    assert email["revenue_vs_baseline_pct"] < -40 and email["reasons"]
    se = doc["seasonality"]
    assert se["weekday"]["peak"] == "Sat" and se["weekday"]["trough"] == "Wed"   # WEEKDAY factors
    assert doc["forecast"]["status"] == "skipped"
    md = (tmp_path / "insights.md").read_text()
    for needle in (
        "## Brief",
        "## Summary",
        "## Channels",
        "## Incidents (3 most severe shown of 3",
        "Summer sale",
        "## Seasonality",
    ):
        assert needle in md
    assert md.index("## Brief") < md.index("## Summary") < md.index("## Episodes")
    # each channel's change with its count noise (a floor: Poisson on its baseline orders)
    assert email["revenue_noise_pct"] > 0
    row = next(line for line in md.splitlines() if line.startswith("| email |"))
    assert f"(±{email['revenue_noise_pct']:.2g}%)" in row   # two significant digits


def test_max_incidents_keeps_the_most_severe(tmp_path):
    ctx = _ctx(tmp_path, config={"insights": {"max_incidents": 1, "forecast": {"enabled": False}}})
    ctx.incidents[1].severity = "critical"
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert [i["incident_id"] for i in ctx.insights["incidents"]] == [
        "I-revenue-overall-all-2025-06-01-down"
    ]
    assert ctx.insights["incidents_total"] == 3


def test_disabled_writes_nothing_and_empty_kpis_is_an_input_error(tmp_path):
    ctx = _ctx(tmp_path, config={"insights": {"enabled": False}})
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert ctx.insights is None and not (tmp_path / "insights.json").exists()
    ctx = _ctx(tmp_path)
    ctx.kpis_daily = ctx.kpis_daily.iloc[0:0]
    with pytest.raises(InputError, match="no KPIs"):
        insights.run(ctx)
        write_artefacts(ctx)  # the files, as analytics.outputs writes them


def test_schema_rejects_non_finite_and_bad_dates(tmp_path):
    ctx = _ctx(tmp_path)
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    bad = json.loads(json.dumps(ctx.insights))
    bad["incidents"][0]["start"] = "10/05/2025"
    with pytest.raises(InputError, match="incidents/0/start"):
        insights.validate_json(bad)
    with pytest.raises(ValueError):
        insights.IncidentInsight.model_validate(
            {**ctx.insights["incidents"][0], "confidence": float("inf")}
        )


def test_config_defaults_and_bounds():
    cfg = InsightsConfig()
    assert cfg.forecast.horizon_days == 90 and cfg.forecast.interval == 0.95 and cfg.plots
    with pytest.raises(ValueError, match="extra"):
        InsightsConfig.model_validate({"forcast": {}})
    with pytest.raises(ValueError, match="greater than or equal to 7"):
        InsightsConfig.model_validate({"forecast": {"horizon_days": 0}})
    with pytest.raises(ValueError, match="unknown KPI 'revenu'.*known: sessions"):
        InsightsConfig.model_validate({"plot_kpis": ["revenu"]})


def test_episodes_group_overlapping_incidents_and_keep_planned_apart(tmp_path):
    ctx = _ctx(tmp_path)
    # a second incident of the paid_social outage (slice level, trailing one day) and a planned one
    extra = make_ctx(
        tmp_path,
        SHOCKS,
        [
            ("sessions", "2025-05-11", "2025-05-15", "down", "E1"),
            ("aov", "2025-06-16", "2025-06-16", "down", None),
        ],
    ).incidents
    extra[0].dimension, extra[0].segment = "channel", "paid_social"
    extra[0].incident_id = "I-sessions-channel-paid_social-2025-05-11-down"
    ctx.incidents += extra
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    eps = {e["episode_id"]: e for e in ctx.insights["episodes"]}
    ep = eps["EP-2025-05-10-2025-05-15"]
    assert ep["incident_ids"] == ["I-revenue-overall-all-2025-05-10-down",
                                  "I-sessions-channel-paid_social-2025-05-11-down"]
    # measured where sessions really deviate: the shock's days, not the trailing incident day
    assert (ep["measured_start"], ep["measured_end"]) == ("2025-05-10", "2025-05-14")
    assert ep["primary_kpi"] == "sessions" and ep["signature"]["label"] == "traffic-driven"
    assert ep["drivers"]["top"]["value"] == "paid_social" and ep["matched_event_ids"] == ["E1"]
    assert ep["kpi_changes"]["sessions"] == pytest.approx(-0.6 * 1500 / 8800 * 100, abs=2)
    # the full breakdown is in the details file; insights.json keeps the top driver only
    assert ep["drivers"]["breakdown"] == {} and ep["drivers"]["drivers"] == []
    bd = _details(tmp_path)["episodes"]["EP-2025-05-10-2025-05-15"]["breakdown"]
    assert [d["value"] for d in bd["channel"]][0] == "paid_social"
    # a sessions drop confined to one channel: a channel outage, and the action says where to look
    assert ep["diagnosis"]["type"] == "channel_outage" and "paid_social" in ep["recommended_action"]
    assert ep["title"].startswith("sessions down -") and "channel outage" in ep["title"]
    # the planned-day incidents form their own episode
    planned = eps["EP-2025-06-15-2025-06-18-planned"]
    assert planned["planned"] and planned["diagnosis"]["type"] == "planned_event"


def test_overall_only_series_without_funnel_kpis(tmp_path):
    """An external KPI file: one overall series, no slices, no sessions/orders to decompose."""
    ctx = _ctx(tmp_path)
    k = ctx.kpis_daily
    ctx.kpis_daily = k.loc[k["dimension"] == "overall", ["date", "dimension", "segment", "revenue"]]
    ctx.detections = ctx.detections.loc[ctx.detections["kpi"] == "revenue"]
    ctx.incidents = [i for i in ctx.incidents if i.kpi == "revenue"]
    ctx.data.tables, ctx.data.source = {}, "kpis"
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    doc = ctx.insights
    assert doc["channels"] is None and [t["kpi"] for t in doc["summary"]["totals"]] == ["revenue"]
    inc = _details(tmp_path)["incidents"][doc["incidents"][0]["incident_id"]]
    assert inc["drivers"]["scope"] == "unknown" and inc["signature"]["label"] == "undetermined"
    ep = doc["episodes"][0]
    assert "No channel, country or category breakdown" in ep["narrative"]
    assert ep["primary_kpi"] == "revenue" and ep["diagnosis"]["type"] == "undetermined"
    # real data: no seed in the run info or the brief
    assert doc["run"]["seed"] is None and "seed" not in (tmp_path / "insights.md").read_text()
    insights.validate_json(doc)
    assert insights.grounding.check(doc) == []


def test_slice_incidents_name_their_slice_and_two_channels_are_two_episodes(tmp_path):
    # the paid_social outage flagged only in its channel, and a touching incident in another
    # channel (a different happening): two episodes, each named by its own slice
    ctx = make_ctx(tmp_path, SHOCKS, [("sessions", "2025-05-10", "2025-05-14", "down", "E1"),
                                      ("sessions", "2025-05-15", "2025-05-16", "down", None)])
    ctx.config = make_config(**NO_FORECAST)
    for inc, ch in zip(ctx.incidents, ("paid_social", "email"), strict=True):
        inc.dimension, inc.segment = "channel", ch
    insights.run(ctx)
    eps = ctx.insights["episodes"]
    assert [e["slices"] for e in eps] == [["channel paid_social"], ["channel email"]]
    ep = eps[0]
    assert ep["drivers"]["named_by"] == "incidents" and ep["drivers"]["scope"] == "concentrated"
    assert (ep["drivers"]["top"]["dimension"], ep["drivers"]["top"]["value"]) == (
        "channel", "paid_social")
    # measured in the slice: the in-scope change is the -60 % of the shock, overall ~-10 %
    assert ep["scope_changes"]["sessions"] == pytest.approx(-60, abs=5)
    assert ep["kpi_changes"]["sessions"] == pytest.approx(-0.6 * 1500 / 8800 * 100, abs=2)
    assert ep["diagnosis"]["type"] == "channel_outage"
    assert "Confined to channel paid_social" in ep["narrative"]
    assert grounding.check(ctx.insights) == []


def test_a_pair_incident_inside_a_channel_wide_shock_names_the_channel(tmp_path):
    ctx = make_ctx(tmp_path, SHOCKS, [("sessions", "2025-05-10", "2025-05-14", "down", "E1"),
                                      ("sessions", "2025-05-10", "2025-05-13", "down", "E1")])
    ctx.config = make_config(**NO_FORECAST)
    ctx.incidents[0].dimension, ctx.incidents[0].segment = "channel", "paid_social"
    ctx.incidents[1].dimension, ctx.incidents[1].segment = "channel_country", "paid_social|DE"
    insights.run(ctx)
    (ep,) = ctx.insights["episodes"]
    top = ep["drivers"]["top"]
    # the whole channel dropped: the pair does not explain more than its channel
    assert (top["dimension"], top["value"]) == ("channel", "paid_social")
    assert ep["drivers"]["named_by"] == "incidents"
    assert grounding.check(ctx.insights) == []


def test_a_country_incident_on_one_channels_outage_names_the_pair(tmp_path):
    # paid_search is down in DE only; the detectors flag country DE (the pair is not watched)
    shock = Shock("2025-05-10", "2025-05-14", "sessions", 0.2,
                  {"channel": "paid_search", "country": "DE"})
    ctx = make_ctx(tmp_path, [shock], [("sessions", "2025-05-10", "2025-05-14", "down", "E1")])
    ctx.config = make_config(**NO_FORECAST)
    ctx.incidents[0].dimension, ctx.incidents[0].segment = "country", "DE"
    insights.run(ctx)
    (ep,) = ctx.insights["episodes"]
    top = ep["drivers"]["top"]
    assert (top["dimension"], top["value"]) == ("channel_country", "paid_search|DE")
    assert ep["drivers"]["named_by"] == "incidents"
    # measured inside the pair: the -80 % of the shock (the country fell ~-27 %); (the synthetic
    # orders table has one row per cube cell, so pair order counts do not move: no diagnosis)
    assert ep["scope_changes"]["sessions"] == pytest.approx(-80, abs=5)
    assert ep["scope_changes"]["revenue"] == pytest.approx(-80, abs=5)
    assert "Confined to channel x country paid_search / DE" in ep["narrative"]
    assert grounding.check(ctx.insights) == []


def test_split_cuts_where_a_funnel_kpi_moves_a_new_way_days_after_the_onset():
    from datetime import date, timedelta
    from types import SimpleNamespace

    from analytics.insights.episodes import SPLIT_DAYS, _split

    d0 = date(2025, 5, 1)

    def inc(kpi, day, direction="down"):
        return SimpleNamespace(kpi=kpi, direction=direction, start=d0 + timedelta(days=day))

    late = SPLIT_DAYS + 6
    g = [inc("conversion_rate", 0), inc("orders", 2), inc("revenue", late),  # outcome: no cut
         inc("conversion_rate", late),                                        # same move: no cut
         inc("sessions", 1),                                                  # new move, early
         inc("sessions", late, "up"), inc("orders", late + 1)]
    g.sort(key=lambda i: i.start)
    parts = _split(g)
    # the split's day: revenue (down: no earlier incident fell in revenue) goes with the new
    # move, conversion (falling since the onset) stays with the old one
    assert [[(i.kpi, (i.start - d0).days) for i in p] for p in parts] == [
        [("conversion_rate", 0), ("sessions", 1), ("orders", 2), ("conversion_rate", late)],
        [("revenue", late), ("sessions", late), ("orders", late + 1)]]
    assert _split(g[:1]) == [g[:1]]
    # the boundary: a new funnel move exactly SPLIT_DAYS after the onset cuts, one day sooner
    # does not (only moves well past it were tested: a strict ">" passed)
    onset = [inc("conversion_rate", 0)]
    assert len(_split(onset + [inc("sessions", SPLIT_DAYS, "up")])) == 2
    assert len(_split(onset + [inc("sessions", SPLIT_DAYS - 1, "up")])) == 1


def test_a_channel_outage_inside_a_long_conversion_rise_is_its_own_episode(tmp_path):
    # a long overall conversion rise (multi-day detectors flag it for weeks) and, 12 days in, an
    # email sessions drop whose window touches it: two happenings, two episodes, and the second
    # is measured from its own onset, not back into the first
    shocks = [Shock("2025-05-01", "2025-05-20", "conversion", 1.5),
              Shock("2025-05-13", "2025-05-16", "sessions", 0.3, {"channel": "email"})]
    ctx = make_ctx(tmp_path, shocks, [("conversion_rate", "2025-05-01", "2025-05-20", "up", "E1"),
                                      ("sessions", "2025-05-13", "2025-05-16", "down", "E2")])
    ctx.config = make_config(**NO_FORECAST)
    ctx.incidents[1].dimension, ctx.incidents[1].segment = "channel", "email"
    insights.run(ctx)
    eps = ctx.insights["episodes"]
    assert [e["matched_event_ids"] for e in eps] == [["E1"], ["E2"]]
    assert eps[1]["measured_start"] >= "2025-05-13"
    assert eps[1]["diagnosis"]["type"] == "channel_outage"
    assert eps[1]["scope_changes"]["sessions"] == pytest.approx(-70, abs=8)
    assert grounding.check(ctx.insights) == []


def test_slice_panel_built_once_per_run_and_shared(tmp_path):
    """``build_panel`` builds the run's slice panel once (``ctx.panel``; the insights and
    insight scoring's event windows share it) and again only when the KPIs or detections it was
    built from were replaced; insights from a shared, already used panel are the same as from a
    fresh one."""
    from analytics.insights import build_panel, config_of

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    ctx = _ctx(a)
    panel = build_panel(ctx, config_of(ctx))
    assert build_panel(ctx, config_of(ctx)) is panel
    insights.run(ctx)                                     # reads the same panel
    assert ctx.panel[-1] is panel
    fresh = _ctx(b)
    insights.run(fresh)
    assert ctx.insights == fresh.insights
    insights.run(ctx)                                     # its memoized look-ups, reused
    assert ctx.insights == fresh.insights
    ctx.detections = ctx.detections.copy()
    assert build_panel(ctx, config_of(ctx)) is not panel  # built from other detections


def test_a_slice_episode_is_not_measured_on_the_stores_peak_day(tmp_path):
    """An incident on country DE's revenue (down) over days in which DE shows no peak, while the
    rest of the store lost half its visits on one of them: the episode was measured on the
    store's peak day, in DE (random world s3: an AU incident down, measured on such a day and
    titled 'revenue in country AU up +12.8%: fraud orders'). It is measured over its incidents'
    days, in its slice."""
    shocks = [Shock("2025-05-15", "2025-05-15", "sessions", 0.5, {"country": "US"}),
              Shock("2025-05-15", "2025-05-15", "sessions", 0.5, {"country": "FR"})]
    ctx = make_ctx(tmp_path, shocks, [("revenue", "2025-05-13", "2025-05-16", "down", None)])
    ctx.config = make_config(**NO_FORECAST)
    ctx.incidents[0].dimension, ctx.incidents[0].segment = "country", "DE"
    insights.run(ctx)
    (ep,) = ctx.insights["episodes"]
    assert ep["slices"] == ["country DE"] and ep["drivers"]["named_by"] == "incidents"
    assert (ep["measured_start"], ep["measured_end"]) == ("2025-05-13", "2025-05-16")
    assert grounding.check(ctx.insights) == []


def test_the_part_before_a_split_is_not_measured_over_the_later_happening(tmp_path):
    """World 23 (session 44): a country's conversion rise flagged on through a store-wide outage
    four days later. The outage is its own episode (all of its day's incidents), and the rise is
    measured on its own days only: it was measured over the outage's day and titled by it."""
    from tests.analytics.insights_synth import Shock, make_ctx

    rise, outage = "2025-05-10", "2025-05-14"
    ctx = make_ctx(tmp_path, [Shock(rise, "2025-06-30", "conversion", 1.4, {"country": "DE"}),
                              Shock(outage, outage, "sessions", 0.3)],
                   [("conversion_rate", rise, "2025-05-17", "up", None),
                    ("orders", outage, outage, "down", None),
                    ("sessions", outage, "2025-05-15", "down", None)])
    ctx.config = make_config(**NO_FORECAST)
    ctx.incidents[0].dimension, ctx.incidents[0].segment = "country", "DE"
    ctx.incidents[0].incident_id = f"I-conversion_rate-country-DE-{rise}-up"
    insights.run(ctx)
    first, second = ctx.insights["episodes"]
    assert first["incident_ids"] == [f"I-conversion_rate-country-DE-{rise}-up"]
    # measured before the outage's day (it was 05-10..05-16), flagged as its incident
    assert (first["measured_start"], first["measured_end"]) == (rise, "2025-05-13")
    assert (first["start"], first["end"]) == (rise, "2025-05-17")
    assert first["title"].startswith("conversion_rate in country DE up +"), first["title"]
    assert sorted(second["kpis"]) == ["orders", "sessions"], second["incident_ids"]
    assert grounding.check(ctx.insights) == []


def test_an_unrelated_split_leaves_the_earlier_part_measured_to_its_end(tmp_path):
    """The default scenario (session 44): a paid_search conversion incident inside a fashion
    stockout's days splits the group; the stockout was then measured a day short of its end
    (08-06..08-09 for 08-06..08-10). A later part on no slice of the earlier one (and not the
    store's) does not cap it; one on the store does (the test above)."""
    from tests.analytics.insights_synth import Shock, make_ctx

    start, split, end = "2025-05-10", "2025-05-14", "2025-05-14"
    ctx = make_ctx(tmp_path, [Shock(start, end, "conversion", 0.3, {"category": "apparel"}),
                              Shock(split, split, "conversion", 0.5, {"channel": "email"})],
                   [("orders", start, "2025-05-16", "down", None),
                    ("conversion_rate", split, split, "down", None)])
    ctx.config = make_config(**NO_FORECAST)
    a, b = ctx.incidents
    a.dimension, a.segment = "category", "apparel"
    a.incident_id = f"I-orders-category-apparel-{start}-down"
    b.dimension, b.segment = "channel", "email"
    b.incident_id = f"I-conversion_rate-channel-email-{split}-down"
    insights.run(ctx)
    first = next(e for e in ctx.insights["episodes"] if a.incident_id in e["incident_ids"])
    assert b.incident_id not in first["incident_ids"]
    assert first["measured_end"] >= end, first
    assert grounding.check(ctx.insights) == []
