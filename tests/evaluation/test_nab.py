"""NAB scorer: NAB's published per-file scores reproduced to 1e-6, and the rules one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation import nab

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nab"
SHARED = next((p / "shared" / "benchmarks" / "nab" for p in Path(__file__).resolve().parents
               if (p / "shared" / "benchmarks" / "nab" / "results").is_dir()), None)
STD = nab.STANDARD_PROFILES["standard"]


def _windows(pairs):
    return [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in pairs]


def test_numenta_published_score_from_fixture():
    lab = json.loads((FIX / "speed_7578_labels.json").read_text())
    key = "realTraffic/speed_7578.csv"
    df = pd.read_csv(FIX / "numenta_speed_7578_scores.csv")
    ts = pd.to_datetime(df["timestamp"]).to_numpy()
    pub = lab["numenta_standard"][key]
    r = nab.score_file(ts, df["anomaly_score"].to_numpy(), _windows(lab["windows"][key]), STD,
                       threshold=float(pub["threshold"]))
    assert r.score == pytest.approx(float(pub["score"]), abs=1e-6)
    assert (r.tp, r.fp, r.windows) == (5, 3, 4)
    null = nab.score_file(ts, np.zeros(len(ts)), _windows(lab["windows"][key]), STD)
    assert null.score == float(lab["null_standard"][key]) == null.null_score == -4.0


@pytest.mark.skipif(SHARED is None, reason="shared/benchmarks/nab not beside the checkout")
def test_every_published_numenta_and_null_score():
    windows = json.loads((SHARED / "labels" / "combined_windows.json").read_text())
    profiles = nab.load_profiles(SHARED / "config" / "profiles.json")
    assert profiles == nab.STANDARD_PROFILES
    pub = pd.read_csv(SHARED / "results" / "numenta" / "numenta_standard_scores.csv").set_index(
        "File"
    )
    files = sorted((SHARED / "results" / "numenta").glob("*/numenta_*.csv"))
    assert len(files) >= 10
    for f in files:
        key = f"{f.parent.name}/{f.name[len('numenta_'):]}"
        df = pd.read_csv(f)
        r = nab.score_file(
            pd.to_datetime(df["timestamp"]).to_numpy(),
            df["anomaly_score"].to_numpy(),
            _windows(windows[key]),
            profiles["standard"],
            threshold=pub.loc[key, "Threshold"],
        )
        assert r.score == pytest.approx(pub.loc[key, "Score"], abs=1e-6), key
    null = pd.read_csv(SHARED / "results" / "null" / "null_standard_scores.csv").set_index("File")
    for key, wins in windows.items():
        ts = pd.to_datetime(
            pd.read_csv(SHARED / "data" / key, usecols=["timestamp"])["timestamp"]
        ).to_numpy()
        assert (
            nab.score_file(ts, np.zeros(len(ts)), _windows(wins), STD).score
            == null.loc[key, "Score"]
        ), key
    # normalised over this subset, from the published per-file scores: numenta beats
    # windowedGaussian
    nwin = sum(len(w) for w in windows.values())
    tot = {d: pd.read_csv(SHARED / "results" / d / f"{d}_standard_scores.csv")["Score"].sum()
           for d in ("numenta", "windowedGaussian", "null")}
    norm = {
        d: 100 * (tot[d] - tot["null"]) / (nwin - tot["null"])
        for d in ("numenta", "windowedGaussian")
    }
    assert norm["numenta"] > norm["windowedGaussian"] > 0


def _grid(n=200):
    return pd.date_range("2025-01-01", periods=n, freq="5min").to_numpy()


def test_scaled_sigmoid_and_probation():
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert nab.scaled_sigmoid(3.0) == -1.0 and nab.scaled_sigmoid(10.0) == -1.0
    assert nab.probation_length(4032) == 604 and nab.probation_length(10_000) == 750


def test_rules_early_late_fp_probation():
    ts = _grid()
    win = _windows([(ts[100], ts[119])])
    score = lambda rows: (  # noqa: E731
        nab.score_file(ts, np.isin(np.arange(200), rows).astype(float), win, STD).score
    )
    assert score([]) == -1.0  # a missed window costs fnWeight
    assert score([100]) == pytest.approx(1.0)  # first row of the window: full tpWeight
    assert score([100]) > score([110]) > score([119]) > 0  # earlier is better
    assert score([100, 110, 119]) == score([100])  # later detections in a window are free
    three = nab.score_file(ts, np.isin(np.arange(200), [100, 110, 119]).astype(float), win, STD)
    assert (three.tp, three.detected_windows) == (3, 1)
    assert score([10]) == -1.0  # in the probationary period: ignored
    assert score([50]) == pytest.approx(-1.0 - 0.11)  # FP before any window: −fpWeight
    assert -1.11 < score([121]) < -1.0  # just after a window: a small cost
    assert score([50, 60]) == pytest.approx(-1.0 - 0.22)          # every FP row counts
    low_fp = nab.score_file(ts, np.isin(np.arange(200), [50]).astype(float), win,
                            nab.STANDARD_PROFILES["reward_low_FP_rate"]).score
    assert low_fp == pytest.approx(-1.22)


def test_windows_snapped_to_rows_and_normalisation():
    ts = _grid()
    # a window whose edges fall between rows covers the rows inside it
    wins = [
        (pd.Timestamp(ts[100]) - pd.Timedelta("2min"), pd.Timestamp(ts[119]) + pd.Timedelta("2min"))
    ]
    assert nab.window_rows(ts, wins) == [(100, 119)]
    det = nab.detections_from_starts(ts, [pd.Timestamp(ts[100]) - pd.Timedelta("1min")])
    assert det.sum() == 1 and det[100] == 1.0
    perfect = nab.score_file(ts, det, wins, STD)
    assert nab.normalised([perfect], STD) == pytest.approx(100.0)
    assert nab.normalised([nab.score_file(ts, np.zeros(200), wins, STD)], STD) == 0.0
    assert nab.normalised([nab.score_file(ts, np.zeros(200), [], STD)], STD) is None


def test_windows_out_of_order_overlapping_or_outside_the_file():
    """Labels from a CSV or JSON list (not NAB's) may come newest first, overlap, or lie past
    the file's end: the score is the one of the same windows in order, overlapping ones merged,
    rowless ones neither in the null nor in the perfect score (audit-metrics)."""
    ts = pd.date_range("2025-01-01", periods=200, freq="h").to_numpy()
    w1, w2 = (pd.Timestamp(ts[50]), pd.Timestamp(ts[59])), (pd.Timestamp(ts[100]),
                                                              pd.Timestamp(ts[119]))
    det = np.isin(np.arange(200), [60, 125, 150]).astype(float)
    # by hand: three FPs, each costed by its distance past the window before it
    # (row 60 after [50, 59]: 1/9; row 125 after [100, 119]: 6/19; row 150: 31/19), two misses
    sig = lambda x: 2 / (1 + np.exp(5 * x)) - 1  # noqa: E731
    want = -2.0 + 0.11 * (sig(1 / 9) + sig(6 / 19) + sig(31 / 19))
    assert nab.score_file(ts, det, [w1, w2], STD).score == pytest.approx(want, abs=1e-12)
    # listed newest first: before, row 60 was costed after the later window (a full −0.11)
    assert nab.score_file(ts, det, [w2, w1], STD).score == pytest.approx(want, abs=1e-12)
    # overlapping windows are one event: the row-125 detection finds it (one window, not two)
    over = nab.score_file(ts, det, [(pd.Timestamp(ts[100]), pd.Timestamp(ts[119])),
                                    (pd.Timestamp(ts[110]), pd.Timestamp(ts[130]))], STD)
    one = nab.score_file(ts, det, [(pd.Timestamp(ts[100]), pd.Timestamp(ts[130]))], STD)
    assert (over.score, over.windows, over.null_score) == (one.score, 1, -1.0)
    # a window after the file's last row has no row: a perfect detector still scores 100
    late = (pd.Timestamp(ts[-1]) + pd.Timedelta("2D"), pd.Timestamp(ts[-1]) + pd.Timedelta("3D"))
    perfect = nab.score_file(ts, np.isin(np.arange(200), [50, 100]).astype(float),
                             [w1, w2, late], STD)
    assert perfect.windows == 2 and nab.normalised([perfect], STD) == pytest.approx(100.0)


def test_a_one_row_window_is_scored_and_a_false_positive_after_it_costs_in_full():
    """A window of one row is a window (found: tpWeight; missed: −fnWeight); NAB divides by
    zero for a false positive after it, here that costs the full −fpWeight."""
    ts = _grid()
    win = _windows([(ts[100], ts[100])])
    assert nab.window_rows(ts, win) == [(100, 100)]
    rows = lambda r: np.isin(np.arange(200), r).astype(float)  # noqa: E731
    hit = nab.score_file(ts, rows([100]), win, STD)
    assert (hit.windows, hit.detected_windows, hit.score) == (1, 1, pytest.approx(1.0))
    assert nab.score_file(ts, rows([]), win, STD).score == -1.0
    assert nab.score_file(ts, rows([101]), win, STD).score == pytest.approx(-1.0 - 0.11)


def test_windows_sharing_a_row_or_nested_merge_into_one():
    ts = _grid()
    t = lambda i: pd.Timestamp(ts[i])  # noqa: E731
    assert nab.window_rows(ts, [(t(100), t(110)), (t(110), t(120))]) == [(100, 120)]
    assert nab.window_rows(ts, [(t(100), t(130)), (t(105), t(110))]) == [(100, 130)]
    assert nab.window_rows(ts, [(t(100), t(110)), (t(111), t(120))]) == [(100, 110), (111, 120)]


def test_the_first_row_after_the_probationary_period_is_scored():
    ts = _grid()                        # 200 rows: rows 0..29 are probationary
    win = _windows([(ts[100], ts[119])])
    rows = lambda r: np.isin(np.arange(200), r).astype(float)  # noqa: E731
    assert nab.probation_length(200) == 30
    assert nab.score_file(ts, rows([29]), win, STD).score == -1.0
    assert nab.score_file(ts, rows([30]), win, STD).score == pytest.approx(-1.11)


def test_threshold_is_inclusive_and_a_window_inside_the_probation_is_not_scored():
    ts = _grid()
    win = _windows([(ts[100], ts[119])])
    at = np.zeros(200)
    at[100] = 0.5
    assert nab.score_file(ts, at, win, STD, threshold=0.5).score == pytest.approx(1.0)
    early = _windows([(ts[5], ts[10])])              # all its rows in the probationary period
    r = nab.score_file(ts, np.zeros(200), early, STD)
    assert (r.score, r.null_score, r.fn) == (0.0, 0.0, 0)


def test_a_window_inside_the_probation_is_not_in_the_perfect_score():
    """Such a window was in the perfect score (windows × tpWeight) but not in the null score, so
    a detector finding every findable window scored 66.7, not 100 (mutation audit)."""
    ts = _grid()
    wins = _windows([(ts[5], ts[10]), (ts[100], ts[119])])
    det = np.isin(np.arange(200), [5, 100]).astype(float)
    r = nab.score_file(ts, det, wins, STD)
    assert r.windows == 1 and r.detected_windows == 1
    assert nab.normalised([r], STD) == pytest.approx(100.0)
