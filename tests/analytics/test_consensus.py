"""Consensus on hand-made votes: k of n, tolerance, required detectors, merging, levels."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.config import ConsensusConfig
from analytics.consensus import (
    Votes,
    build_incidents,
    confidence_of,
    consensus_incidents,
    day_share,
    level_name,
    severity_of,
)

DAY0 = pd.Timestamp("2025-03-01")


def votes(flags: dict[str, dict[int, float]], n_days: int = 20, kpi: str = "orders",
          segment: str = "all") -> pd.DataFrame:
    """detections table: detector -> {day index: signed score} flagged; every other day score 0."""
    rows = []
    for det, hits in flags.items():
        for d in range(n_days):
            s = hits.get(d, 0.0)
            rows.append(
                {
                    "date": DAY0 + pd.Timedelta(days=d),
                    "kpi": kpi,
                    "dimension": "overall" if segment == "all" else "channel",
                    "segment": segment,
                    "detector": det,
                    "score": s,
                    "flag": s != 0.0,
                    "direction": "up" if s >= 0 else "down",
                    "expected": 100.0,
                    "actual": 100.0 + 10 * s,
                    "mode": "causal",
                }
            )
    return pd.DataFrame(rows)


def spans(incs):
    return [
        ((i.start - DAY0).days, (i.end - DAY0).days, i.direction, i.detectors, i.level)
        for i in incs
    ]


def test_two_of_three_same_day():
    det = votes({"a": {5: 4.0}, "b": {5: 5.0}, "c": {}})
    incs = build_incidents(det, ["a", "b", "c"], min_votes=2)
    assert spans(incs) == [(5, 5, "up", ["a", "b"], "pairwise")]
    assert incs[0].peak_score == 5.0
    assert incs[0].incident_id == "I-orders-overall-all-2025-03-06-up"
    assert build_incidents(det, ["a", "b", "c"], min_votes=3) == []


def test_tolerance_lets_neighbouring_days_vote():
    det = votes({"a": {5: 4.0}, "b": {6: 4.0}})
    assert build_incidents(det, ["a", "b"], min_votes=2, tolerance=0) == []
    incs = build_incidents(det, ["a", "b"], min_votes=2, tolerance=1)
    # both flagged days are consensus days (each has the other's vote within ±1) and merge
    assert spans(incs) == [(5, 6, "up", ["a", "b"], "pairwise")]
    # ±1 does not reach two days away
    assert (
        build_incidents(votes({"a": {5: 4.0}, "b": {7: 4.0}}), ["a", "b"], min_votes=2, tolerance=1)
        == []
    )


def test_opposite_directions_do_not_vote_together():
    det = votes({"a": {5: 4.0}, "b": {5: -4.0}})
    assert build_incidents(det, ["a", "b"], min_votes=2) == []
    single = build_incidents(det, ["a", "b"], min_votes=1)
    assert [(s[0], s[2], s[3]) for s in spans(single)] == [(5, "down", ["b"]), (5, "up", ["a"])]


def test_required_detector():
    det = votes({"a": {5: 4.0}, "b": {5: 4.0}, "c": {9: 4.0}})
    assert build_incidents(det, ["a", "b", "c"], min_votes=2, required=["c"]) == []
    det2 = votes({"a": {5: 4.0}, "b": {}, "c": {5: 4.0}})
    assert spans(build_incidents(det2, ["a", "b", "c"], min_votes=2, required=["c"])) == [
        (5, 5, "up", ["a", "c"], "pairwise")
    ]
    # the required detector votes like any other: within the tolerance, not only on the day
    det3 = votes({"a": {5: 4.0}, "b": {}, "c": {6: 4.0}})
    assert spans(build_incidents(det3, ["a", "b", "c"], min_votes=2, required=["c"],
                                 tolerance=1)) == [(5, 6, "up", ["a", "c"], "pairwise")]


def test_merge_gap():
    det = votes({"a": {3: 4.0, 5: 4.0, 9: 4.0}})
    assert [s[:2] for s in spans(build_incidents(det, ["a"], merge_gap=1))] == [(3, 5), (9, 9)]
    assert [s[:2] for s in spans(build_incidents(det, ["a"], merge_gap=0))] == [
        (3, 3),
        (5, 5),
        (9, 9),
    ]
    assert [s[:2] for s in spans(build_incidents(det, ["a"], merge_gap=3))] == [(3, 9)]


def test_triple_level_confidence_and_severity():
    det = votes({"a": {5: 4.0}, "b": {5: 8.0}, "c": {5: 13.0}})
    inc = build_incidents(det, ["a", "b", "c"], min_votes=3)[0]
    assert inc.level == "triple" and inc.detectors == ["a", "b", "c"]
    assert inc.confidence == 1.0          # all voted, peak 13 >= 7
    assert inc.severity == "critical"     # peak >= 12
    # actual = 100 + 10 * 13 on that day (all detectors share it); expected 100
    assert inc.actual == pytest.approx(230.0) and inc.magnitude_pct == pytest.approx(130.0)
    assert level_name(4, 5) == "4_of_5"
    assert severity_of(3.6, 2.0) == "low" and severity_of(3.6, 30.0) == "high"


def test_severity_confidence_and_day_share_at_their_boundaries():
    """The documented cut points are inclusive (peak 12 / 7 / 4.5, move 50 / 25 / 10 %), the
    move counts by its size either way and for its share of a day; confidence is half vote
    share, half peak / 7 (capped)."""
    for peak, want in [(12.0, "critical"), (11.99, "high"), (7.0, "high"), (6.99, "medium"),
                       (4.5, "medium"), (4.49, "low")]:
        assert severity_of(peak, 0.0) == want, peak
    for mag, want in [(50.0, "critical"), (49.9, "high"), (25.0, "high"), (24.9, "medium"),
                      (10.0, "medium"), (9.9, "low"), (-50.0, "critical"), (float("nan"), "low")]:
        assert severity_of(0.0, mag) == want, mag
    assert severity_of(0.0, 50.0, share=0.5) == "high"   # half a day's move of 50 % counts 25
    assert confidence_of(1, 2, 3.5) == 0.5
    assert confidence_of(1, 4, 7.0) == 0.625
    assert confidence_of(2, 2, 14.0) == 1.0
    assert day_share(6, 24) == 0.25 and day_share(48, 24) == 1.0
    assert day_share(1, 2) == 0.5 and day_share(5, 1) == 1.0


def test_incident_actual_sums_counts_and_averages_ratios_and_external_kpis():
    """An incident's actual / expected over its periods: the sum for a count KPI, the mean for a
    ratio KPI and for a KPI the catalogue does not know (an external --kpis metric)."""
    for kpi, actual, expected in [("orders", 300.0, 200.0), ("conversion_rate", 150.0, 100.0),
                                  ("cpu_load", 150.0, 100.0)]:
        det = votes({"a": {5: 4.0, 6: 6.0}}, kpi=kpi)
        (inc,) = build_incidents(det, ["a"])
        assert (inc.actual, inc.expected, inc.magnitude_pct) == (actual, expected, 50.0), kpi


def test_incident_actual_and_expected_cover_the_same_periods():
    """A period of the incident without an expected value (a gap day inside it that no voter has
    a baseline for, e.g. count_likelihood on a planned day) is left out of both sides: the
    actual summed over three days against an expected over two read a +40 % move as +90 %."""
    det = votes({"a": {5: 4.0, 7: 4.0}})
    det.loc[det["date"] == DAY0 + pd.Timedelta(days=6), "expected"] = float("nan")
    (inc,) = build_incidents(det, ["a"], merge_gap=1)
    assert (inc.start, inc.end) == (DAY0 + pd.Timedelta(days=5), DAY0 + pd.Timedelta(days=7))
    assert (inc.actual, inc.expected, inc.magnitude_pct) == (280.0, 200.0, 40.0)
    ratio = votes({"a": {5: 4.0, 7: 4.0}}, kpi="conversion_rate")
    ratio.loc[ratio["date"] == DAY0 + pd.Timedelta(days=6), "expected"] = float("nan")
    (inc,) = build_incidents(ratio, ["a"], merge_gap=1)
    assert (inc.actual, inc.expected, inc.magnitude_pct) == (140.0, 100.0, 40.0)


def test_incident_peak_detectors_and_magnitude():
    """The peak is the strongest score in the incident's direction (a down score inside an up
    incident's span is not its peak); the detectors are those that voted within the tolerance,
    also on a neighbouring (muted) day; the move is relative to |expected| (negative levels)."""
    det = votes({"a": {5: 4.0, 6: -9.0, 7: 4.0}})
    up = [i for i in build_incidents(det, ["a"], merge_gap=1) if i.direction == "up"]
    assert [(i.start, i.end, i.peak_score) for i in up] == [
        (DAY0 + pd.Timedelta(days=5), DAY0 + pd.Timedelta(days=7), 4.0)]
    det = votes({"a": {5: 4.0}, "b": {6: 4.0}})
    (inc,) = build_incidents(det, ["a", "b"], min_votes=2, tolerance=1,
                             mute_dates=[DAY0 + pd.Timedelta(days=6)])
    assert (inc.start, inc.end) == (DAY0 + pd.Timedelta(days=5),) * 2
    assert inc.detectors == ["a", "b"] and inc.level == "pairwise"
    neg = votes({"a": {5: 5.0}}, kpi="temperature")
    neg["expected"] = -100.0
    neg["actual"] -= 200.0                                # -50 against an expected -100
    (inc,) = build_incidents(neg, ["a"])
    assert (inc.actual, inc.expected, inc.magnitude_pct) == (-50.0, -100.0, 50.0)


def test_oracle_never_votes_unless_listed_and_mute_calendar():
    det = pd.concat([votes({"a": {5: 4.0}, "b": {5: 4.0}}), votes({"oracle": {5: 9.0, 12: 9.0}})])
    incs = build_incidents(det, ["a", "b"], min_votes=1)
    assert all("oracle" not in i.detectors for i in incs)
    cfg = ConsensusConfig(min_votes=2, mute_calendar=True)
    assert (
        consensus_incidents(Votes(det), ["a", "b"], cfg, mute_dates=[DAY0 + pd.Timedelta(days=5)])
        == []
    )
    assert (
        len(
            consensus_incidents(
                Votes(det),
                ["a", "b"],
                cfg.model_copy(update={"mute_calendar": False}),
                mute_dates=[DAY0 + pd.Timedelta(days=5)],
            )
        )
        == 1
    )


def test_min_votes_capped_to_available_voters():
    """If detectors failed, a rule asking for more votes than voters uses all of them."""
    det = votes({"a": {5: 4.0}})
    assert len(consensus_incidents(det, ["a"], ConsensusConfig(min_votes=2))) == 1


def test_series_are_kept_apart():
    det = pd.concat(
        [votes({"a": {5: 4.0}}, segment="email"), votes({"b": {5: 4.0}}, segment="organic")]
    )
    assert build_incidents(det, ["a", "b"], min_votes=2) == []
    assert sorted(i.segment for i in build_incidents(det, ["a", "b"], min_votes=1)) == [
        "email",
        "organic",
    ]


def test_detectors_of_one_family_count_as_one_vote():
    det = votes({"z": {5: 4.0}, "z_week": {5: 5.0}, "prophet": {}})
    fam = {"z": "rolling_zscore", "z_week": "rolling_zscore", "prophet": "prophet_residual"}
    assert build_incidents(det, ["z", "z_week", "prophet"], min_votes=2, families=fam) == []
    assert (
        len(build_incidents(det, ["z", "z_week", "prophet"], min_votes=2)) == 1
    )  # without families
    det2 = votes({"z": {5: 4.0}, "z_week": {5: 5.0}, "prophet": {6: 4.0}})
    (inc,) = build_incidents(
        det2, ["z", "z_week", "prophet"], min_votes=2, tolerance=1, families=fam
    )
    assert inc.detectors == ["prophet", "z", "z_week"] and inc.level == "pairwise"   # two families
    cfg = ConsensusConfig(min_votes=3, count_by="type")
    # min_votes is capped to the number of families that ran (2 here)
    assert len(consensus_incidents(det2, ["z", "z_week", "prophet"], cfg, families=fam)) == 1


def test_votes_on_calibrated_scores():
    """With vote_sensitivity, an unflagged detector whose calibrated score reaches the vote
    threshold (in the same direction) is a second vote; a period still needs one flag."""
    det = votes({"a": {5: 4.0}, "b": {}, "c": {}})
    det.loc[(det["detector"] == "b") & (det["date"] == DAY0 + pd.Timedelta(days=5)), "score"] = 2.8
    det.loc[(det["detector"] == "c") & (det["date"] == DAY0 + pd.Timedelta(days=9)), "score"] = (
        3.0  # alone
    )
    plain = ConsensusConfig(min_votes=2, tolerance_days=0)
    assert consensus_incidents(det, ["a", "b", "c"], plain) == []
    loose = ConsensusConfig(min_votes=2, tolerance_days=0, vote_sensitivity=1.0)   # threshold 2.54
    incs = consensus_incidents(det, ["a", "b", "c"], loose)
    assert spans(incs) == [(5, 5, "up", ["a", "b"], "pairwise")]
    det.loc[(det["detector"] == "b") & (det["date"] == DAY0 + pd.Timedelta(days=5)), "score"] = -2.8
    assert consensus_incidents(det, ["a", "b", "c"], loose) == []  # the wrong direction is no vote
    # two unflagged votes are no consensus period: a period still needs one flag
    det.loc[(det["detector"] == "b") & (det["date"] == DAY0 + pd.Timedelta(days=9)), "score"] = 2.8
    assert consensus_incidents(det, ["a", "b", "c"], loose) == []


def test_strong_evidence_alone():
    """With solo_sensitivity, a flag whose calibrated score reaches that knob's threshold is an
    incident without a second vote; weaker lone flags still need one; the calendar still mutes."""
    det = votes({"a": {5: 4.6, 12: 3.5}, "b": {}})
    cfg = ConsensusConfig(min_votes=2, tolerance_days=0, solo_sensitivity=0.003)  # threshold 4.15
    assert spans(consensus_incidents(det, ["a", "b"], cfg)) == [(5, 5, "up", ["a"], "single")]
    assert consensus_incidents(det, ["a", "b"], ConsensusConfig(min_votes=2)) == []
    det.loc[det["date"] == DAY0 + pd.Timedelta(days=5), "score"] *= -1  # a down move: same rule
    (inc,) = consensus_incidents(det, ["a", "b"], cfg)
    assert inc.direction == "down"
    assert consensus_incidents(det, ["a", "b"], cfg,
                               mute_dates=[DAY0 + pd.Timedelta(days=5)]) == []
    # a score past the solo threshold that its detector did not flag (muted there) is no flag
    quiet = votes({"a": {}, "b": {}})
    quiet.loc[(quiet["detector"] == "a") & (quiet["date"] == DAY0 + pd.Timedelta(days=8)),
              "score"] = 5.0
    assert consensus_incidents(quiet, ["a", "b"], cfg) == []


def _ratio_case(kpi: str, den: str, days: dict[int, tuple[float, float, float]],
                segment: str = "email", den_segment: str | None = None) -> pd.DataFrame:
    """One detector ``a`` flagging ``kpi`` up on the given days {day: (actual ratio, expected
    ratio, denominator count)} on channel ``segment``; the denominator's own series (never
    flagged) on ``den_segment`` (default the same slice). Other days: ratio 100 as expected,
    denominator 50."""
    rows = []
    for d in range(20):
        act, exp, n = days.get(d, (100.0, 100.0, 50.0))
        day = DAY0 + pd.Timedelta(days=d)
        common = {"date": day, "dimension": "channel", "detector": "a", "direction": "up",
                  "mode": "causal"}
        rows.append({**common, "kpi": kpi, "segment": segment, "score": 5.0 if d in days else 0.0,
                     "flag": d in days, "expected": exp, "actual": act})
        rows.append({**common, "kpi": den, "segment": den_segment or segment, "score": 0.0,
                     "flag": False, "expected": n, "actual": n})
    return pd.DataFrame(rows)


def test_ratio_incident_pools_its_days_by_the_denominator():
    """A multi-day AOV incident is revenue over orders of its days, not the mean of the daily
    AOVs: 10 orders at 200 and 90 at 100 are an AOV of 110 (+10 % on an expected 100), where the
    daily mean read 150 (+50 %, rated critical). The expected side is the expected AOV at the
    same days' orders (100 × 10 + 80 × 90 over 100 = 82). Conversion pools by sessions. Which
    incident is raised, its span, votes and peak do not change."""
    det = _ratio_case("aov", "orders", {5: (200.0, 100.0, 10.0), 6: (100.0, 100.0, 90.0)})
    incs = build_incidents(det, ["a"])
    assert spans(incs) == [(5, 6, "up", ["a"], "single")] and incs[0].peak_score == 5.0
    inc = incs[0]
    assert (inc.actual, inc.expected, inc.magnitude_pct) == (110.0, 100.0, 10.0)
    assert inc.severity == "medium"          # peak 5 (≥ 4.5); the move alone is 10 %
    det = _ratio_case("aov", "orders", {5: (200.0, 100.0, 10.0), 6: (100.0, 80.0, 90.0)})
    (inc,) = build_incidents(det, ["a"])
    assert (inc.actual, inc.expected) == (110.0, 82.0)
    assert inc.magnitude_pct == pytest.approx(34.146, abs=1e-3)
    det = _ratio_case("conversion_rate", "sessions",
                      {5: (0.04, 0.02, 1000.0), 6: (0.01, 0.02, 3000.0)})
    (inc,) = build_incidents(det, ["a"])
    # orders 40 + 30 over 4000 sessions = 1.75 % (the daily mean read 2.5 %, +25 %)
    assert (inc.actual, inc.expected, inc.magnitude_pct) == (0.0175, 0.02, -12.5)


def test_ratio_incident_without_usable_weights_keeps_the_daily_mean():
    """No denominator on the incident's slice (only another slice's), a gap in it, or a
    one-day incident: the mean of the periods' ratios, as before."""
    days = {5: (200.0, 100.0, 10.0), 6: (100.0, 100.0, 90.0)}
    other = _ratio_case("aov", "orders", days, den_segment="organic")
    gap = _ratio_case("aov", "orders", days)
    gap.loc[(gap["kpi"] == "orders") & (gap["date"] == DAY0 + pd.Timedelta(days=6)),
            "actual"] = float("nan")
    for det in (other, gap):
        (inc,) = build_incidents(det, ["a"])
        assert (inc.actual, inc.expected, inc.magnitude_pct) == (150.0, 100.0, 50.0)
    (inc,) = build_incidents(_ratio_case("aov", "orders", {5: (200.0, 100.0, 10.0)}), ["a"])
    assert (inc.actual, inc.expected, inc.magnitude_pct) == (200.0, 100.0, 100.0)


def test_votes_of_a_row_mask_equal_votes_of_the_rows_and_nanmean0_is_numpys():
    """``Votes(det, rows)`` (a split without copying the detections) builds what
    ``Votes(det[rows])`` builds; ``_nanmean0`` gives np.nanmean's bits."""
    import warnings

    import numpy as np

    from analytics.consensus import _nanmean0

    det = pd.concat([votes({"a": {3: 4.0, 4: -5.0}, "b": {4: 6.0}}, kpi="orders"),
                     votes({"b": {7: -4.5}, "c": {2: 5.0}}, kpi="revenue", segment="web")],
                    ignore_index=True).sample(frac=1.0, random_state=3)   # rows out of order
    det.loc[det.index[::7], "score"] = float("nan")
    rows = ((det["detector"] != "a") & (det["kpi"] != "orders")).to_numpy()
    for mask in (rows, ~rows, np.ones(len(det), bool)):
        split, copied = Votes(det, mask), Votes(det[mask])
        assert split.series == copied.series and split.detectors == copied.detectors
        assert split.grid.equals(copied.grid)
        for name in ("score", "expected", "flag", "actual", "up", "down"):
            assert np.array_equal(getattr(split, name), getattr(copied, name), equal_nan=True)
    rng = np.random.default_rng(1)
    for k, n in ((1, 1), (3, 1), (3, 4), (5, 2), (9, 3), (0, 2)):
        a = rng.normal(0, 1e6, (k, n)) * rng.choice([1e-9, 1.0, 1e9], (k, n))
        a[rng.random((k, n)) < 0.3] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN column
            want = np.nanmean(a, axis=0)
        assert np.array_equal(_nanmean0(a.copy()), want, equal_nan=True)


def test_a_scoped_campaign_day_mutes_only_the_series_it_concerns():
    """The consensus muted a planned day on every series whatever the calendar row's scope: an
    email campaign's day dropped a paid_search incident the voters (which mute by scope) had
    flagged (audit 2026-12-05). A calendar frame mutes as the detectors do."""
    day = DAY0 + pd.Timedelta(days=5)
    det = pd.concat([votes({"a": {5: 4.0}, "b": {5: 4.0}}, segment=seg)
                     for seg in ("email", "paid_search")] +
                    [votes({"a": {5: 4.0}, "b": {5: 4.0}})])          # the store (overall)
    cfg = ConsensusConfig(min_votes=2, mute_calendar=True)
    cal = pd.DataFrame({"date": [day], "name": ["spring_email"], "kind": ["campaign"],
                        "scope": ["channel=email"]})
    kept = consensus_incidents(Votes(det), ["a", "b"], cfg, mute_dates=cal)
    assert [(i.dimension, i.segment) for i in kept] == [("channel", "paid_search")]
    store_wide = cal.assign(scope="all")
    assert consensus_incidents(Votes(det), ["a", "b"], cfg, mute_dates=store_wide) == []
    off = cfg.model_copy(update={"mute_calendar": False})
    assert len(consensus_incidents(Votes(det), ["a", "b"], off, mute_dates=cal)) == 3
    # plain dates still mute every series (callers without a calendar's scopes)
    assert consensus_incidents(Votes(det), ["a", "b"], cfg, mute_dates=[day]) == []


def test_onset_records_are_the_days_its_score_rises_in_its_direction():
    """The bound's onsets by cut (``Votes.onset_records``): along a down run every day after the
    first whose score falls further than the day before's, as (day, the day before's score, its
    score) rounded as ``peak_score`` — a stretch at or above any cut between the two starts that
    day, so a day rising again after a gap below the flag threshold (day 9) is one too."""
    det = votes({"oracle": {3: -3.2, 4: -2.5, 5: -4.25001, 6: -9.5, 7: -4.0, 8: -2.0, 9: -5.0,
                            13: 3.5}})
    det.loc[det["score"].abs() < 3, "flag"] = False
    v = Votes(det)
    incs = build_incidents(v, ["oracle"], min_votes=1, merge_gap=2)
    assert spans(incs) == [(3, 9, "down", ["oracle"], "single"), (13, 13, "up", ["oracle"],
                                                                    "single")]
    rec = v.onset_records(incs, "oracle")
    day = [DAY0 + pd.Timedelta(days=d) for d in range(14)]
    assert rec[incs[0].incident_id] == [(day[5], 2.5, 4.25), (day[6], 4.25, 9.5),
                                        (day[9], 2.0, 5.0)]
    assert max(r[2] for r in rec[incs[0].incident_id]) == incs[0].peak_score
    assert rec[incs[1].incident_id] == []
    assert v.onset_records(incs, "nobody") == {}
