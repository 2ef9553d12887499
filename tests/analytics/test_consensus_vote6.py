"""The shipped consensus of the sixth session: combined calibrated evidence of the three voters
(``combine: stouffer``, ρ 0.55, ``combine_sensitivity`` 0.3), no solo path, and a voter without
a score yet (its leading zeros) out of the sum. ``--kpis`` input keeps its vote rule unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.config import load_analysis_config
from analytics.consensus import consensus_incidents

from .test_consensus import DAY0, spans, votes

VOTERS = ["count_likelihood", "isolation_forest", "rolling_zscore"]
OLD = ["consensus.combine=vote", "consensus.solo_sensitivity=0.001", "consensus.combine_rho=0.4",
       "consensus.combine_sensitivity=0.02"]   # main before the sixth session


def _det(scores: dict[str, dict[int, float]], started: tuple[str, ...] = tuple(VOTERS),
         n_days: int = 20) -> pd.DataFrame:
    """Three voters' calibrated scores; a flag where |score| >= 3.26 (the detectors' knob 0.1);
    a voter in ``started`` has a small score on day 0 (it is scoring: its zeros are evidence)."""
    det = votes({v: {} for v in VOTERS}, n_days=n_days)
    for v, days in scores.items():
        for d, s in days.items():
            det.loc[(det["detector"] == v) & (det["date"] == DAY0 + pd.Timedelta(days=d)),
                    "score"] = s
    for v in started:
        at = (det["detector"] == v) & (det["date"] == DAY0)
        det.loc[at & (det["score"] == 0), "score"] = 0.1
    det["flag"] = det["score"].abs() >= 3.26
    det["direction"] = np.where(det["score"] >= 0, "up", "down")
    return det


def _incidents(det: pd.DataFrame, overrides: list[str]) -> list:
    cfg = load_analysis_config(None, overrides).consensus
    return consensus_incidents(det, VOTERS, cfg)


def test_shipped_rule_is_combined_evidence_without_solo():
    c = load_analysis_config(None, []).consensus
    assert (c.combine, c.combine_sensitivity, c.combine_rho, c.solo_sensitivity) == (
        "stouffer", 0.2, 0.55, None)
    # 2026-12-06: the forest adds its evidence but does not anchor; onsets move back to the run
    assert (c.anchors, c.onset_back) == (["count_likelihood", "rolling_zscore"], 14)


def test_a_moderate_flag_with_agreeing_neighbours_is_an_incident_the_vote_missed():
    """rolling_zscore flags 3.6; count_likelihood 3.1 and the forest 2.9 (neither flagged) a day
    away: one vote under the old rule (below the solo 4.39), combined evidence 3.40 >= 3.26 now."""
    det = _det({"rolling_zscore": {5: 3.6}, "count_likelihood": {6: 3.1},
                "isolation_forest": {4: 2.9}})
    assert _incidents(det, OLD) == []
    assert spans(_incidents(det, [])) == [(5, 5, "up", ["rolling_zscore"], "single")]
    # the neighbours pointing the other way are evidence against
    det2 = _det({"rolling_zscore": {5: 3.6}, "count_likelihood": {6: -3.1},
                 "isolation_forest": {4: -2.9}})
    assert _incidents(det2, []) == []


def test_a_strong_lone_flag_needs_some_agreement_now():
    """count_likelihood alone at 4.6 with both others quiet: the old solo path (>= 4.39) made an
    incident; the combined evidence does not (the others' quiet days count against). With
    rolling_zscore at 3.2 and the forest at 2.0 (neither flagged) it does (3.40 >= 3.26)."""
    det = _det({"count_likelihood": {5: 4.6}})
    assert len(_incidents(det, OLD)) == 1
    assert _incidents(det, []) == []
    det = _det({"count_likelihood": {5: 4.6}, "rolling_zscore": {5: 3.2},
                "isolation_forest": {6: 2.0}})
    assert spans(_incidents(det, [])) == [(5, 5, "up", ["count_likelihood"], "single")]


def test_a_voter_without_a_score_yet_drops_out():
    """count_likelihood has written only zeros so far (its warm-up): rolling_zscore 3.6 and the
    forest 2.9 are judged as two voters (3.38 >= 3.26). The same zeros from a count_likelihood
    that has started scoring are evidence against."""
    scores = {"rolling_zscore": {5: 3.6}, "isolation_forest": {4: 2.9}}
    warm = _det(scores, started=("isolation_forest", "rolling_zscore"))
    assert spans(_incidents(warm, [])) == [(5, 5, "up", ["rolling_zscore"], "single")]
    assert _incidents(_det(scores), []) == []


def test_kpis_input_consensus_is_unchanged():
    """--kpis input (external profile: vote rule, k = 1): the same incidents with the shipped store
    consensus as with main's before the sixth session, on hourly scores of two voters."""
    from analytics.external import external_profile

    rng = np.random.default_rng(3)
    n = 24 * 20
    dates = pd.date_range("2025-03-01", periods=n, freq="h")
    rows = []
    for v in ("isolation_forest", "rolling_zscore"):
        s = rng.standard_normal(n) * 1.6
        for t, x in zip(dates, s, strict=True):
            rows.append({"date": t, "kpi": "value", "dimension": "overall", "segment": "all",
                         "detector": v, "score": x, "flag": abs(x) >= 3.0,
                         "direction": "up" if x >= 0 else "down", "expected": 10.0,
                         "actual": 10.0 + x, "mode": "causal"})
    det = pd.DataFrame(rows)
    assert det["flag"].sum() > 5
    voters = ["isolation_forest", "rolling_zscore"]
    new = external_profile(load_analysis_config(None, []), 3600.0).consensus
    old = external_profile(load_analysis_config(None, OLD), 3600.0).consensus
    assert new.combine == old.combine == "vote"
    a = consensus_incidents(det, voters, new)
    b = consensus_incidents(det, voters, old)
    assert a and [i.__dict__ for i in a] == [i.__dict__ for i in b]
