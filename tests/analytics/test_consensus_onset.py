"""A consensus incident's onset moved back along its voters' run of flags (``onset_back``)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analytics.config import ConsensusConfig, load_analysis_config
from analytics.consensus import _onset, anchor_voters, consensus_incidents

from .test_consensus import DAY0, votes


def _cfg(back: int, **kw) -> ConsensusConfig:
    return ConsensusConfig(**{"min_votes": 2, "tolerance_days": 0, "merge_gap_days": 1,
                              "onset_back": back, **kw})


def _days(incs) -> list[tuple[int, int, str]]:
    return [((i.start - DAY0).days, (i.end - DAY0).days, i.direction) for i in incs]


def test_onset_walks_back_along_the_run_of_flags_within_the_merge_gap():
    flags = np.zeros(20, bool)
    flags[[1, 4, 5, 6]] = True
    assert _onset(flags, 8, 0, 0, 1) == 8              # off
    assert _onset(flags, 8, 14, 0, 1) == 4             # 8 <- 6 <- 5 <- 4; 1 is 3 periods off
    assert _onset(flags, 8, 14, 0, 2) == 1             # a wider gap reaches it
    assert _onset(flags, 8, 3, 0, 1) == 5              # at most 3 periods back
    assert _onset(flags, 8, 14, 5.0, 1) == 5           # never before the floor
    assert _onset(np.zeros(20, bool), 8, 14, 0, 1) == 8


def test_lone_flags_before_the_consensus_day_set_the_onset():
    """Detector a flags alone on days 3-5 (no second vote); a and b agree on day 6: reported
    from day 3 with onset_back (id, start), from day 6 without; the end is the same."""
    det = votes({"a": {3: 3.5, 4: 3.6, 5: 3.8, 6: 5.0}, "b": {6: 4.0}})
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(0))) == [(6, 6, "up")]
    (inc,) = consensus_incidents(det, ["a", "b"], _cfg(14))
    assert _days([inc]) == [(3, 6, "up")]
    assert inc.incident_id == "I-orders-overall-all-2025-03-04-up"
    assert inc.confirmed == DAY0 + pd.Timedelta(days=6)    # raised when the rule held
    assert inc.to_dict()["confirmed"] == "2025-03-07"
    (same,) = consensus_incidents(det, ["a", "b"], _cfg(0))
    assert same.confirmed == same.start
    assert inc.detectors == ["a", "b"]
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(2))) == [(4, 6, "up")]


def test_flags_of_the_other_direction_or_beyond_the_gap_or_on_a_planned_day_are_not_the_run():
    det = votes({"a": {2: 3.5, 4: -3.6, 6: 5.0}, "b": {6: 4.0}})
    # day 4 is a fall, day 2 is three periods before day 6 (merge gap 1)
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(14))) == [(6, 6, "up")]
    det = votes({"a": {4: 3.6, 5: 3.5, 6: 5.0}, "b": {6: 4.0}})
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(14))) == [(4, 6, "up")]
    det = votes({"a": {3: 3.6, 5: 3.5, 6: 5.0}, "b": {6: 4.0}})
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(14))) == [(3, 6, "up")]
    planned = [DAY0 + np.timedelta64(5, "D")]
    # day 5 planned: its flag is no part of the run, and day 3 is two unflagged periods off
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(14), mute_dates=planned)) == [
        (6, 6, "up")]
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(14, merge_gap_days=2),
                                     mute_dates=planned)) == [(3, 6, "up")]


def test_a_later_incident_never_reaches_back_to_the_previous_one():
    """Two incidents on one series (days 3 and 12) with lone flags between: the second moves
    back no further than the first's end + merge gap + 2, so they stay two incidents."""
    lone = {d: 3.5 for d in range(5, 12)}
    det = votes({"a": {3: 5.0, **lone, 12: 5.0}, "b": {3: 4.0, 12: 4.0}})
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(0))) == [(3, 3, "up"), (12, 12, "up")]
    assert _days(consensus_incidents(det, ["a", "b"], _cfg(14))) == [(3, 3, "up"), (6, 12, "up")]


@pytest.mark.parametrize(("value", "message"), [
    ("[rolling_zscor]", "consensus.anchors: 'rolling_zscor' is neither a configured detector"),
    ("[rolling_zscore,rolling_zscore]", "consensus.anchors: 'rolling_zscore' is listed twice"),
    ("[]", "consensus.anchors"),
])
def test_anchors_name_detectors_or_types(value, message):
    with pytest.raises(Exception, match=re.escape(message)):
        load_analysis_config(None, [f"consensus.anchors={value}"])
    # a type is a valid anchor with no detector of that name: the shipped anchors survive a
    # config that replaces the detectors (its own error is then "no voting detector")
    assert load_analysis_config(None, ["detectors={}"]).consensus.anchors == [
        "count_likelihood", "rolling_zscore"]


def test_an_anchor_matches_a_voter_by_name_or_by_type():
    cfg = ConsensusConfig(anchors=["rolling_zscore"])
    fams = {"rz_week": "rolling_zscore", "isf": "isolation_forest"}
    assert anchor_voters(cfg, ["rz_week", "isf"], fams) == ["rz_week"]
    assert anchor_voters(cfg, ["rz_week", "isf"]) == ["rz_week", "isf"]   # no match: every voter
    assert anchor_voters(ConsensusConfig(), ["rz_week", "isf"], fams) == ["rz_week", "isf"]


def test_kpis_runs_date_an_alarm_at_its_onset():
    """NAB credits an early alarm: on --kpis input the onset is never moved back (external
    profile), whatever the store's consensus.onset_back."""
    from analytics.external import external_profile

    cfg = load_analysis_config(None, [])
    assert cfg.consensus.onset_back == 14
    assert external_profile(cfg, 300.0).consensus.onset_back == 0
