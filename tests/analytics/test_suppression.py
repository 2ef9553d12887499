"""Alarm suppression of consensus incidents (consensus.suppress)."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from analytics.config import ConsensusConfig
from analytics.consensus import consensus_incidents

T0 = pd.Timestamp("2025-03-01")


def detections(
    flags: dict[str, dict[int, float]], n: int, step: str, segments=("all",)
) -> pd.DataFrame:
    """detector -> {period index: signed score} flagged, on a grid of ``n`` periods of ``step``."""
    rows = []
    for seg in segments:
        for det, hits in flags.items():
            for p in range(n):
                s = hits.get(p, 0.0)
                rows.append(
                    {
                        "date": T0 + p * pd.Timedelta(step),
                        "kpi": "orders",
                        "dimension": "overall" if seg == "all" else "channel",
                        "segment": seg,
                        "detector": det,
                        "score": s,
                        "flag": s != 0.0,
                        "expected": 100.0,
                        "actual": 100.0 + 10 * s,
                    }
                )
    return pd.DataFrame(rows)


def cfg(**kw) -> ConsensusConfig:
    return ConsensusConfig(
        min_votes=1, tolerance_days=0, merge_gap_days=1, mute_calendar=False, **kw
    )


def test_hourly_second_incident_within_window_dropped_one_after_kept():
    # hours 2, 8 and 25 are < 24 h after the kept alarm at hour 2; hour 30 is not (and hour 25
    # being suppressed does not restart the window); hour 40 is < 24 h after 30.
    det = detections({"a": {2: 4.0, 8: 4.0, 25: -4.0, 30: 4.0, 40: 4.0}}, 60, "1h")
    dropped: list = []
    kept = consensus_incidents(det, ["a"], cfg(suppress="1d"), suppressed=dropped)
    hours = lambda incs: [int((i.start - T0) / pd.Timedelta("1h")) for i in incs]  # noqa: E731
    assert hours(kept) == [2, 30]
    assert sorted(hours(dropped)) == [8, 25, 40]
    assert hours(consensus_incidents(det, ["a"], cfg(suppress=None))) == [2, 8, 25, 30, 40]
    assert hours(consensus_incidents(det, ["a"], cfg(suppress="6h"))) == [
        2,
        8,
        25,
        40,
    ]  # 8 is 6 h after 2: kept
    assert hours(consensus_incidents(det, ["a"], cfg(suppress="7h"))) == [2, 25, 40]


def test_series_are_suppressed_independently():
    det = detections({"a": {2: 4.0, 8: 4.0}}, 30, "1h", segments=("all", "paid_search"))
    kept = consensus_incidents(det, ["a"], cfg(suppress="1d"))
    assert sorted((i.segment, i.start.hour) for i in kept) == [("all", 2), ("paid_search", 2)]


def test_default_changes_nothing_on_daily_data():
    assert ConsensusConfig().suppress == "1d"
    flags = {
        "a": {3: 4.0, 5: 4.0, 6: -5.0, 9: 4.0, 10: 4.0, 12: -4.0},
        "b": {3: 4.0, 6: -4.0, 12: 4.0},
    }
    det = detections(flags, 30, "1D", segments=("all", "paid_search"))
    for k in (1, 2):
        dropped: list = []
        on = consensus_incidents(det, ["a", "b"], ConsensusConfig(min_votes=k), suppressed=dropped)
        off = consensus_incidents(det, ["a", "b"], ConsensusConfig(min_votes=k, suppress=None))
        assert on == off and dropped == []
        assert len(on) >= 3


@pytest.mark.parametrize("bad", ["soon", "-1d"])
def test_bad_duration_is_refused(bad):
    with pytest.raises(ValidationError, match="suppress"):
        ConsensusConfig(suppress=bad)


def test_durations_with_a_lower_case_day_or_week_parse_without_pandas_deprecation():
    """``suppress: 1d`` (the shipped value) and ``2w``: pandas 3 deprecates a lower-case day or
    week unit (Pandas4Warning) and a later pandas refuses it; the parser writes it upper-case, and
    leaves words (``1 day``) and other units (``30min``) alone."""
    import warnings

    from analytics.consensus import parse_duration

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_duration("1d") == pd.Timedelta(days=1)
        assert parse_duration("2w") == pd.Timedelta(days=14)
        assert parse_duration("1d 6h") == pd.Timedelta(hours=30)
        assert parse_duration("1 day") == pd.Timedelta(days=1)
        assert parse_duration("30min") == pd.Timedelta(minutes=30)
