"""consensus.combine=stouffer: the voters' calibrated evidence summed (own score + the others'
Sidak-corrected best score within the tolerance), with a known false-alarm rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr

from analytics.config import ConsensusConfig
from analytics.consensus import _window_evidence, combined_scores, consensus_incidents
from analytics.detectors.calibrate import threshold_for

from .test_consensus import DAY0, spans, votes


def _set(det: pd.DataFrame, name: str, day: int, score: float) -> None:
    det.loc[(det["detector"] == name) & (det["date"] == DAY0 + pd.Timedelta(days=day)),
            "score"] = score


def test_combined_evidence_finds_what_the_vote_misses():
    """rz at 3.9 (flagged, below the solo threshold 4.15), the forest at 2.9 two days later (not
    flagged): no 2-of-2 vote, but their combined evidence (ρ 0.4) passes; one alone does not; the
    other direction is evidence against."""
    det = votes({"rz": {5: 3.9}, "isf": {}})
    _set(det, "isf", 0, 0.1)   # the forest has started scoring: its later zeros are evidence
    _set(det, "isf", 7, 2.9)
    vote = ConsensusConfig(min_votes=2, tolerance_days=2, solo_sensitivity=0.003)
    assert consensus_incidents(det, ["rz", "isf"], vote) == []
    comb = vote.model_copy(update={"combine": "stouffer", "combine_sensitivity": 0.05,
                                   "combine_rho": 0.4})
    assert spans(consensus_incidents(det, ["rz", "isf"], comb)) == [(5, 5, "up", ["rz"], "single")]
    _set(det, "isf", 7, 0.0)
    assert consensus_incidents(det, ["rz", "isf"], comb) == []
    _set(det, "isf", 7, -2.9)
    assert consensus_incidents(det, ["rz", "isf"], comb) == []
    # the vote rule's levels (min_votes given explicitly) are unchanged by combine
    assert consensus_incidents(det, ["rz", "isf"], comb, min_votes=2) == []


def test_combined_score_is_stouffer_with_a_common_correlation():
    """(own + others) / sqrt(k + k (k - 1) rho) over the k voters with a score; a voter without
    one drops out of k, and an anchor without its own score has none."""
    sc = np.array([[[2.0]], [[3.0]], [[np.nan]]])       # [voter, series, period]
    for rho, den in [(1.0, 2.0), (0.0, np.sqrt(2.0)), (0.5, np.sqrt(3.0))]:
        out = combined_scores(sc, 0, rho)
        assert out[0, 0, 0] == pytest.approx(5.0 / den)
        assert out[1, 0, 0] == pytest.approx(5.0 / den)
        assert np.isnan(out[2, 0, 0])
    three = combined_scores(np.array([[[1.0]], [[2.0]], [[3.0]]]), 0, 0.25)
    assert three[:, 0, 0] == pytest.approx([6.0 / np.sqrt(3 + 6 * 0.25)] * 3)


def test_window_evidence_is_sidak_corrected():
    """The best of m looks is read at 1 − (1 − p)^m: one 3.0 among zeros within ±2 days is
    weaker than 3.0 (less so with fewer looks: a NaN is no look); a lone voter passes through;
    no score in the window is NaN."""
    sc = np.zeros((1, 1, 9))
    sc[0, 0, 4] = 3.0
    sc[0, 0, 0] = np.nan
    w = _window_evidence(sc, 2)[0, 0]
    p = ndtr(-3.0)
    assert np.isclose(ndtr(-w[4]), 1 - (1 - p) ** 5)
    assert w[4] < 3.0 and np.isclose(w[3], w[4]) and w[2] > w[4]
    assert not np.isfinite(_window_evidence(np.full((1, 1, 3), np.nan), 1)).any()
    assert combined_scores(sc, 2, 0.5) is sc


def test_null_rate_is_at_most_nominal():
    """Independent standard-normal voters (ρ = 0 true): the combined score's exceedances stay at
    or below the nominal one-sided rate for ρ = 0 and well below it for ρ = 1 (safe)."""
    rng = np.random.default_rng(7)
    sc = rng.standard_normal((2, 400, 500))
    t = 2.5
    for rho, hi in ((0.0, 1.15), (1.0, 0.5)):
        c = combined_scores(sc, 2, rho)
        rate = np.mean(c[:, :, 2:-2] >= t)
        assert rate <= hi * ndtr(-t), (rho, rate, ndtr(-t))
    assert np.mean(combined_scores(sc, 2, 0.0) >= t) > 0.5 * ndtr(-t)   # not vacuous


def test_threshold_is_bonferroni_over_anchors():
    """Two voters: each is an anchor, so each is tested at half the combined sensitivity."""
    det = votes({"rz": {5: 3.0}, "isf": {}})
    cfg = ConsensusConfig(combine="stouffer", combine_sensitivity=0.1, solo_sensitivity=None,
                          tolerance_days=0)
    t = threshold_for(0.05)
    cfg = cfg.model_copy(update={"combine_rho": 0.0})
    _set(det, "isf", 5, t * np.sqrt(2) - 3.0 - 0.01)
    assert consensus_incidents(det, ["rz", "isf"], cfg) == []
    _set(det, "isf", 5, t * np.sqrt(2) - 3.0 + 0.01)
    assert len(consensus_incidents(det, ["rz", "isf"], cfg)) == 1


def test_kpis_input_keeps_the_vote_rule():
    """--kpis input (external profile) was tuned on NAB with the vote rule: it stays on it whatever
    the store's consensus.combine is."""
    from analytics.config import load_analysis_config
    from analytics.external import external_profile

    cfg = load_analysis_config(None, ["consensus.combine=stouffer"])
    assert cfg.consensus.combine == "stouffer"
    assert external_profile(cfg, 300.0).consensus.combine == "vote"


def test_vote_sensitivity_does_not_act_under_the_combined_rule():
    """``vote_sensitivity`` is the vote rule's knob; under ``combine: stouffer`` it still widened
    the votes each incident was built from: the same incidents, with other detectors, level,
    confidence and magnitude (settings audit 2026-12-05)."""
    det = votes({"rz": {5: 3.9}, "isf": {}})
    _set(det, "isf", 0, 0.1)
    _set(det, "isf", 7, 2.9)
    comb = ConsensusConfig(min_votes=2, tolerance_days=2, solo_sensitivity=0.003,
                           combine="stouffer", combine_sensitivity=0.05, combine_rho=0.4)
    assert threshold_for(3.0, 1) < 2.9   # the knob would count the forest's 2.9 as a vote
    plain = consensus_incidents(det, ["rz", "isf"], comb)
    widened = consensus_incidents(det, ["rz", "isf"],
                                  comb.model_copy(update={"vote_sensitivity": 3.0}))
    assert spans(widened) == spans(plain) == [(5, 5, "up", ["rz"], "single")]
    assert widened == plain
    # the vote rule's levels still read it
    vote = comb.model_copy(update={"combine": "vote", "vote_sensitivity": 3.0})
    assert spans(consensus_incidents(det, ["rz", "isf"], vote)) == [
        (5, 5, "up", ["isf", "rz"], "pairwise")]


def test_anchors_limit_who_opens_a_combined_period_and_share_the_knob():
    """``consensus.anchors``: only these voters' flags anchor the combined test (the others
    still add their evidence), and the Bonferroni is over them: with one anchor of two, that
    anchor is tested at the whole combined sensitivity."""
    det = votes({"rz": {}, "isf": {5: 3.5}})
    _set(det, "rz", 0, 0.1)
    _set(det, "rz", 5, 2.0)
    cfg = ConsensusConfig(combine="stouffer", combine_sensitivity=0.1, solo_sensitivity=None,
                          tolerance_days=0, combine_rho=0.0)
    assert spans(consensus_incidents(det, ["rz", "isf"], cfg)) == [(5, 5, "up", ["isf"],
                                                                   "single")]
    only_rz = cfg.model_copy(update={"anchors": ["rz"]})
    assert consensus_incidents(det, ["rz", "isf"], only_rz) == []   # the forest's flag alone
    # rz flagged: anchored, at threshold_for(0.1) (one anchor) instead of threshold_for(0.05)
    t1, t2 = threshold_for(0.1), threshold_for(0.05)
    _set(det, "isf", 5, 0.0)
    det.loc[(det["detector"] == "isf") & (det["date"] == DAY0 + pd.Timedelta(days=5)),
            "flag"] = False
    mid = (t1 + t2) / 2 * np.sqrt(2)
    _set(det, "rz", 5, 3.3)
    det.loc[(det["detector"] == "rz") & (det["date"] == DAY0 + pd.Timedelta(days=5)),
            "flag"] = True
    _set(det, "isf", 5, mid - 3.3)
    assert consensus_incidents(det, ["rz", "isf"], cfg) == []        # two anchors: t2
    assert len(consensus_incidents(det, ["rz", "isf"], only_rz)) == 1   # one anchor: t1
    # anchors naming no voter of the run: every voter anchors (as without the setting)
    none_here = cfg.model_copy(update={"anchors": ["prophet_residual"]})
    assert consensus_incidents(det, ["rz", "isf"], none_here) == consensus_incidents(
        det, ["rz", "isf"], cfg)
