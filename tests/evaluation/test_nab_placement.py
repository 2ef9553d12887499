"""Where a detection lands among a NAB file's rows when the file was snapped to a coarser grid:
not before the data that caused it (the last row of its flagged period), and where nothing was
snapped, on the flagged row as before. Real files in NAB's layout (``timestamp,value`` CSV and a
``combined_windows.json``), run through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import run_analysis

from analytics.external import load_kpis_file
from evaluation import nab
from evaluation.ts_metrics import nab_detections
from shocklab.cli import run_cli

STD = nab.STANDARD_PROFILES["standard"]
SPIKE = 3 * 288 + 98   # a 5-minute row on day 4 (08:10) …
LATE = pd.Timedelta("10min")   # … 10 min after its 30-min period's grid point: its last row


def _nab_file(tmp_path, step: str) -> tuple:
    """A 5-minute NAB-layout file (5 days, daily cycle, seeded noise) with one spike, and a
    labels file whose window holds it."""
    rng = np.random.default_rng(7)
    ts = pd.date_range("2025-03-01", periods=5 * 288, freq="5min")
    v = 50 + 10 * np.sin(np.arange(len(ts)) / 288 * 2 * np.pi) + rng.normal(0, 0.5, len(ts))
    v[SPIKE] += 400.0
    data = tmp_path / "synthetic" / "late_spike.csv"
    data.parent.mkdir()
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": v.round(3)}).to_csv(
        data, index=False)
    win = [ts[SPIKE - 24], ts[SPIKE + 24]]
    labels = tmp_path / "combined_windows.json"
    labels.write_text(json.dumps({"synthetic/late_spike.csv": [[
        w.strftime("%Y-%m-%d %H:%M:%S.%f") for w in win]]}))
    out = tmp_path / f"run_{step}"
    assert run_cli(run_analysis.main, ["--kpis", str(data), "--events", str(labels), "--out",
                                       str(out), "--step", step, "--quiet"]) == 0
    return data, win, out


def _consensus(out):
    starts = [pd.Timestamp(i["start"]) for i in
              json.loads((out / "incidents.json").read_text())["incidents"]]
    nab_std = json.loads((out / "scorecard.json").read_text())[
        "series_metrics"]["detectors"]["consensus"]["nab"]["standard"]
    return starts, nab_std


def _score(raw, rows, win):
    det = np.zeros(len(raw))
    det[rows] = 1.0
    return nab.score_file(raw, det, [tuple(win)], STD).score


def test_a_late_spike_in_a_coarser_period_is_detected_at_its_own_row_not_earlier(tmp_path):
    data, win, out = _nab_file(tmp_path, "30min")
    raw = pd.read_csv(data)["timestamp"].pipe(pd.to_datetime).to_numpy("datetime64[ns]")
    starts, nab_std = _consensus(out)
    spike_t = pd.Timestamp(raw[SPIKE])
    period = spike_t - LATE   # 30-min grid point the spike snapped to (rows −15 … +10 min)
    assert period in starts   # the consensus flagged the spike's period
    # each incident's NAB row, worked out here from the timestamps alone: the last file row
    # before the next period's half-way point (snapping: nearest grid point, a tie to the later)
    half = pd.Timedelta("15min")
    last = [int(np.searchsorted(raw, np.datetime64(s + half), "left")) - 1 for s in starts]
    first = [int(np.searchsorted(raw, np.datetime64(s - half), "left")) for s in starts]
    assert last[starts.index(period)] == SPIKE and first[starts.index(period)] == SPIKE - 5
    assert nab_std["score"] == pytest.approx(_score(raw, last, win), abs=1e-6)
    # placing it on the period's first row (25 min before the spike arrived) would score higher:
    # credit for data the detector had not seen
    assert _score(raw, first, win) > _score(raw, last, win) + 1e-3
    # the same rule straight from the ingester's snapping
    ing = load_kpis_file(data, step="30min").ingest
    grid = pd.date_range(raw[0], periods=ing["periods"], freq="30min").to_numpy("datetime64[ns]")
    k = int(np.searchsorted(grid, np.datetime64(period)))
    det = nab_detections(grid, ing["_raw_times"], ing["_raw_slots"], [k])
    assert np.flatnonzero(det).tolist() == [SPIKE] and raw[SPIKE] >= np.datetime64(period)
    # without the ingester's slots the grid's nearest-point rule gives the same rows
    ks = np.searchsorted(grid, np.array(starts, dtype="datetime64[ns]"))
    assert np.array_equal(nab_detections(grid, raw, None, ks),
                          nab_detections(grid, raw, ing["_raw_slots"], ks))


def test_without_snapping_a_detection_stays_on_its_flagged_row(tmp_path):
    data, win, out = _nab_file(tmp_path, "5min")   # the file's own step: one row per period
    raw = pd.read_csv(data)["timestamp"].pipe(pd.to_datetime).to_numpy("datetime64[ns]")
    starts, nab_std = _consensus(out)
    assert pd.Timestamp(raw[SPIKE]) in starts
    rows = np.searchsorted(raw, np.array(starts, dtype="datetime64[ns]"))
    assert np.array_equal(raw[rows], np.array(starts, dtype="datetime64[ns]"))
    assert nab_std["score"] == pytest.approx(_score(raw, rows, win), abs=1e-6)
    det = nab.detections_from_starts(raw, starts)   # the first row at or after each start
    assert nab_std["score"] == pytest.approx(nab.score_file(raw, det, [tuple(win)], STD).score,
                                             abs=1e-6)


def test_a_period_without_rows_takes_the_next_row_never_an_earlier_one():
    grid = pd.date_range("2025-03-01", periods=6, freq="10min").to_numpy("datetime64[ns]")
    raw = grid[[0, 1, 1, 4, 5]] + np.array([0, -3, 4, 1, 0], dtype="timedelta64[m]")
    slots = np.array([0, 1, 1, 4, 5])
    det = nab_detections(grid, raw, slots, [1, 2, 5])   # period 2 holds no row
    assert np.flatnonzero(det).tolist() == [2, 3, 4]
    assert np.array_equal(nab_detections(grid, raw, None, [1, 2, 5]), det)
