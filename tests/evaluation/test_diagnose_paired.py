"""bench/diagnose_detect.py ``paired``: a variant's change from the shipped config over the same
worlds, with the bootstrap interval a stage rule should be read against (hand-made scorecards)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import diagnose_detect  # noqa: E402


def _card(f1: float, p: float, r: float, ratio: float | None) -> dict:
    return {"strict": {"consensus": {"f1": f1, "precision": p, "recall": r},
                       "oracle_equal_fp": {"ratio": ratio}}}


def test_paired_change_interval_and_changed_worlds():
    base = [_card(0.8, 0.9, 0.7, 0.9), _card(0.6, 0.7, 0.5, 0.8), _card(0.9, 0.9, 0.9, 1.0),
            _card(0.7, 0.8, 0.6, None)]
    # F1 up by 0.04 on two worlds and unchanged on two; ratio down by 0.1 on one world only
    other = [_card(0.84, 0.9, 0.7, 0.9), _card(0.64, 0.7, 0.5, 0.7), _card(0.9, 0.9, 0.9, 1.0),
             _card(0.7, 0.8, 0.6, 0.9)]
    out = diagnose_detect.paired(base, other, resamples=2000)
    f1 = out["f1"]
    assert f1["diff"] == pytest.approx(0.02)
    assert f1["changed"] == 2 and f1["n"] == 4
    assert 0.0 <= f1["ci_low"] <= f1["diff"] <= f1["ci_high"] <= 0.04 + 1e-12
    ratio = out["ratio"]  # the world without a ratio in the base is left out of the pairs
    assert ratio["n"] == 3 and ratio["changed"] == 1
    assert ratio["diff"] == pytest.approx(-0.1 / 3)
    assert ratio["ci_low"] == pytest.approx(-0.1) and ratio["ci_high"] == pytest.approx(0.0)
    assert out["precision"]["changed"] == 0 and out["precision"]["diff"] == 0.0


def test_paired_refuses_unequal_pools():
    with pytest.raises(ValueError, match="2 scorecards against 1"):
        diagnose_detect.paired([_card(1, 1, 1, 1)] * 2, [_card(1, 1, 1, 1)])


def test_paired_json_mode_prints_each_variant_against_the_first(tmp_path, capsys):
    f = tmp_path / "cards.json"
    f.write_text(json.dumps({"shipped": [_card(0.5, 0.5, 0.5, 0.9)] * 3,
                             "x=1": [_card(0.6, 0.5, 0.5, 0.9)] * 3}))
    assert diagnose_detect.main(["--paired", str(f)]) == 0
    text = capsys.readouterr().out
    assert "shipped -> x=1" in text
    assert "f1        0.5000 -> 0.6000  +0.1000 (+0.1000 .. +0.1000)  worlds changed 3/3" in text


def test_paired_json_mode_refuses_a_missing_file(tmp_path, capsys):
    """A --paired file that does not exist: one line naming it, exit 2 (checked up front)."""
    with pytest.raises(SystemExit) as exc:
        diagnose_detect.main(["--paired", str(tmp_path / "cards.json")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "cards.json" in err and "\n" not in err


@pytest.mark.parametrize("text,says", [
    ('{"shipped": []}', "nothing to pair"),
    ('{"shipped": [{"strict": {}}], "x=1": [{"strict": {}}]}', "not a diagnose_detect --json"),
    ('{"shipped": [1, 2], "x=1": [1]}', "2 scorecards against 1"),
    ("not json", "not a diagnose_detect --json"),
])
def test_paired_json_mode_refuses_bad_files(tmp_path, text, says):
    """A missing or malformed --paired file is bad input (InputError: one line, exit 2)."""
    from shocklab.errors import InputError

    f = tmp_path / "cards.json"
    f.write_text(text)
    with pytest.raises(InputError, match=says):
        diagnose_detect.main(["--paired", str(f)])


def test_equal_fp_gap_counts_one_sided_events_by_scope_and_lone_matcher():
    """Two worlds: the oracle-only events are counted by scope kind and by the voters whose own
    incidents matched them (the oracle and the consensus are not voters); consensus-only summed."""
    def ev(eid, scope, by):
        return {"event_id": eid, "scope_kind": scope, "detected_by": by}
    cards = [
        {"strict": {"oracle_equal_fp": {"oracle_only": ["E1", "E2"], "consensus_only": ["E3"]}},
         "event_detail": [ev("E1", "channel_country", {"oracle": 1, "count_likelihood": 2}),
                          ev("E2", "country", {"oracle": 0}),
                          ev("E3", "overall", {"consensus": 0, "rolling_zscore": 0})]},
        {"strict": {"oracle_equal_fp": {"oracle_only": ["E5"], "consensus_only": []}},
         "event_detail": [ev("E5", "channel_country",
                             {"oracle": 2, "rolling_zscore": 1, "count_likelihood": 1})]},
    ]
    g = diagnose_detect.equal_fp_gap(cards)
    assert g["oracle_only"] == 3 and g["consensus_only"] == 1
    assert g["by_scope"] == {"channel_country": 2, "country": 1}
    assert g["matched_by"] == {("count_likelihood",): 1, (): 1,
                               ("count_likelihood", "rolling_zscore"): 1}


def test_summary_of_shock_free_worlds_prints_no_f1_instead_of_failing(capsys):
    """A shock-free world (``world.shocks=[0,0]``, the knob's check) has no F1: its scorecard says
    None, and the summary printed a crash (exit 3) after the false-alert line; now '-'."""
    card = {"strict": {"consensus": {"recall": None, "precision": 0.0, "f1": None, "fp": 12,
                                     "incidents": 12},
                       "oracle_equal_fp": {}, "detectors": {"oracle": {"recall": None}},
                       "oracle_best": None},
            "events": {"unexpected": 0, "unwatched": 0}, "event_detail": [],
            "false_alerts": {"consensus": 0.008, "detectors": {"rolling_zscore": 0.076}}}
    results = [{"card": card, "fps": [], "events": [], "seconds": 1.0, "series": 400,
                "kinds": [], "kinds_base": [], "why": [], "gap": []}] * 2
    diagnose_detect.summarize("shipped", results, show_events=True)
    out = capsys.readouterr().out
    assert "per seed F1: - -" in out
    assert "FP/world 12.0" in out and "rolling_zscore 0.076" in out


def test_summary_counts_the_events_the_bound_lost(capsys):
    """The pool's line counts the scorecards' ``oracle_equal_fp.seen_at_cut`` (events the
    consensus found that the bound's null scored at its cut: a defect of the bound to trace),
    beside the worlds above 1; a scorecard without it counts 0. The one-threshold bound's ratio
    (``ratio_one_cut``) and the bound at 0 FP are read beside them (older scorecards: absent)."""
    def card(ratio, seen):
        oe = {"oracle_recall": 0.8, "ratio": ratio}
        if seen is not None:
            oe["seen_at_cut"] = seen
            oe.update(ratio_one_cut=ratio + 0.1, oracle_recall_at_zero_fp=0.7)
        return {"strict": {"consensus": {"recall": 0.8, "precision": 0.9, "f1": 0.85, "fp": 3,
                                         "incidents": 30},
                           "oracle_equal_fp": oe, "detectors": {"oracle": {"recall": 0.9}},
                           "oracle_best": None},
                "events": {"unexpected": 10, "unwatched": 0}, "event_detail": [],
                "false_alerts": {"consensus": 0.01, "detectors": {}}}
    results = [{"card": card(r, s), "fps": [], "events": [], "seconds": 1.0, "series": 400,
                "kinds": [], "kinds_base": [], "why": [], "gap": []}
               for r, s in ((1.1, 0), (0.9, 2), (1.0, None))]
    diagnose_detect.summarize("shipped", results, show_events=False)
    out = capsys.readouterr().out
    assert "above 1 on 1; events the bound lost 2; one cut 1.100, above 1 on 1)" in out
    assert "oracle@FP 0.800 (@0FP 0.700)" in out


def test_paired_over_seeds_averages_each_worlds_change_and_shows_each_seed():
    """``--seeds``: a variant is paired with the shipped config under the same seed; a world's
    change is its mean over the seeds, and each seed's own mean change is listed (its spread is
    what a single-seed screen would have read)."""
    base = [[_card(0.8, 0.9, 0.7, 0.9), _card(0.6, 0.7, 0.5, 0.8), _card(0.9, 0.9, 0.9, None)],
            [_card(0.7, 0.9, 0.7, 0.9), _card(0.6, 0.7, 0.5, 0.8), _card(0.9, 0.9, 0.9, 1.0)]]
    other = [[_card(0.84, 0.9, 0.7, 0.9), _card(0.6, 0.7, 0.5, 0.8), _card(0.9, 0.9, 0.9, 1.0)],
             [_card(0.7, 0.9, 0.7, 0.9), _card(0.58, 0.7, 0.5, 0.8), _card(0.9, 0.9, 0.9, 0.9)]]
    out = diagnose_detect.paired_seeds(base, other, resamples=2000)
    f1 = out["f1"]
    assert f1["per_seed"] == pytest.approx([0.04 / 3, -0.02 / 3])
    assert f1["diff"] == pytest.approx((0.04 - 0.02) / 6)
    assert f1["n"] == 3 and f1["changed"] == 2          # worlds 1 and 2 moved under some seed
    assert f1["ci_low"] <= f1["diff"] <= f1["ci_high"]
    ratio = out["ratio"]      # world 3 has no ratio under seed 0: left out under every seed
    assert ratio["n"] == 2 and ratio["diff"] == 0.0 and ratio["per_seed"] == [0.0, 0.0]
    diagnose_detect.print_paired("x=1 (seeds 0-1)", out)
    with pytest.raises(ValueError, match="2 seeds against 1"):
        diagnose_detect.paired_seeds(base, other[:1])


def test_seeds_without_a_variant_is_refused(tmp_path, capsys):
    """``--seeds 3`` pairs variants with the shipped config: alone it would run three seeds of
    the shipped config and print no pairing — one line, exit 2, nothing analysed."""
    (tmp_path / "w").mkdir()
    with pytest.raises(SystemExit) as exc:
        diagnose_detect.main(["--seeds", "3", str(tmp_path / "w")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and "--seeds" in err and "\n" not in err


def test_why_prints_each_voters_power_by_the_oracles_score(capsys):
    """``--why``'s power table: per band of the oracle's best score, each voter's median best /
    the oracle's (product_watch and the oracle left out; a voter with no finite score on an
    event is left out of that event; a band without an event is not printed)."""
    def row(orc, cl, rz, why="score"):
        best = {"oracle": (orc, None), "count_likelihood": (cl, None),
                "rolling_zscore": (rz, None), "product_watch": (1.0, None)}
        return {"event_id": "E01", "type": "stockout", "scope_kind": "channel", "why": why,
                "best": best, "oracle_hit": True}
    rows = [row(3.5, 3.15, 3.5), row(3.0, 2.7, -np.inf), row(3.9, 3.9, 1.95),
            row(20.0, 10.0, 5.0, why="hit")]
    diagnose_detect.print_why([{"why": rows}])
    out = capsys.readouterr().out
    # 3-4: count_likelihood 0.9, 0.9, 1.0 -> 0.90; rolling_zscore 1.0, 0.5 (the -inf left out)
    assert "oracle 3-4 n=3   count_likelihood 0.90  rolling_zscore 0.75" in out
    assert "oracle 10-inf n=1   count_likelihood 0.50  rolling_zscore 0.25" in out
    assert "oracle 4-6" not in out and "product_watch 1" not in out


def _det_rows(detector: str, segment: str, scores: list[float]) -> list[dict]:
    days = np.datetime64("2025-01-01") + np.arange(len(scores))
    return [{"detector": detector, "kpi": "orders", "dimension": "channel", "segment": segment,
             "date": d, "score": s, "expected": 10.0, "actual": 10.0, "flag": False}
            for d, s in zip(days, scores, strict=True)]


def test_stand_in_puts_the_oracles_scores_in_the_voters_place():
    """--stand-in: the voter's rows become the oracle's on the voter's series, flagged at the
    voter's threshold, silent through the voter's own warm-up; other voters and the oracle's own
    rows untouched."""
    import pandas as pd

    det = pd.DataFrame(
        _det_rows("count_likelihood", "a", [0.0, 0.0, 1.0, 2.0, 0.5])    # warm-up: 2 zeros
        + _det_rows("count_likelihood", "b", [np.nan, 1.0, 1.0, 1.0, 1.0])
        + _det_rows("oracle", "a", [5.0, -4.0, 3.5, -3.4, 2.0])
        + _det_rows("oracle", "b", [9.0, -3.3, 0.1, 3.3, -9.0])
        + _det_rows("oracle", "c", [9.0, 9.0, 9.0, 9.0, 9.0])          # not the voter's series
        + _det_rows("rolling_zscore", "a", [4.0, 4.0, 4.0, 4.0, 4.0]))
    det.loc[det["detector"] == "rolling_zscore", "flag"] = True
    out = diagnose_detect.stand_in(det, "count_likelihood", 3.4)
    cl = out[out["detector"] == "count_likelihood"].sort_values(["segment", "date"])
    assert sorted(cl["segment"].unique()) == ["a", "b"]
    np.testing.assert_allclose(cl["score"].to_numpy(),
                               [0.0, 0.0, 3.5, -3.4, 2.0, np.nan, -3.3, 0.1, 3.3, -9.0])
    assert cl["flag"].tolist() == [False, False, True, True, False,
                                   False, False, False, False, True]
    for name in ("oracle", "rolling_zscore"):   # untouched
        pd.testing.assert_frame_equal(out[out["detector"] == name].reset_index(drop=True),
                                      det[det["detector"] == name].reset_index(drop=True))
    down = diagnose_detect.stand_in(det, "count_likelihood", 3.0, "down")
    flagged = down[(down["detector"] == "count_likelihood") & down["flag"]]
    assert (flagged["score"] < 0).all() and len(flagged) == 3   # -3.4, -3.3, -9.0


@pytest.mark.parametrize("voter", ["oracle", "prophet_residual"])
def test_stand_in_refuses_the_oracle_and_a_voter_without_scores(voter):
    import pandas as pd

    from shocklab.errors import InputError

    det = pd.DataFrame(_det_rows("count_likelihood", "a", [1.0]) + _det_rows("oracle", "a", [1.0]))
    with pytest.raises(InputError, match=f"--stand-in {voter}: .*voters with scores: "
                                         "count_likelihood"):
        diagnose_detect.stand_in(det, voter, 3.0)


def test_stand_ins_replace_each_named_voter_at_its_own_threshold():
    """--stand-in count_likelihood,rolling_zscore: both voters' rows become the oracle's, each
    flagged at its own threshold (an explicit one, or its sensitivity's); a name twice, an empty
    name or a voter without scores is bad input."""
    import pandas as pd

    from analytics.config import load_analysis_config
    from shocklab.errors import InputError

    det = pd.DataFrame(
        _det_rows("count_likelihood", "a", [1.0, 1.0, 1.0])
        + _det_rows("rolling_zscore", "a", [1.0, 1.0, 1.0])
        + _det_rows("isolation_forest", "a", [1.0, 1.0, 1.0])
        + _det_rows("oracle", "a", [3.0, 4.0, 9.0]))
    cfg = load_analysis_config(None, ["detectors.rolling_zscore.threshold=3.5"])
    out = diagnose_detect.stand_ins(det, "count_likelihood, rolling_zscore", cfg)
    for name, flags in (("count_likelihood", [False, True, True]),     # sensitivity 0.1: 3.26
                        ("rolling_zscore", [False, True, True])):
        got = out[out["detector"] == name].sort_values("date")
        np.testing.assert_allclose(got["score"].to_numpy(), [3.0, 4.0, 9.0])
        assert got["flag"].tolist() == flags
    cfg = load_analysis_config(None, ["detectors.rolling_zscore.threshold=5"])
    out = diagnose_detect.stand_ins(det, "count_likelihood,rolling_zscore", cfg)
    assert out[out["detector"] == "rolling_zscore"].sort_values("date")["flag"].tolist() == [
        False, False, True]
    pd.testing.assert_frame_equal(out[out["detector"] == "isolation_forest"].reset_index(drop=True),
                                  det[det["detector"] == "isolation_forest"].reset_index(drop=True))
    for bad in ("count_likelihood,count_likelihood", "count_likelihood,", "prophet_residual"):
        with pytest.raises(InputError, match="--stand-in"):
            diagnose_detect.stand_ins(det, bad, cfg)
