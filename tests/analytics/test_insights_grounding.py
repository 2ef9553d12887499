"""Grounded text, diagnosis and sizes of insights.json / insights.md (analytics.insights)."""

from __future__ import annotations

import json

import pytest
from tests.analytics.insights_synth import Shock, make_ctx
from tests.configs import make_config

from analytics import insights
from analytics.insights import cli, diagnosis, grounding
from analytics.insights.markdown import render_markdown
from analytics.insights.models import DriverSet
from analytics.outputs import write_artefacts

SHOCKS = [Shock("2025-05-10", "2025-05-14", "sessions", 0.4, {"channel": "paid_social"}),
          Shock("2025-06-01", "2025-06-04", "conversion", 0.6, {"country": "DE"}),
          Shock("2025-06-24", "2025-06-25", "sessions", -0.6, {})]
INCIDENTS = [("revenue", "2025-05-10", "2025-05-14", "down", "E1"),
             ("sessions", "2025-05-10", "2025-05-14", "down", "E1"),
             ("conversion_rate", "2025-06-01", "2025-06-04", "down", "E2"),
             ("sessions", "2025-06-24", "2025-06-25", "up", "E3")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    ctx = make_ctx(out, SHOCKS, INCIDENTS)
    ctx.config = make_config(**{"insights": {"forecast": {"enabled": False}}})
    insights.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    return ctx, out


def test_every_text_is_grounded_and_the_cli_says_so(run, capsys):
    ctx, out = run
    assert grounding.check(ctx.insights) == []
    assert cli.main(["--check", str(out)]) == 0
    assert cli.main(["--check", str(out / "missing.json")]) == 2


@pytest.mark.parametrize("name", ["run.json", "incidents.json", "list.json"])
def test_the_check_refuses_a_file_that_is_not_insights_json(tmp_path, name, capsys):
    """--check run.json (or incidents.json) said "0 mismatch(es)", exit 0; a JSON list was a
    traceback with exit 1 (the code of "mismatches found")."""
    doc = {"run.json": {"schema": "shocklab.run/1", "run_id": "x"},
           "incidents.json": {"schema": "shocklab.incidents/1", "incidents": []},
           "list.json": [{"event_id": "E01"}]}[name]
    (tmp_path / name).write_text(json.dumps(doc))
    assert cli.main(["--check", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an insights.json" in err


def test_a_file_that_breaks_the_schema_is_exit_2_not_a_traceback(run, tmp_path, capsys):
    """An insights.json whose episodes lack fields (hand-edited, cut) was a KeyError traceback and
    exit 1, the code of "mismatches found"; it is now checked against the schema first."""
    _, out = run
    doc = json.loads((out / "insights.json").read_text())
    del doc["episodes"][0]["start"]
    (tmp_path / "insights.json").write_text(json.dumps(doc))
    capsys.readouterr()
    assert cli.main(["--check", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "episodes/0" in err and "start" in err


def test_the_module_maps_an_internal_error_to_exit_3(run, monkeypatch, capsys):
    """``python -m analytics.insights`` let an unexpected exception end the process with exit 1,
    which reads as "mismatches found"; it now runs through shocklab.cli.run_cli (exit 3)."""
    import runpy
    import sys

    _, out = run

    def boom(doc):
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "check", boom)
    monkeypatch.setattr(sys, "argv", ["analytics.insights", "--check", str(out)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("analytics.insights", run_name="__main__")
    assert exc.value.code == 3
    assert "internal error: RuntimeError: boom" in capsys.readouterr().err


def test_an_unknown_flag_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--chek", "x"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def _episode(doc, kpi):
    return next(e for e in doc["episodes"] if e["primary_kpi"] == kpi)


@pytest.mark.parametrize(
    "tamper, needle",
    [
        # a number that is not the field's
        (
            lambda ep: ep["kpi_changes"].update(sessions=ep["kpi_changes"]["sessions"] + 5),
            "but the field says",
        ),
        # a direction word against the sign of the field
        (lambda ep: ep.update(title=ep["title"].replace(" down ", " up ", 1)), "'sessions up'"),
        # a date the episode does not hold
        (lambda ep: ep.update(narrative=ep["narrative"] + " Since 2020-01-01."), "date 2020-01-01"),
        # a number from nowhere
        (
            lambda ep: ep.update(recommended_action=ep["recommended_action"] + " Call 42 people."),
            "not explained",
        ),
        # a rise spoken of on a drop
        (
            lambda ep: ep.update(recommended_action="Compare the uplift with the target."),
            "speaks of a rise",
        ),
    ],
)
def test_the_checker_catches_what_is_not_a_field(run, tamper, needle):
    doc = json.loads(json.dumps(run[0].insights))
    tamper(_episode(doc, "sessions"))
    bad = grounding.check(doc)
    assert bad and any(needle in b for b in bad), bad


def test_the_checker_reads_incidents_headline_and_brief(run):
    doc = json.loads(json.dumps(run[0].insights))
    doc["incidents"][0]["narrative"] = doc["incidents"][0]["narrative"].replace("down -", "up -")
    doc["summary"]["headline"] = (
        doc["summary"]["headline"].replace("revenue", "revenue up", 1)
        if " down " in doc["summary"]["headline"]
        else doc["summary"]["headline"].replace("revenue up", "revenue down")
    )
    doc["brief"]["top_episodes"][0]["title"] = "something else"
    bad = grounding.check(doc)
    assert any(b.startswith(doc["incidents"][0]["incident_id"]) for b in bad)
    assert any(b.startswith("brief.top_episodes[0].title") for b in bad)


def test_the_brief_headline_is_the_summary_headline(run):
    """brief.headline (the first line an LLM reads) was never checked: a changed number or date
    in it passed --check with 0 mismatches."""
    doc = json.loads(json.dumps(run[0].insights))
    assert doc["brief"]["headline"] == doc["summary"]["headline"] and grounding.check(doc) == []
    doc["brief"]["headline"] = doc["brief"]["headline"].replace("%", "1%", 1)
    assert grounding.check(doc) == ["brief.headline: differs from summary.headline"]


def test_diagnosis_of_the_synthetic_shocks(run):
    doc = run[0].insights
    by_start = {e["measured_start"]: e for e in doc["episodes"]}
    outage = by_start["2025-05-10"]
    assert outage["diagnosis"]["type"] == "channel_outage" and outage["primary_kpi"] == "sessions"
    assert any(
        ev["slice"] == "channel paid_social"
        and ev["kpi"] == "sessions"
        and ev["direction"] == "down"
        for ev in outage["diagnosis"]["evidence"]
    )
    pay = by_start["2025-06-01"]
    assert pay["diagnosis"]["type"] == "payment_failure" and "payment" in pay["recommended_action"]
    assert pay["drivers"]["top"]["value"] == "DE"


def _f(**kw):
    base = dict(s=0.0, c=0.0, b=0.0, o=0.0, r=0.0, ret=None, new=None, dim=None, value=None, days=2,
                persist=None, persist_z=None)
    return diagnosis.Features(**{**base, **kw})


@pytest.mark.parametrize("feat, planned, kind", [
    (_f(s=-48, c=2, o=-47, r=-45), False, "site_outage"),
    (_f(s=-17, c=7, o=-11, dim="channel"), False, "channel_outage"),
    (_f(s=-20, o=-20, persist=0.9, persist_z=6.0, days=7), False, "level_shift"),
    (_f(s=36, c=-29, o=-3), False, "bot_traffic"),
    (_f(s=-40, c=66, o=0.5), False, "tracking_fault"),
    (_f(s=-1, c=-36, o=-37), False, "payment_failure"),
    (_f(c=-10, o=-10, ret=-15, new=0.0, days=10), False, "churn_wave"),
    (_f(c=-60, b=20, o=-60, dim="category"), False, "stockout"),
    (_f(b=-15, o=4, dim="category"), False, "pricing_error"),
    (_f(s=30, c=20, b=-20, o=56), False, "flash_sale"),
    (_f(s=1, c=5, b=24, o=5), False, "fraud_orders"),
    (_f(s=40, c=20, o=60), True, "planned_event"),
    (_f(s=0.5, c=-0.5), False, "undetermined"),
    # slice-aware rules (2.1)
    (_f(s=-41, c=24, b=58, o=-27, dim="country"), False, "site_outage"),   # not fraud: orders fell
    (_f(s=-45, o=-35, persist=2.2, persist_z=-7.2, dim="channel"), False, "level_shift"),
    (_f(c=-45, o=-49, ret=-17, new=-11, persist=0.9, persist_z=-7.0, dim="channel"), False,
     "level_shift"),                                    # churn never acts on one channel
    (_f(c=-38, o=-35, ret=9, new=2, persist=0.8, persist_z=-3.8, dim="country"), False,
     "churn_wave"),                                     # a conversion drop that stayed
    (_f(s=4, c=5, b=-44, o=9, dim="category"), False, "pricing_error"),  # not a flash sale
    (_f(s=2, c=-45, b=-18, o=-45, dim="category"), False, "stockout"),
    # a channel named by a conversion drop the whole store shares, returning customers hit: churn
    (_f(c=-34, o=-29, ret=-33, new=8, persist=1.0, persist_z=-5.8, dim="channel", c_all=-22),
     False, "churn_wave"),
    # … but a drop confined to the channel (the store fell far less) stays a level shift
    (_f(c=-45, o=-46, ret=-27, new=5, persist=0.7, persist_z=-4.7, dim="channel", c_all=-17),
     False, "level_shift"),
    # a bot surge that tripled a slice's visits, orders level: conversion -67 % (not -100 %)
    (_f(s=200, c=-67, o=0.5, dim="channel"), False, "bot_traffic"),
    (_f(s=27, c=-31, o=-10, b=1, dim="country"), False, "bot_traffic"),
    # … while visits that did buy (conversion about level) are no bots
    (_f(s=60, c=-2, o=57), False, "flash_sale"),
    # a category's basket fell more than its orders: prices; its orders fell more: stock
    (_f(b=-70, o=-10, dim="category"), False, "pricing_error"),
    (_f(b=-23, o=-15, dim="category"), False, "pricing_error"),
    (_f(b=-26, o=-59, dim="category"), False, "stockout"),
    # store-wide: baskets collapsed, orders about level: prices (not stock)
    (_f(s=-0.4, c=-15, b=-45, o=-15), False, "pricing_error"),
    # a short conversion collapse turning away new and returning customers alike: checkout
    (_f(s=-6, c=-77, b=-2, o=-79, ret=-100, new=-75, days=1), False, "payment_failure"),
    # … while returning customers leaving, new ones not, is churn
    (_f(c=-20, o=-20, ret=-22, new=3, days=7), False, "churn_wave"),
    # a category's cheaper basket with a few more store visits is no bot surge
    (_f(s=4, c=-5, b=-81, o=-1.4, dim="category"), False, "pricing_error"),
    # visits up with fewer of them buying (orders up on a slice's noise): not a promotion
    (_f(s=128, c=-24, b=3, o=74, dim="channel"), False, "bot_traffic"),
    # visits up, orders level, but baskets up more than the visits: bulk buying, no bots (the
    # bot rule's basket condition was untested: dropping it, mutant D04, passed)
    (_f(s=20, c=-20, b=40, o=0, r=40), False, "fraud_orders"),
    # fewer orders from returning customers, named by a channel: customers churn store-wide or
    # by country, not by channel (mutant D10, dropping the channel condition, passed)
    (_f(o=-10, r=-10, ret=-20, new=-2, dim="channel"), False, "payment_failure"),
    (_f(o=-10, r=-10, ret=-20, new=-2, dim="country"), False, "churn_wave"),
    # dearer baskets on a day that lost revenue: the few orders left, not fraud (fraud adds
    # revenue; random world 747's checkout failure read "revenue down -55.7%: fraud orders")
    (_f(s=-1, c=-76, b=88, o=-76, r=-56, days=2), False, "payment_failure"),
    (_f(c=-53, b=83, o=-53, r=-14, dim="category"), False, "stockout"),
    # more visitors buying, cheaper baskets, and the rise stayed: a new level, not a promotion
    # (TRAIN s16 E01, a lasting +50 % of sms x CA's visits, read as a flash sale) …
    (_f(s=72, c=5, b=-4, o=84, persist=1.43, persist_z=5.8, dim="channel", days=7), False,
     "level_shift"),
    # … and the same rise that came back is the promotion
    (_f(s=72, c=5, b=-4, o=84, persist=0.1, persist_z=0.4, dim="channel", days=7), False,
     "flash_sale"),
])
def test_classification_rules(feat, planned, kind):
    assert diagnosis.classify(feat, planned)[0] == kind


def test_diagnose_keeps_evidence_consistent():
    d = diagnosis.diagnose(
        {"sessions": -30.0, "conversion_rate": 1.0, "orders": -29.0, "aov": 0.5},
        DriverSet(scope="broad", expected_source="baseline"),
        1,
        False,
        (None, None),
        None,
        "sessions",
    )
    assert d.type == "site_outage" and d.label == "site outage"
    assert [(e.kpi, e.direction) for e in d.evidence] == [("sessions", "down"), ("orders", "down")]


def test_sizes_brief_first_most_severe_first(run):
    doc = run[0].insights
    brief = json.dumps(doc["brief"])
    assert len(brief) / 4 <= 1500 and len(doc["brief"]["top_episodes"]) <= 5
    sev = [insights.common.SEVERITY_RANK[e["severity"]] for e in doc["brief"]["top_episodes"]]
    assert sev == sorted(sev, reverse=True)
    md = render_markdown(doc, budget=3000)   # a tight budget drops episodes, least severe first
    assert "## Brief" in md and "more in insights.json" in md
    full = render_markdown(doc)
    assert len(full) <= 24_000 and full.index("## Brief") < full.index("## Episodes")
    # compact JSON on disk
    raw = (run[1] / "insights.json").read_text()
    assert "\n" not in raw.strip() and json.loads(raw) == doc


def _broad(dims: list[str]) -> DriverSet:
    from analytics.insights.models import Driver

    row = dict(actual=1.0, expected=1.0, change=0.0, share_of_change=0.5, share_of_expected=0.5,
               concentration=0.0)
    return DriverSet(scope="broad", expected_source="shift", breakdown={
        d: [Driver(dimension=d, value=v, **row) for v in ("a", "b")] for d in dims})


@pytest.mark.parametrize("dims, across", [
    (["country"], "across countries."),  # a transactions file: one channel, one category
    (["category", "channel", "country", "channel_country"],
     "across channels, countries and categories."),
    (["channel", "region"], "across channels and region segments."),
])
def test_broad_names_only_dimensions_with_several_segments(dims, across):
    """'Broad-based' is said across the dimensions the drivers compared (those with at least two
    segments), not across channels a one-channel file does not have."""
    from analytics.insights.models import KpiChange
    from analytics.insights.narrative import _headline

    wow = KpiChange(kpi="revenue", current=110.0, previous=100.0, change_pct=10.0,
                    current_start="2011-02-25", current_end="2011-03-03",
                    previous_start="2011-02-18", previous_end="2011-02-24", drivers=_broad(dims))
    text = _headline([wow])
    assert text.endswith(f"The change is broad-based {across}")
    if "channel" not in dims:
        assert "channels" not in text and "categories" not in text


@pytest.mark.parametrize("kpi", ["p99_latency_ms", "Révenue €", "http 5xx"])
def test_the_checker_reads_series_named_with_digits_or_symbols(kpi):
    """A --kpis series named 'p99_latency_ms' or 'Révenue €': correct texts were reported as
    mismatches ("'up +25.7%' has no field", "number(s) 99 not explained", "does not start with
    the primary KPI"), so `--check` failed on a sound run; a wrong number is still caught."""
    it = {"incident_id": "I-1", "kpi": kpi, "dimension": "overall", "segment": "all",
          "magnitude_pct": 25.747, "start": "2025-05-01", "end": "2025-05-09", "days": 9,
          "detectors": ["rolling_zscore"], "level": "single",
          "narrative": f"{kpi} up +25.7% vs expected from 2025-05-01 to 2025-05-09 (9 days)."}
    assert grounding.check_incident(it) == []
    assert grounding.check_incident({**it, "magnitude_pct": 20.0}) == [
        f"I-1.narrative: {kpi} +25.7% but the field says +20.0%"]
    ep = {"episode_id": "EP-1", "title": f"{kpi} up +81.3%: undetermined (2025-05-01 to "
                                          "2025-05-09)",
          "narrative": f"From 2025-05-01 to 2025-05-09 (9 days), 2 incidents on {kpi}, "
                       f"p99_latency_ms (high). Overall vs baseline over 2025-05-01 to "
                       f"2025-05-03: {kpi} +81.3%. Primary KPI: {kpi}. Likely undetermined "
                       f"(confidence 0.20): no funnel pattern stands out.",
          "recommended_action": f"Confirm the rise in {kpi} is real.",
          "kpis": sorted({kpi, "p99_latency_ms"}), "primary_kpi": kpi,
          "kpi_changes": {kpi: 81.3377}, "start": "2025-05-01", "end": "2025-05-09",
          "measured_start": "2025-05-01", "measured_end": "2025-05-03", "days": 9,
          "incident_ids": ["I-1", "I-2"], "slices": ["overall"], "calendar": [],
          "diagnosis": {"confidence": 0.2, "evidence": []}, "drivers": {}}
    assert grounding.check_episode(ep) == []


def test_a_short_spike_against_a_background_move_is_not_a_level_that_stayed():
    """The 4 weeks after an episode below the 4 weeks before it, the episode itself a rise: for
    an episode of 3 days or more the centered baseline already holds a new level (it stayed); a
    one- or two-day spike on a store that was moving anyway is no level shift (TRAIN: 6 of the 8
    such short episodes were mistyped, mostly as level shifts without an event)."""
    against = (-0.7, 4.5)                      # persistence share < 0, |z| >= 3
    assert diagnosis.lasting(against, days=3) and diagnosis.lasting(against)
    assert not diagnosis.lasting(against, days=1) and not diagnosis.lasting(against, days=2)
    assert diagnosis.lasting((0.9, 6.0), days=1)          # a short step that stayed still counts
    spike = _f(s=1, c=2, b=24, o=3, persist=-0.7, persist_z=4.5, days=1)
    assert diagnosis.classify(spike, False)[0] == "fraud_orders"
    assert diagnosis.classify(_f(s=-20, o=-20, persist=-0.7, persist_z=4.5, days=7),
                              False)[0] == "level_shift"


def test_a_change_that_rounds_to_zero_is_printed_without_a_minus():
    """-0.04 % was printed '-0.0%' (a fall to a reader) in the narratives and insights.md; the
    checker reads it back as the field, both without the minus."""
    from analytics.insights.markdown import _chg
    from analytics.insights.narrative import _signed

    assert _signed(-0.04) == "+0.0%" and _chg(-0.04) == "+0.0%" and _signed(-0.06) == "-0.1%"
    assert grounding.check_text("revenue +0.0% on the day", where="t", dates=set(),
                                signed={"revenue": -0.04}) == []
    assert grounding.check_text("revenue -0.0% on the day", where="t", dates=set(),
                                signed={"revenue": -0.04})


def test_a_level_shift_starts_where_the_bigger_move_is():
    """primary_for names a level shift's KPI by the bigger of its sessions and conversion moves
    (untested: the smaller one, mutant D07, passed)."""
    assert diagnosis.primary_for("level_shift", {"sessions": -30.0, "conversion_rate": -2.0},
                                 "orders") == "sessions"
    assert diagnosis.primary_for("level_shift", {"sessions": 1.0, "conversion_rate": -25.0},
                                 "orders") == "conversion_rate"
