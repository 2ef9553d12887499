"""Insight scoring against hand-set truth (evaluation.insight_scoring)."""

from __future__ import annotations

import pytest
from tests.analytics.insights_synth import Shock, make_ctx
from tests.configs import make_config

from analytics import insights
from analytics.outputs import write_artefacts
from evaluation import insight_scoring as sc
from evaluation.truth import attach


def _event(eid, start, end, scope, primary, effects, etype="x", scope_effects=None):
    return {
        "scope_effects": scope_effects or {},
        "event_id": eid,
        "type": etype,
        "expected": False,
        "start": start,
        "end": end,
        "scope": scope,
        "params": {},
        "effects": effects,
        "primary_kpi": primary,
    }


SHOCKS = [Shock("2025-05-10", "2025-05-14", "sessions", 0.4, {"channel": "paid_social"}),
          Shock("2025-06-01", "2025-06-04", "conversion", 0.6, {"country": "DE"}),
          Shock("2025-06-15", "2025-06-16", "conversion", 0.5, {})]
INCIDENTS = [("sessions", "2025-05-10", "2025-05-14", "down", "E1"),
             ("revenue", "2025-05-10", "2025-05-14", "down", "E1"),
             ("conversion_rate", "2025-06-01", "2025-06-04", "down", "E2"),
             ("conversion_rate", "2025-06-15", "2025-06-16", "down", "E3")]
TRUTH = [
    # paid_social holds ~17 % of sessions: -60 % there is about -10 % overall
    _event(
        "E1",
        "2025-05-10",
        "2025-05-14",
        {"channel": "paid_social"},
        "sessions",
        {
            "sessions": -0.105,
            "orders": -0.055,
            "revenue": -0.055,
            "conversion_rate": 0.056,
            "aov": 0.0,
        },
        "channel_outage",
        {"sessions": -0.6, "orders": -0.6, "revenue": -0.6, "conversion_rate": 0.0, "aov": 0.0},
    ),
    _event(
        "E2",
        "2025-06-01",
        "2025-06-04",
        {"country": "DE"},
        "conversion_rate",
        {"sessions": 0.0, "orders": -0.12, "revenue": -0.12, "conversion_rate": -0.12, "aov": 0.0},
        "payment_failure",
        {"sessions": 0.0, "orders": -0.6, "revenue": -0.6, "conversion_rate": -0.6, "aov": 0.0},
    ),
    _event(
        "E3",
        "2025-06-15",
        "2025-06-16",
        {},
        "conversion_rate",
        {"sessions": 0.0, "orders": -0.5, "revenue": -0.5, "conversion_rate": -0.5, "aov": 0.0},
        "payment_failure",
    ),
    _event(
        "E4",
        "2025-03-01",
        "2025-03-02",
        {"channel": "email"},
        "sessions",  # never detected
        {"sessions": -0.05, "orders": -0.05, "revenue": -0.05, "conversion_rate": 0.0, "aov": 0.0},
    ),
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    ctx = make_ctx(tmp_path_factory.mktemp("run"), SHOCKS, INCIDENTS, truth_events=TRUTH)
    ctx.config = make_config(**{"insights": {"forecast": {"enabled": False}}})
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    return ctx, sc.score_insights(ctx)


def test_scores_on_known_answers(scored):
    _, s = scored
    assert s["events"] == 3 and s["scoped_events"] == 2
    assert s["root_cause_accuracy"] == 1.0
    assert s["broad_accuracy"] == 1.0
    assert s["kpi_attribution"] == 1.0
    assert s["signature_accuracy"] == 1.0
    assert s["magnitude_error_median"] < 0.2 and s["magnitude_error_overall_median"] < 0.2
    rows = {r["event_id"]: r for r in s["per_event"]}
    # the magnitude is read where the shock acted: in the named slice vs the in-scope effect
    assert rows["E1"]["magnitude_slice"] == "channel paid_social"
    assert rows["E1"]["effect_pct"] == -60.0 and rows["E1"]["effect_overall_pct"] == -10.5
    assert rows["E1"]["magnitude_pct"] == pytest.approx(-60, abs=6)
    assert rows["E3"]["magnitude_slice"] == "overall" and rows["E3"]["effect_pct"] == -50.0
    assert rows["E1"]["top_driver"] == ["channel", "paid_social"] and rows["E1"]["incidents"] == 2
    assert rows["E2"]["top_driver"] == ["country", "DE"]
    assert rows["E3"]["top_driver"] is None and rows["E3"]["drivers_scope"] == "broad"
    assert set(s["by_type"]) == {"channel_outage", "payment_failure"}
    assert s["by_type"]["payment_failure"]["events"] == 2
    # the diagnosis names the injected type of each event
    assert s["type_accuracy"] == 1.0 and s["by_type"]["channel_outage"]["type_accuracy"] == 1.0
    assert [rows[e]["diagnosis"] for e in ("E1", "E2", "E3")] == [
        "channel_outage",
        "payment_failure",
        "payment_failure",
    ]


def test_wrong_answers_are_counted_wrong(scored):
    ctx, _ = scored
    doc = {**ctx.insights, "episodes": [dict(e) for e in ctx.insights["episodes"]]}
    ep = doc["episodes"][0]
    ep["drivers"] = {**ep["drivers"], "top": {**ep["drivers"]["top"], "value": "organic"}}
    ep["primary_kpi"] = "revenue"
    ep["kpi_changes"] = {**ep["kpi_changes"], "sessions": -21.0}      # twice the realized -10.5 %
    ep["scope_changes"] = {**ep["scope_changes"], "sessions": -30.0}  # half the in-scope -60 %
    ep["diagnosis"] = {**ep["diagnosis"], "type": "site_outage"}
    ctx2 = attach(type(ctx)(config=ctx.config, data=ctx.data, out_dir=ctx.out_dir), ctx.truth)
    ctx2.insights = doc
    s = sc.score_insights(ctx2)
    row = next(r for r in s["per_event"] if r["event_id"] == "E1")
    assert row["root_cause_ok"] is False and row["kpi_ok"] is False
    assert row["magnitude_error"] == pytest.approx(0.5)
    assert row["magnitude_error_overall"] == pytest.approx(1.0)
    assert row["type_ok"] is False and s["by_type"]["channel_outage"]["type_accuracy"] == 0.0
    assert s["root_cause_accuracy"] == 0.5


def test_builds_insights_itself_and_needs_truth(tmp_path):
    ctx = make_ctx(tmp_path, SHOCKS, INCIDENTS[:2], truth_events=TRUTH)
    ctx.config = make_config(**{"insights": {"forecast": {"enabled": False}}})
    s = sc.score_insights(ctx)          # no insights stage ran: built in memory, nothing written
    assert s["root_cause_accuracy"] == 1.0 and not (tmp_path / "insights.json").exists()
    ctx.truth, ctx.has_truth = None, False
    assert sc.score_insights(ctx) == {}


@pytest.mark.parametrize("scope, expected", [
    ({}, None), ({"channel": "email"}, ("channel", "email")),
    ({"channel": "email", "country": "DE"}, ("channel_country", "email|DE")),
    ({"category": "books", "country": "DE"}, None),
    # a product is named by its category (the drivers' finest slice); unknown product: unscored
    ({"product": 7}, ("category", "books")), ({"product": 8}, None),
])
def test_expected_driver(scope, expected):
    assert sc.expected_driver(scope, {"7": "books"}) == expected


def test_stage_merges_into_the_scorecard(scored):
    ctx, s = scored
    ctx.scorecard = {"headline": {}}
    sc.stage(ctx)
    assert ctx.scorecard["insights"]["root_cause_accuracy"] == s["root_cause_accuracy"]
    ctx.scorecard = None
    sc.stage(ctx)                      # unscored run: nothing to merge into
    assert ctx.scorecard is None


def test_labels_without_kpi_or_shock_type_leave_those_scores_unscored(tmp_path):
    """External labels (--events: NAB windows, a CSV of start,end) name no KPI, no scope and no
    shock type: the NAB speed_7578 run printed "KPI attribution 0.00" (and type and breadth 0.0)
    for answers the labels never gave. Unscored, not wrong; a label's own KPI is still scored."""
    labels = [
        {"event_id": "W01", "type": "nab_window", "expected": False, "start": s, "end": e,
         "scope": {}, "effects": None, "primary_kpi": None}
        for s, e in (("2025-05-10", "2025-05-14"), ("2025-06-01", "2025-06-04"))
    ]
    labels[1] = {**labels[1], "event_id": "W02", "type": "labelled",
                 "effects": {"conversion_rate": -1.0}, "primary_kpi": "conversion_rate"}
    incidents = [(*INCIDENTS[0][:4], "W01"), (*INCIDENTS[2][:4], "W02")]
    ctx = make_ctx(tmp_path, SHOCKS[:2], incidents, truth_events=labels)
    ctx.config = make_config(**{"insights": {"forecast": {"enabled": False}}})
    s = sc.score_insights(ctx)
    rows = {r["event_id"]: r for r in s["per_event"]}
    assert s["events"] == 2
    assert rows["W01"]["kpi_ok"] is None and rows["W01"]["primary_kpi_flagged"] is None
    assert rows["W02"]["kpi_ok"] is True      # the label named the KPI: scored
    assert s["kpi_attribution"] == 1.0        # over the one label that names a KPI
    assert rows["W01"]["type_ok"] is None and rows["W02"]["type_ok"] is None
    assert s["type_accuracy"] is None and s["broad_accuracy"] is None


def test_realized_effect_is_the_named_slices_own_where_truth_records_it():
    """The magnitude an episode states for a slice is compared with that slice's realized
    effect: a channel x country event named by its channel gets the channel's own (diluted)
    effect, not the cell's; any other slice keeps the in-scope effect (a wrong slice costs);
    a product event is left out, its category's effect recorded or not."""
    cell = {**_event("E9", "2025-05-10", "2025-05-11", {"channel": "email", "country": "DE"},
                     "orders", {"orders": -0.02}, "payment_failure", {"orders": -0.7}),
            "container_effects": [
                {"dimension": "channel", "segment": "email", "effects": {"orders": -0.2}},
                {"dimension": "country", "segment": "DE", "effects": {"orders": -0.3}}]}
    assert sc.realized_effect(cell, ("channel", "email"), "orders") == -0.2
    assert sc.realized_effect(cell, ("country", "DE"), "orders") == -0.3
    assert sc.realized_effect(cell, ("channel_country", "email|DE"), "orders") == -0.7
    assert sc.realized_effect(cell, ("channel", "organic"), "orders") == -0.7
    assert sc.realized_effect(cell, None, "orders") == -0.7
    assert sc.realized_effect({**cell, "container_effects": []}, ("channel", "email"),
                              "orders") == -0.7                      # older truth: the cell's
    prod = {**_event("E8", "2025-05-10", "2025-05-11", {"product": 7}, "orders",
                     {"orders": -0.01}, "stockout", {"orders": -1.0}),
            "container_effects": [
                {"dimension": "category", "segment": "books", "effects": {"orders": -0.15}}]}
    assert sc.realized_effect(prod, ("category", "books"), "orders") is None
    store = _event("E7", "2025-05-10", "2025-05-11", {}, "orders", {"orders": -0.4})
    assert sc.realized_effect(store, None, "orders") == -0.4
