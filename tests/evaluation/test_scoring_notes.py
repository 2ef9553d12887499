"""Scoring notes: warm-up events apart, recall per scope kind, impact-weighted recall."""

from __future__ import annotations

import pandas as pd

from analytics.context import Incident
from evaluation.pipeline import with_revenue_impact
from evaluation.scoring import build_scorecard

SETTINGS = {
    "mode": "strict",
    "early_days": 1,
    "late_days": 3,
    "min_effect": 0.03,
    "warmup_days": 30,
    "data_start": "2025-01-01",
}


def ev(eid: str, start: str, scope: dict, revenue: float, end: str | None = None) -> dict:
    return {
        "event_id": eid,
        "type": "site_outage",
        "expected": False,
        "start": start,
        "end": end or start,
        "scope": scope,
        "effects": {"sessions": -0.3, "revenue": revenue},
        "primary_kpi": "sessions",
        "primary_direction": "down",
    }


def inc(day: str, dimension: str = "overall", segment: str = "all") -> Incident:
    t = pd.Timestamp(day)
    return Incident(
        incident_id=f"I-{day}-{segment}",
        kpi="sessions",
        dimension=dimension,
        segment=segment,
        start=t,
        end=t,
        direction="down",
        detectors=["a"],
        level="single",
        confidence=1.0,
        severity="high",
        peak_score=9.0,
        actual=1.0,
        expected=2.0,
        magnitude_pct=-50.0,
    )


EVENTS = [ev("E01", "2025-01-10", {}, -0.5),                        # inside the 30-day warm-up
          ev("E02", "2025-03-01", {}, -0.30),                       # overall, caught
          ev("E03", "2025-04-01", {"country": "DE"}, -0.10),        # country, missed
          ev("E04", "2025-05-01", {"channel": "email"}, -0.05),     # channel, caught
          ev("E05", "2025-06-01", {"category": "books"}, -0.05)]    # category, missed


def card(incidents: list[Incident], settings: dict = SETTINGS) -> dict:
    return build_scorecard(
        EVENTS, {"oracle": incidents}, incidents, {"k1": incidents}, dict(settings)
    )


def test_warmup_events_are_reported_apart_and_left_out_of_recall():
    c = card([inc("2025-01-10"), inc("2025-03-01"), inc("2025-05-01", "channel", "email")])
    assert c["warmup"] == {"days": 30, "events": 1, "event_ids": ["E01"], "consensus_detected": 1,
                           "consensus_incidents": 1}
    m = c["strict"]["consensus"]
    assert m["events"] == 4 and m["detected"] == 2 and m["recall"] == 0.5
    # the warm-up incident caught a real event: set aside, neither a hit nor a false positive
    assert m["fp"] == 0 and m["incidents"] == 2 and m["precision"] == 1.0
    assert c["strict"]["detectors"]["oracle"]["fp"] == 0
    assert c["strict"]["consensus_levels"]["k1"]["fp"] == 0
    # an alarm in the warm-up on no event at all is still a false positive
    c2 = card([inc("2025-01-20"), inc("2025-03-01")])
    assert c2["strict"]["consensus"]["fp"] == 1 and c2["warmup"]["consensus_incidents"] == 0
    detail = {d["event_id"]: d for d in c["event_detail"]}
    assert detail["E01"]["in_warmup"] and detail["E01"]["impact_share"] is None
    assert "consensus" in detail["E01"]["detected_by"]
    # without a warm-up, E01 counts like any other event
    c0 = card([inc("2025-01-10"), inc("2025-03-01")], {**SETTINGS, "warmup_days": 0})
    assert c0["warmup"]["events"] == 0 and c0["strict"]["consensus"]["events"] == 5


def test_recall_per_scope_kind_and_impact_weighted():
    c = card([inc("2025-03-01"), inc("2025-05-01", "channel", "email")])
    by_scope = c["strict"]["consensus"]["by_scope"]
    assert by_scope == {"category": {"events": 1, "detected": 0, "recall": 0.0},
                        "channel": {"events": 1, "detected": 1, "recall": 1.0},
                        "country": {"events": 1, "detected": 0, "recall": 0.0},
                        "overall": {"events": 1, "detected": 1, "recall": 1.0}}
    # weights |effects.revenue|: (0.30 + 0.05) / (0.30 + 0.10 + 0.05 + 0.05)
    assert c["strict"]["consensus"]["impact_weighted_recall"] == 0.7
    shares = {d["event_id"]: d["impact_share"] for d in c["event_detail"]}
    assert shares["E02"] == 0.6 and abs(sum(v for v in shares.values() if v) - 1) < 1e-3


def test_revenue_impact_uses_the_counterfactual_window():
    cf = pd.DataFrame(
        {
            "date": pd.date_range("2025-03-01", periods=3).strftime("%Y-%m-%d").tolist() * 2,
            "channel": ["all"] * 3 + ["email"] * 3,
            "revenue": [100.0, 200.0, 300.0, 1.0, 1.0, 1.0],
        }
    )
    out = with_revenue_impact([ev("E02", "2025-03-01", {}, -0.5, end="2025-03-02")], cf)
    assert out[0]["impact_revenue"] == -150.0
    c = build_scorecard(
        out + [ev("E09", "2025-06-01", {}, -0.9)], {}, [inc("2025-03-01")], {}, dict(SETTINGS)
    )
    assert c["strict"]["consensus"]["impact_weighted_recall"] == round(150 / 150.9, 4)


def test_truth_round_trips_through_the_typed_model(tmp_path):
    """The simulator writes events the shared model accepts; evaluation reads them back typed."""
    from tests.simulation.simtools import tiny_config

    from evaluation.truth import load_truth
    from simulation.api import generate

    generate(tiny_config(), tmp_path / "d")
    truth = load_truth(tmp_path / "d")
    assert truth.unexpected and all(e.effects for e in truth.unexpected)
    assert {"overall", "channel", "country", "category", "channel_country"} <= set(
        truth.baseline["dimension"]
    )
    assert truth.noise["schema"] == "shocklab.noise_model/1"


def test_sub_daily_incident_is_assigned_to_the_nearest_event_not_the_earliest():
    """NAB realTraffic/speed_7578 (10-minute data): an incident the day after two label windows
    matched both through the tolerance days, and the overlap was measured in whole days (-1 for
    both), so the earlier window won the tie: the later one counted as detected (recall 1.00 on 4
    windows) but no incident named it ("insights on 3 matched events")."""
    def window(eid: str, start: str, end: str) -> dict:
        return {"event_id": eid, "type": "nab_window", "expected": False, "start": start,
                "end": end, "scope": {}, "effects": None, "primary_kpi": None}

    events = [window("W03", "2015-09-16T13:04", "2015-09-16T15:20"),
              window("W04", "2015-09-16T16:00", "2015-09-16T18:20")]
    late = inc("2015-09-17T13:49")
    inside = inc("2015-09-16T14:00")
    card = build_scorecard(events, {}, [inside, late], {}, {**SETTINGS, "warmup_days": 0},
                           oracle_name=None)
    assert card["strict"]["consensus"]["recall"] == 1.0
    assert inside.matched_event_id == "W03"
    assert late.matched_event_id == "W04"   # 19.5 h after W04 ends, 22.5 h after W03 ends


def test_warmup_edges():
    """The warm-up is [data_start, data_start + warmup_days): an event starting on its end day
    counts. An incident on a warm-up event and a counted one is a hit (not set aside), and the
    oracle's bound keeps an incident ending ``early_days`` before the warm-up's end (it can match
    an event starting then)."""
    events = [ev("E01", "2025-01-10", {}, -0.5, end="2025-01-30"),   # warm-up, its window to 02-02
              ev("E06", "2025-01-31", {}, -0.1)]                     # on the warm-up's end: counted
    c = build_scorecard(events, {"oracle": [inc("2025-01-30")]}, [inc("2025-01-31")], {},
                        dict(SETTINGS))
    assert c["warmup"]["event_ids"] == ["E01"] and c["warmup"]["consensus_incidents"] == 0
    m = c["strict"]["consensus"]
    assert (m["events"], m["detected"], m["incidents"], m["fp"]) == (1, 1, 1, 0)
    assert c["strict"]["oracle_equal_fp"]["oracle_recall"] == 1.0
