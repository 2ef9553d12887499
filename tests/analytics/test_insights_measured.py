"""An incident's insight says where inside its flagged days the KPI itself deviated.

The 3- and 7-day windows keep flagging while their sums still hold a short shock's days, so on
the default scenario a two-day -83 % email outage was an incident "orders in channel email down
-26.6% vs expected from 2025-01-21 to 2025-01-28 (8 days)", five normal days diluting its size
(the episodes were already measured where the KPI deviated; the incidents were not)."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from analytics.insights import grounding
from analytics.insights.models import IncidentInsight
from analytics.insights.narrative import _narrative


@pytest.fixture(scope="module")
def short_drop_doc(tmp_path_factory):
    from run_analysis import main

    tmp = tmp_path_factory.mktemp("measured")
    rng = np.random.default_rng(11)
    days = pd.date_range("2025-01-01", periods=100, freq="D")
    v = rng.poisson(500, len(days)).astype(float)
    v[60:62] = 100.0  # 2025-03-02 and 03: -80 %, then back to normal
    csv = tmp / "daily.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "requests": v}).to_csv(csv, index=False)
    assert main(["--kpis", str(csv), "--out", str(tmp / "run"), "--quiet",
                 "--set", "insights.forecast.enabled=false"]) == 0
    return json.loads((tmp / "run" / "insights.json").read_text())


def test_a_short_drop_flagged_for_days_after_says_where_it_deviated(short_drop_doc):
    (it,) = [i for i in short_drop_doc["incidents"] if i["start"] == "2025-03-02"]
    assert it["days"] > 2  # the windows flagged on after the two days
    assert (it["measured_start"], it["measured_end"]) == ("2025-03-02", "2025-03-03")
    assert -85.0 < it["measured_change_pct"] < -75.0
    assert abs(it["magnitude_pct"]) < abs(it["measured_change_pct"]) / 2  # diluted by the tail
    assert it["narrative"].endswith(
        f"; the change is in 2025-03-02 to 2025-03-03, which deviated down "
        f"{it['measured_change_pct']:+.1f}% vs the same weekdays around them.")
    assert grounding.check(short_drop_doc) == []
    for i in short_drop_doc["incidents"]:  # a span strictly inside the incident, or none
        if "measured_start" in i:
            assert i["start"] <= i["measured_start"] <= i["measured_end"] <= i["end"]
            assert (i["measured_start"], i["measured_end"]) != (i["start"], i["end"])
        else:
            assert "measured_change_pct" not in i


def test_grounding_catches_a_wrong_measured_figure_or_date(short_drop_doc):
    (it,) = [i for i in short_drop_doc["incidents"] if "measured_start" in i][:1]
    wrong = {**it, "measured_change_pct": it["measured_change_pct"] + 10}
    assert any("which deviated" in b for b in grounding.check_incident(wrong))
    moved = {**it, "measured_end": "2025-03-05"}
    assert any("2025-03-03 is not a field" in b for b in grounding.check_incident(moved))


def _item(**more) -> IncidentInsight:
    return IncidentInsight.model_validate({
        "incident_id": "I-orders-channel-email-2025-01-21-down", "kpi": "orders",
        "dimension": "channel", "segment": "email", "start": "2025-01-21",
        "end": "2025-01-28", "days": 8, "direction": "down", "magnitude_pct": -26.6,
        "detectors": ["count_likelihood"], "level": "single", "confidence": 0.5,
        "severity": "high", "planned": False, "narrative": "", **more})


def test_the_narrative_names_one_measured_day_or_none():
    plain = ("orders in channel email down -26.6% vs expected from 2025-01-21 to 2025-01-28 "
             "(8 days).")
    assert _narrative(_item()) == plain
    one = _item(measured_start=date(2025, 1, 21), measured_end=date(2025, 1, 21),
                measured_change_pct=-83.04)
    assert _narrative(one) == plain[:-1] + (
        "; the change is on 2025-01-21, which deviated down -83.0% vs the same weekdays "
        "around them.")
    doc = one.model_dump(mode="json", exclude_none=True)
    doc["narrative"] = _narrative(one)
    assert grounding.check_incident(doc) == []
