"""Affiliation metrics against their definition (brute-force integration), point-adjusted F1 and
the per-series scorecard section."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation import ts_metrics as tm


def _brute(pred, gt, trange, step=0.002):
    """The paper's definitions integrated on a fine grid (slow, independent of the closed forms)."""
    zones = tm._zones(gt, trange)
    precs, recs = [], []
    for (j0, j1), (e0, e1) in zip(gt, zones, strict=True):
        xs_e = np.arange(e0, e1, step) + step / 2                       # X uniform on the zone
        dist_xj = np.maximum(0, np.maximum(j0 - xs_e, xs_e - j1))
        p_in = tm._clip(pred, (e0, e1))
        xs = (
            np.concatenate([np.arange(s, e, step) + step / 2 for s, e in p_in])
            if p_in
            else np.array([])
        )
        if xs.size:
            d = np.maximum(0, np.maximum(j0 - xs, xs - j1))
            precs.append(np.mean([(dist_xj >= di).mean() if di > 0 else 1.0 for di in d]))
        ys = np.arange(j0, j1, step) + step / 2
        if not p_in:
            recs.append(0.0)
            continue
        dy = tm._dist_to(ys, p_in)
        recs.append(
            np.mean([(np.abs(xs_e - y) >= di).mean() for y, di in zip(ys, dy, strict=True)])
        )
    return (np.mean(precs) if precs else None), np.mean(recs)


@pytest.mark.parametrize("pred,gt,trange", [
    ([(2.0, 3.0)], [(2.0, 5.0)], (0.0, 10.0)),
    ([(0.0, 1.0), (6.0, 7.5)], [(2.0, 5.0)], (0.0, 10.0)),
    ([(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)], [(2.0, 5.5)], (0.0, 8.0)),
    ([(1.0, 1.5), (8.0, 9.0)], [(2.0, 3.0), (6.0, 7.0)], (0.0, 10.0)),
    ([(9.0, 10.0)], [(1.0, 2.0), (4.0, 5.0)], (0.0, 10.0)),
])
def test_affiliation_matches_definition(pred, gt, trange):
    got = tm.affiliation(pred, gt, trange)
    p, r = _brute(pred, gt, trange)
    assert got["recall"] == pytest.approx(r, abs=3e-3)
    if p is None:
        assert got["precision"] is None
    else:
        assert got["precision"] == pytest.approx(p, abs=3e-3)


def test_affiliation_extremes():
    gt = [(20.0, 30.0), (60.0, 65.0)]
    perfect = tm.affiliation(gt, gt, (0.0, 100.0))
    assert perfect == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    none = tm.affiliation([], gt, (0.0, 100.0))
    assert none["precision"] is None and none["recall"] == 0.0 and none["f1"] == 0.0
    # one zone caught just before its window, the other missed: recall below 0.5 (the missed zone
    # counts 0), precision high (the prediction is close to its window)
    partial = tm.affiliation([(18.0, 19.0)], gt, (0.0, 100.0))
    assert 0.3 < partial["recall"] < 0.5 and partial["precision"] == pytest.approx(32 / 45)
    # a prediction far from both windows is worth little
    far = tm.affiliation([(95.0, 96.0)], gt, (0.0, 100.0))
    assert far["precision"] < 0.1


def test_point_adjusted_f1_inflates_and_random_baseline():
    label = np.zeros(100, dtype=bool)
    label[40:60] = True
    pred = np.zeros(100, dtype=bool)
    pred[50] = True  # one point in the window: the whole window counts
    assert tm.point_adjusted_f1(pred, label) == 1.0
    assert tm.point_adjusted_f1(np.zeros(100, bool), label) == 0.0
    rnd = tm.random_point_adjusted_f1(5, label, seed=1)
    assert 0.3 < rnd < 1.0  # chance alone scores well under point adjustment
    assert rnd == tm.random_point_adjusted_f1(5, label, seed=1)   # seeded: same draws


def test_score_series_sections():
    grid = pd.date_range("2025-01-01", periods=300, freq="h").to_numpy()
    raw = np.delete(grid, [10, 11, 150])               # the file had gaps
    slots = np.delete(np.arange(300), [10, 11, 150])
    wins = [(pd.Timestamp(grid[200]), pd.Timestamp(grid[210]))]
    dets = {
        "good": [(grid[201], grid[203])],
        "noisy": [(grid[100], grid[100]), (grid[205], grid[206])],
        "none": [],
    }
    out = tm.score_series(grid, raw, slots, wins, dets, seed=0)
    assert (
        out["windows"] == 1 and out["rows"] == 297 and out["nab_null"]["standard"]["score"] == -1.0
    )
    good, noisy, none = (out["detectors"][k] for k in ("good", "noisy", "none"))
    assert good["nab"]["standard"]["normalised"] > noisy["nab"]["standard"]["normalised"] > 0
    assert none["nab"]["standard"]["normalised"] == 0.0
    assert good["window_event"] == {
        "windows": 1,
        "detected": 1,
        "incidents": 1,
        "true_incidents": 1,
        "recall": 1.0,
        "precision": 1.0,
        "f1": 1.0,
    }
    assert noisy["window_event"]["precision"] == 0.5
    assert good["affiliation"]["precision"] == 1.0 and good["affiliation"]["recall"] > 0.8
    assert good["point_adjusted_f1"]["f1"] == 1.0 and good["point_adjusted_f1"]["random_f1"] < 1.0
    assert "NAB std" in tm.format_series_table({**out, "kpi": "value"})


def test_score_series_labels_out_of_order_or_overlapping():
    """Labels listed newest first (a CSV or JSON list of --events) or overlapping: affiliation
    and NAB as for the same periods in order (audit-metrics; before, a window's affiliation zone
    was cut at the wrong neighbour: recall 0.4375 -> 0.359 here)."""
    grid = pd.date_range("2025-01-01", periods=200, freq="h").to_numpy()
    t = lambda i: pd.Timestamp(grid[i])  # noqa: E731
    dets = {"one": [(grid[60], grid[60])]}
    in_order = tm.score_series(grid, grid, np.arange(200), [(t(50), t(59)), (t(100), t(119))],
                               dets)["detectors"]["one"]
    # by hand: zones [0, 80) and [80, 200); the prediction [60, 61) sits in the first, 0 to 1
    # past its window: precision (70 - 2 * 0.5) / 80; recall ((2 * 55 - 40) / 80 + 0) / 2
    assert in_order["affiliation"]["precision"] == pytest.approx(69 / 80, abs=1e-12)
    assert in_order["affiliation"]["recall"] == pytest.approx(0.4375, abs=1e-12)
    reversed_ = tm.score_series(grid, grid, np.arange(200), [(t(100), t(119)), (t(50), t(59))],
                                dets)["detectors"]["one"]
    assert reversed_["affiliation"] == in_order["affiliation"]
    assert reversed_["nab"] == in_order["nab"]
    # two overlapping labels are one labelled stretch for affiliation and NAB
    over = tm.score_series(grid, grid, np.arange(200),
                           [(t(50), t(55)), (t(52), t(59)), (t(100), t(119))], dets)
    assert over["detectors"]["one"]["affiliation"] == in_order["affiliation"]
    assert over["detectors"]["one"]["nab"] == in_order["nab"] and over["nab_windows"] == 2


# VUS-PR of the authors' reference implementation (TheDatumOrg/VUS, package vus 0.0.6,
# metricor().RangeAUC_volume_opt(labels, score, window)[5]) on the cases of vus_cases.py,
# computed once with that package (it is not a dependency: it pulls TensorFlow).
VUS_REFERENCE = {
    "noisy_separable": 1.0,
    "random": 0.24557212783463303,
    "binary_before_range": 0.1663760314731108,
    "ties": 0.9480995684103489,
    "ranges_at_edges": 0.6985799725459899,
    "ranges_merge": 1.0,
    "weak_signal": 0.4701090264877511,
    "no_buffer": 0.5754485161409868,
}


@pytest.mark.parametrize("name", sorted(VUS_REFERENCE))
def test_vus_pr_matches_reference_implementation(name):
    from tests.evaluation.vus_cases import CASES

    label, score, window = CASES()[name]
    assert tm.vus_pr(label, score, window) == pytest.approx(VUS_REFERENCE[name], abs=1e-12)


def test_vus_pr_behaviour():
    from tests.evaluation.vus_cases import CASES

    label, score, _ = CASES()["weak_signal"]
    # a buffer rewards a detection just before a range (the paper's motivation) …
    early = np.zeros_like(label)
    early[97:100] = 1.0
    assert tm.vus_pr(label, early, 20) > tm.vus_pr(label, early, 0)
    # … a stronger signal ranks higher, a monotone transform of the score changes nothing
    assert tm.vus_pr(label, score + label, 20) > tm.vus_pr(label, score, 20)
    assert tm.vus_pr(label, np.exp(score), 20) == pytest.approx(tm.vus_pr(label, score, 20))
    assert np.isnan(tm.vus_pr(np.zeros(50), np.arange(50.0), 5))


def test_score_series_vus_pr_per_detector():
    grid = pd.date_range("2025-01-01", periods=300, freq="h").to_numpy()
    wins = [(pd.Timestamp(grid[200]), pd.Timestamp(grid[210]))]
    good = np.zeros(300)
    good[199:212] = 5.0
    out = tm.score_series(grid, grid, np.arange(300), wins, {"good": [], "plain": []},
                          scores={"good": good}, vus_buffer=24)
    assert out["detectors"]["good"]["vus_pr"] > 0.9 and out["detectors"]["plain"]["vus_pr"] is None
    assert "VUS-PR" in tm.format_series_table({**out, "kpi": "value"})


# Affiliation precision / recall of the authors' code (vus 0.0.6 ships it:
# vus.affiliation.metrics.pr_from_events) for the top-10 % points of the same cases.
AFFILIATION_REFERENCE = {
    "random": (0.5508501509613857, 0.9910474601408972),
    "ranges_at_edges": (0.6824025192183013, 0.9987593776048902),
    "ranges_merge": (0.6334133489461358, 1.0),
    "weak_signal": (0.5236708459374166, 0.9469855394883204),
}


@pytest.mark.parametrize("name", sorted(AFFILIATION_REFERENCE))
def test_affiliation_matches_reference_implementation(name):
    from tests.evaluation.vus_cases import CASES

    label, score, _ = CASES()[name]
    pred = score > np.quantile(score, 0.9)
    out = tm.affiliation(tm.runs(pred), tm.runs(label > 0), (0.0, float(len(label))))
    p, r = AFFILIATION_REFERENCE[name]
    assert out["precision"] == pytest.approx(p, abs=1e-10)
    assert out["recall"] == pytest.approx(r, abs=1e-10)


def test_a_label_given_as_a_day_covers_that_day_on_sub_daily_data(tmp_path):
    """``--events`` CSV ``2025-01-30,2025-01-30`` on an hourly file: the scorecard's recall read
    it as the whole day (the spike at 09:00 found), the benchmark metrics as its first hour only
    (window recall 0, the detection a NAB false positive: normalised −33). Now both read the day
    (audit-metrics)."""
    import json

    import run_analysis

    from shocklab.cli import run_cli

    rng = np.random.default_rng(0)
    t = pd.date_range("2025-01-01", periods=24 * 40, freq="h")
    v = 100 + 10 * np.sin(2 * np.pi * np.asarray(t.hour) / 24) + rng.normal(0, 2, len(t))
    v[np.asarray((t >= "2025-01-30 09:00") & (t <= "2025-01-30 12:00"))] += 80
    data, labels = tmp_path / "hourly.csv", tmp_path / "labels.csv"
    pd.DataFrame({"timestamp": t, "value": v}).to_csv(data, index=False)
    labels.write_text("start,end\n2025-01-30,2025-01-30\n")
    out = tmp_path / "run"
    assert run_cli(run_analysis.main, ["--kpis", str(data), "--events", str(labels), "--out",
                                       str(out), "--quiet"]) == 0
    card = json.loads((out / "scorecard.json").read_text())
    assert card["headline"]["recall"] == 1.0
    cons = card["series_metrics"]["detectors"]["consensus"]
    assert cons["window_event"]["recall"] == 1.0
    assert cons["window_event"]["f1"] == pytest.approx(card["headline"]["f1"], abs=1e-4)
    assert cons["nab"]["standard"]["detected_windows"] == 1
    assert cons["nab"]["standard"]["normalised"] > 0
    # the rule itself: a date end covers its day; NAB's windows and timed ends are kept
    day = tm.label_windows([{"start": "2025-01-30T00:00:00", "end": "2025-01-30T00:00:00"},
                            {"start": "2025-01-02", "end": "2025-01-03", "expected": True},
                            {"start": "2025-01-05T00:00:00", "end": "2025-01-06T00:00:00",
                             "type": "nab_window"},
                            {"start": "2025-01-07T10:00", "end": "2025-01-07T13:00"}])
    assert day == [(pd.Timestamp("2025-01-30"), pd.Timestamp("2025-01-30 23:59:59.999999")),
                   (pd.Timestamp("2025-01-05"), pd.Timestamp("2025-01-06")),
                   (pd.Timestamp("2025-01-07 10:00"), pd.Timestamp("2025-01-07 13:00"))]


def test_random_point_adjusted_baseline_of_a_detector_that_flags_nothing():
    """The chance baseline flags as many periods as the detector: none, so 0 (it flagged one,
    and a detector with no incident showed PA-F1 0 beside a random one above it; audit-metrics)."""
    label = np.zeros(20, dtype=bool)
    label[5:15] = True
    assert tm.random_point_adjusted_f1(0, label, seed=1) == 0.0
    grid = pd.date_range("2025-01-01", periods=20, freq="D").to_numpy()
    out = tm.score_series(grid, grid, np.arange(20), [(grid[5], grid[14])], {"none": []})
    assert out["detectors"]["none"]["point_adjusted_f1"] == {"f1": 0.0, "random_f1": 0.0}


def test_a_prediction_ending_on_a_zone_boundary_is_not_in_the_next_zone():
    """Half-open intervals: [4, 5) ends where the second window's zone [5, 10) begins, so that
    zone has no prediction (precision undefined there, recall 0), not an empty one (0 / 0)."""
    gt = [(2.0, 3.0), (7.0, 8.0)]
    got = tm.affiliation([(4.0, 5.0)], gt, (0.0, 10.0))
    alone = tm.affiliation([(4.0, 5.0)], gt[:1], (0.0, 5.0))   # the first zone on its own
    assert got["precision"] == pytest.approx(alone["precision"])
    assert got["recall"] == pytest.approx(alone["recall"] / 2)


def test_window_event_scores_edges():
    # an incident starting on a window's last period is on it (inclusive spans)
    assert tm.window_event_scores([(5, 7)], [(3, 5)])["detected"] == 1
    assert tm.window_event_scores([(6, 7)], [(3, 5)])["detected"] == 0
    # no incident: no false alarm (precision 1), nothing found (recall 0, F1 0)
    assert tm.window_event_scores([], [(3, 5)]) == {
        "windows": 1, "detected": 0, "incidents": 0, "true_incidents": 0,
        "recall": 0.0, "precision": 1.0, "f1": 0.0,
    }
    # no window: recall and F1 undefined, every incident false
    none = tm.window_event_scores([(1, 2)], [])
    assert (none["recall"], none["precision"], none["f1"]) == (None, 0.0, None)


def test_an_incident_between_grid_points_flags_the_next_period():
    grid = pd.date_range("2025-01-01", periods=30, freq="D").to_numpy()
    odd = pd.Timestamp("2025-01-10 06:00")
    out = tm.score_series(grid, grid, np.arange(30), [], {"d": [(odd, odd)]})
    assert out["detectors"]["d"]["flagged_periods"] == 1
    assert out["detectors"]["d"]["incidents"] == 1


@pytest.mark.parametrize(("freq", "n", "ppd"), [
    ("h", 2, 24), ("h", 48, 24), ("5min", 3, 288), ("D", 2, 1), ("W", 5, 1), ("D", 1, 1),
    ("D", 0, 1)])
def test_periods_per_day_is_read_from_the_grids_median_step(freq, n, ppd):
    """Two rows are enough to read the step; one (or none) is a daily grid, not an error
    (the len guard's mutant ts31 survived, audit-mutrest)."""
    grid = pd.date_range("2025-01-01", periods=n, freq=freq).to_numpy("datetime64[ns]")
    assert tm.periods_per_day(grid) == ppd


def test_vus_buffer_is_a_week_of_days_or_a_day_of_periods_capped():
    assert [tm.vus_buffer_for(p) for p in (1, 24, 256, 288, 1440)] == [7, 24, 256, 256, 256]
    # and at most a quarter of the series: NAB's shortest file (1,243 periods) keeps its day
    assert [tm.vus_buffer_for(288, n) for n in (40, 1024, 1243, 4032)] == [10, 256, 256, 256]
    assert [tm.vus_buffer_for(1, n) for n in (20, 28, 365)] == [5, 7, 7]


def test_vus_pr_of_a_short_file_is_not_near_one_for_any_score():
    """A 40-period file of 5-minute data had a buffer of 256 periods: every period was labelled
    at the widest buffers, so all-zero scores got VUS-PR 0.885 (a detector without incidents
    0.95). With the buffer a quarter of the series they score near the labels' share."""
    grid = pd.date_range("2014-04-10 14:10", periods=40, freq="5min").to_numpy("datetime64[ns]")
    wins = [(pd.Timestamp("2014-04-10 16:15"), pd.Timestamp("2014-04-10 16:40"))]
    zeros = {"consensus": np.zeros(40)}
    buf = tm.vus_buffer_for(tm.periods_per_day(grid), len(grid))
    card = tm.score_series(grid, grid, None, wins, {"consensus": []}, scores=zeros,
                           vus_buffer=buf)
    label_share = 6 / 40
    assert buf == 10
    assert card["detectors"]["consensus"]["vus_pr"] < 2 * label_share


def test_a_short_files_run_records_the_capped_vus_buffer(tmp_path):
    import json

    import run_analysis

    from shocklab.cli import run_cli

    t = pd.date_range("2014-04-10 14:10", periods=40, freq="5min")
    v = 75 + np.random.default_rng(1).normal(0, 2, 40)
    data, labels = tmp_path / "short40.csv", tmp_path / "labels.csv"
    pd.DataFrame({"timestamp": t, "value": v.round(3)}).to_csv(data, index=False)
    labels.write_text("start,end\n2014-04-10 16:15,2014-04-10 16:40\n")
    out = tmp_path / "run"
    assert run_cli(run_analysis.main, ["--kpis", str(data), "--events", str(labels), "--out",
                                       str(out), "--quiet"]) == 0
    sm = json.loads((out / "scorecard.json").read_text())["series_metrics"]
    assert sm["vus_buffer"] == 10   # was 256: the widest buffers labelled every period


def test_merged_ranges_follow_the_reference_rule():
    """``new_sequence`` of the reference: ranges widened by w // 2 merge unless the first's end
    is strictly before the next one's start (touching ranges are one)."""
    assert tm._merged_ranges([(2, 3), (7, 8)], 4, 20) == [(0, 10)]       # 5 vs 5: one range
    assert tm._merged_ranges([(2, 3), (8, 9)], 4, 20) == [(0, 5), (6, 11)]
    assert tm._merged_ranges([(2, 3), (17, 18)], 4, 20) == [(0, 5), (15, 19)]  # cut at n - 1


def test_period_scores_are_absolute_and_the_consensus_takes_the_kth_strongest_voter():
    from types import SimpleNamespace

    grid = pd.date_range("2025-01-01", periods=4, freq="D")
    rows = {"a": [1.0, -5.0, 0.0, 2.0], "b": [3.0, 1.0, np.nan, -4.0], "oracle": [9.0] * 4}
    det = pd.DataFrame([{"detector": n, "date": d, "score": s}
                        for n, v in rows.items() for d, s in zip(grid, v, strict=True)]
                       + [{"detector": "a", "date": pd.Timestamp("2030-01-01"), "score": 7.0}])

    def ctx(min_votes):
        cfg = SimpleNamespace(detectors={"a": 0, "b": 0, "oracle": 0},
                              voting_detectors=lambda: ["a", "b"],
                              consensus=SimpleNamespace(min_votes=min_votes))
        return SimpleNamespace(detections=det, config=cfg)
    out = tm.period_scores(ctx(2), grid.to_numpy())
    assert out["a"].tolist() == [1.0, 5.0, 0.0, 2.0]         # |score|; off-grid rows ignored
    assert out["b"].tolist() == [3.0, 1.0, 0.0, 4.0]         # NaN counts 0
    assert out["consensus"].tolist() == [1.0, 1.0, 0.0, 2.0]  # the 2nd strongest of a, b
    # min_votes above the voters that ran: capped (all must agree); the oracle never counts
    assert tm.period_scores(ctx(3), grid.to_numpy())["consensus"].tolist() == [1.0, 1.0, 0.0, 2.0]
    assert tm.period_scores(ctx(1), grid.to_numpy())["consensus"].tolist() == [3.0, 5.0, 0.0, 4.0]


def test_vus_pr_reads_a_nan_score_as_zero():
    label = np.zeros(50)
    label[20:25] = 1
    score = np.where(label > 0, 0.5, 0.1)
    score[[3, 40]] = np.nan
    got = tm.vus_pr(label, score, 4)
    assert got == tm.vus_pr(label, np.nan_to_num(score, nan=0.0), 4)
    assert got > tm.vus_pr(label, np.nan_to_num(score, nan=1.0), 4)


def test_without_labelled_windows_the_f1s_are_undefined_not_zero():
    grid = pd.date_range("2025-01-01", periods=50, freq="h").to_numpy()
    out = tm.score_series(grid, grid, np.arange(50), [], {"d": [(grid[10], grid[11])]},
                          scores={"d": np.ones(50)})
    d = out["detectors"]["d"]
    assert d["point_adjusted_f1"] == {"f1": None, "random_f1": None}
    assert d["affiliation"] == {"precision": None, "recall": None, "f1": None}
    assert d["vus_pr"] is None and d["window_event"]["recall"] is None
