"""The At-Risk monitor's day counts at their bounds (README "customers": a cooldown per segment and
severity; an incident ends after *more than* ``incident_gap_days`` days in a row observed as not
flagged). The existing tests stood inside or well past each bound, so an off-by-one survived a
hand-made mutant of either comparison (audit-mutcli)."""

from __future__ import annotations

import pandas as pd

from analytics.alerts import Dispatcher, JsonlSink
from analytics.customers import monitor
from analytics.customers.config import MonitorConfig
from analytics.customers.store import MonitorStore

D0 = pd.Timestamp("2025-03-01")


def _row(day: int, severity: str = "high") -> dict:
    return {"date": D0 + pd.Timedelta(days=day), "segment": "At Risk", "severity": severity,
            "customers": 500, "total": 5000, "share": 0.1, "growth": 0.2,
            "normal_growth": 0.01, "z": 6.0}


def _monitor(tmp_path, **cfg) -> monitor.Monitor:
    store = MonitorStore(":memory:")
    disp = Dispatcher([JsonlSink(tmp_path / "alerts.jsonl")], outbox=store)
    return monitor.Monitor(MonitorConfig(**cfg), store, disp, "ns")


def test_the_cooldown_ends_on_its_last_day_not_one_later(tmp_path):
    """cooldown_days=7 after an alert on day 0: a new incident on day 6 is in the cooldown, one
    on day 7 is alerted (incident_gap_days=0: each flag after a quiet day is a new incident)."""
    m = _monitor(tmp_path, cooldown_days=7, incident_gap_days=0)
    assert m.judge(_row(0))["decision"] == "sent"
    assert m.judge(_row(6))["decision"] == "cooldown"
    m2 = _monitor(tmp_path / "b", cooldown_days=7, incident_gap_days=0)
    assert m2.judge(_row(0))["decision"] == "sent"
    assert m2.judge(_row(7))["decision"] == "sent"


def test_cooldown_0_alerts_every_new_incident(tmp_path):
    m = _monitor(tmp_path, cooldown_days=0, incident_gap_days=0)
    assert [m.judge(_row(d))["decision"] for d in (0, 2, 4)] == ["sent"] * 3


def test_an_incident_goes_on_through_exactly_incident_gap_days_quiet_days(tmp_path):
    """incident_gap_days=3: flags on day 0 and day 4 (3 quiet days between) are one incident
    (ongoing, no second alert); flags on day 0 and day 5 (4 quiet days) are two."""
    m = _monitor(tmp_path, cooldown_days=0, incident_gap_days=3)
    first = m.judge(_row(0))
    again = m.judge(_row(4))
    assert again["decision"] == "ongoing" and again["incident_id"] == first["incident_id"]
    m2 = _monitor(tmp_path / "b", cooldown_days=0, incident_gap_days=3)
    first = m2.judge(_row(0))
    new = m2.judge(_row(5))
    assert new["decision"] == "sent" and new["incident_id"] != first["incident_id"]


class Crash(BaseException):
    """The process dying right after the alert is recorded as issued (kill -9)."""


def test_an_alert_recorded_before_a_crash_is_still_delivered_by_the_next_run(tmp_path):
    """The outbox row (pending) is written before the alert is recorded as issued: a run killed
    between recording it and sending it leaves it pending, and the next run's retry sends it.
    Without that row the cooldown held the alert as sent and it never reached the sink."""
    state = tmp_path / "m.sqlite"
    store = MonitorStore(state)
    sink = JsonlSink(tmp_path / "alerts.jsonl")
    disp = Dispatcher([sink], outbox=store)

    def dies(alert):
        raise Crash

    disp.send = dies
    m = monitor.Monitor(MonitorConfig(cooldown_days=7), store, disp, "ns")
    try:
        m.judge(_row(0))
    except Crash:
        pass
    store.close()
    assert not (tmp_path / "alerts.jsonl").exists()

    store = MonitorStore(state)                    # the next run
    assert store.has_alert("ns:At Risk:high:2025-03-01")
    out = Dispatcher([JsonlSink(tmp_path / "alerts.jsonl")], outbox=store).retry_pending()
    assert out == {"sent": 1, "pending": 0}
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 1
    store.close()


def test_a_shortfall_bar_the_statistic_cannot_reach_is_refused():
    """The shortfall z is the clipped per-day z's sum / sqrt(window x (1 + window / baseline)):
    at most 8.71 with the defaults, so min_z 9 (accepted up to 100) silenced every monitor alert,
    At-Risk ones too (they need its confirmation), exit 0 (docs audit 2026-12-05)."""
    import pytest

    from analytics.customers.config import ShortfallConfig

    assert ShortfallConfig(min_z=8.7).min_z == 8.7
    with pytest.raises(ValueError, match=r"min_z 9 can never be reached.* = 8\.71"):
        ShortfallConfig(min_z=9)
    assert ShortfallConfig(min_z=9, clip_z=3).min_z == 9   # 3 x 3.48 = 10.45: reachable
