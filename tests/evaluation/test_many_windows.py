"""Scoring reads every event's window at once (a labels file may hold many thousands of windows:
200,000 took 112-213 s before, hostile-input audit of 2026-12-05, item 16). The vectorized
windows, ends and delays must equal the one-by-one rules they replace, on every kind of end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.context import Incident
from evaluation.scoring import (
    Event,
    _window,
    _windows,
    match_matrix,
    metrics,
    whole_day_end,
    window_end,
    window_ends,
)


def _event(i: int, start: str, end: str, day: bool = True, effects: dict | None = None,
           expected: bool = False) -> Event:
    return Event(event_id=f"E{i:03d}", type="nab_window", expected=expected,
                 start=pd.Timestamp(start), end=pd.Timestamp(end), scope={}, effects=effects,
                 primary_kpi=None, end_is_day=day)


def _incident(start: str, end: str, kpi: str = "value", direction: str = "up") -> Incident:
    return Incident(incident_id=f"I-{start}-{kpi}", kpi=kpi, dimension="overall", segment="all",
                    start=pd.Timestamp(start), end=pd.Timestamp(end), direction=direction,
                    detectors=["rolling_zscore"], level="single", confidence=0.5,
                    severity="low", peak_score=4.0, actual=1.0, expected=1.0, magnitude_pct=0.0)


EVENTS = [
    _event(0, "2025-03-02", "2025-03-02"),                       # a day: covers it
    _event(1, "2025-03-02 10:00", "2025-03-02 12:30"),           # instants
    _event(2, "2025-03-02", "2025-03-04", day=False),            # midnight end as an instant
    _event(3, "2025-03-05 00:00", "2025-03-06 00:00", day=True),
    _event(4, "1969-12-30", "1969-12-31"),                       # before the epoch (negative ns)
    _event(5, "2025-03-01", "2025-03-03", effects={"value": 0.5}),
    _event(6, "2025-03-01", "2025-03-01", expected=True),
]


@pytest.mark.parametrize(("early", "late"), [(0, 0), (1, 3), (2, 0)])
def test_windows_equal_the_one_by_one_rule(early: int, late: int) -> None:
    lo, hi = _windows(EVENTS, early, late)
    want = [_window(ev, early, late) for ev in EVENTS]
    assert lo.tolist() == [w[0].value for w in want]
    assert hi.tolist() == [w[1].value for w in want]


def test_windows_with_offsets_fall_back_to_the_one_by_one_rule() -> None:
    evs = [*EVENTS[:2], Event(event_id="Z", type="nab_window", expected=False,
                              start=pd.Timestamp("2025-03-02", tz="Europe/Paris"),
                              end=pd.Timestamp("2025-03-03", tz="Europe/Paris"), scope={},
                              effects=None, primary_kpi=None)]
    lo, hi = _windows(evs, 1, 3)
    assert hi.tolist() == [_window(ev, 1, 3)[1].value for ev in evs]
    assert lo.tolist() == [_window(ev, 1, 3)[0].value for ev in evs]


def test_window_ends_equal_window_end() -> None:
    recs = [{"start": "2025-03-02", "end": "2025-03-02"},
            {"start": "2025-03-02", "end": "2025-03-02 12:00"},
            {"start": "2025-03-02", "end": "2025-03-04", "type": "nab_window"},
            {"start": "2025-03-02", "end": "2025-03-04", "end_is_day": True},
            {"start": "2025-03-02", "end": "2025-03-04T00:00:00+01:00"}]
    assert window_ends(recs[:4]) == [window_end(r) for r in recs[:4]]
    # mixed offsets: one by one, the same rule
    assert window_ends(recs) == [window_end(r) for r in recs]
    tz = [{"start": "2025-03-02", "end": "2025-03-04T00:00:00+01:00"},
          {"start": "2025-03-02", "end": "2025-03-05T06:00:00+01:00"}]
    assert window_ends(tz) == [window_end(r) for r in tz]
    assert window_ends(tz)[0] == whole_day_end(pd.Timestamp(tz[0]["end"]))


def test_matching_and_delays_over_many_windows_equal_the_one_by_one_rule() -> None:
    g = np.random.default_rng(3)
    days = pd.date_range("2025-01-01", periods=120, freq="D")
    evs = []
    for i in range(400):
        s = days[g.integers(0, 110)] + pd.Timedelta(hours=int(g.integers(0, 3)) * 6)
        e = s + pd.Timedelta(hours=int(g.integers(0, 80)))
        evs.append(_event(i, str(s), str(e), day=bool(g.integers(0, 2))))
    incs = [_incident(str(days[k] + pd.Timedelta(hours=h)), str(days[k] + pd.Timedelta(hours=h)))
            for k, h in zip(g.integers(0, 120, 60), g.integers(0, 24, 60), strict=True)]
    mm = match_matrix(incs, evs, "strict", 1, 3, 0.03)
    for j, ev in enumerate(evs):   # the rule: an incident's onset inside the event's window
        lo, hi = _window(ev, 1, 3)
        assert mm[:, j].tolist() == [lo <= i.start <= hi for i in incs]
    assert 0 < mm.sum() < mm.size
    _, delays = metrics(incs, evs, "strict", 1, 3, 0.03)
    want = {ev.event_id: min(int((incs[i].start.normalize() - ev.start.normalize()).days)
                             for i in np.flatnonzero(mm[:, j]))
            for j, ev in enumerate(evs) if mm[:, j].any()}
    assert delays == want
    assert list(delays) == list(want)   # in the events' order
