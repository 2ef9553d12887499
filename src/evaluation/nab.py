"""The NAB score (Numenta Anomaly Benchmark; Lavin & Ahmad 2015), as NAB's own scorer computes it
(``nab/sweeper.py`` and ``nab/runner.py`` of numenta/NAB, re-implemented and vectorised here).

Per data file, with rows ``0..n-1`` in file order and the labelled windows:

- **Probationary period**: the first ``min(floor(0.15 n), 0.15 × 5000)`` rows are not scored at
  all (neither detections nor window rows there count).
- **Scaled sigmoid**: ``σ(x) = 2 / (1 + e^{5x}) − 1``, and ``−1`` for ``x ≥ 3``.
- A row ``i`` inside window ``[a, b]`` (row indices, width ``w = b − a + 1``) is worth
  ``σ(−(b − i + 1) / w) × tpWeight / σ(−1)``: an early detection is worth ~1, one at the right edge
  little. A window whose scored rows hold no detection costs ``−fnWeight``; one with detections is
  worth its best (earliest) one — later detections in it neither add nor cost.
- A detected row outside every window costs ``σ(|i − b_prev| / (w_prev − 1)) × fpWeight`` when a
  window ended before it at row ``b_prev`` (a detection just after a window costs little), and
  ``−fpWeight`` otherwise. Every such row counts.
- A row is detected when its anomaly score ``≥ threshold``.
- **Normalised score** (a corpus or a category): ``100 × (S − S_null) / (S_perfect − S_null)``
  with ``S = Σ per-file scores``, ``S_null`` the same for a detector that flags nothing
  (``−fnWeight`` per window with scored rows) and ``S_perfect = (number of those windows) ×
  tpWeight``: a window wholly inside the probationary period is in neither.

Windows are given as timestamps. NAB's windows start and end on rows of the file; windows from
elsewhere are snapped to the rows inside them (first row ≥ start, last row ≤ end; an end
timestamp present several times counts at its first row, as in NAB). A window with no row is
dropped: it is neither in the null score nor in the perfect one. NAB's windows are in time order
and disjoint (its scorer walks them in list order); windows from elsewhere are sorted, and ones
that share rows are merged into one window (one event to find, as NAB's labeller merges them).
NAB divides by zero for an FP after a one-row window; here that FP costs ``−fpWeight``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PROBATION_PERCENT = 0.15
STANDARD_PROFILES: dict[str, dict[str, float]] = {   # NAB's config/profiles.json
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}


def load_profiles(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Cost matrices by profile name from a NAB ``profiles.json`` (None: NAB's three profiles)."""
    if path is None:
        return {k: dict(v) for k, v in STANDARD_PROFILES.items()}
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return {name: {k: float(v) for k, v in p["CostMatrix"].items()} for name, p in raw.items()}


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid: 2·sigmoid(−5x) − 1, and −1 from x = 3 on."""
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        return np.where(x >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0)


def probation_length(n_rows: int, percent: float = PROBATION_PERCENT) -> float:
    return min(math.floor(percent * n_rows), percent * 5000)


def window_rows(timestamps: np.ndarray, windows: list[tuple[Any, Any]]) -> list[tuple[int, int]]:
    """(first row, last row) of each window on sorted ``timestamps`` (datetime64), in row order;
    empty ones dropped, ones sharing a row merged."""
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    spans = []
    for start, end in windows:
        s, e = np.datetime64(start, "ns"), np.datetime64(end, "ns")
        a = int(np.searchsorted(ts, s, side="left"))
        b = int(np.searchsorted(ts, e, side="left"))
        if b >= len(ts) or ts[b] != e:   # end not a row: the last row before it
            b = int(np.searchsorted(ts, e, side="right")) - 1
        if a <= b:
            spans.append((a, b))
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):   # the scorer walks windows in order: a later one listed first
        if out and a <= out[-1][1]:   # would reset "the window before"; overlapping ones merge
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass(frozen=True)
class FileScore:
    score: float        # raw NAB score of the file
    null_score: float   # the same for a detector that flags nothing
    windows: int        # windows scored (with a scored row; perfect = windows × tpWeight)
    tp: int             # detected rows inside windows (scored rows only)
    fp: int             # detected rows outside windows
    fn: int             # undetected rows inside windows
    tn: int
    rows: int
    detected_windows: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def row_weights(
    n: int,
    wins: list[tuple[int, int]],
    cost: dict[str, float],
    probation_percent: float = PROBATION_PERCENT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the NAB sweep score of a detection there, the window id (−1 outside) and whether
    the row is scored (past the probationary period)."""
    idx = np.arange(n)
    win_id = np.full(n, -1)
    weight = np.empty(n)
    max_tp = float(scaled_sigmoid(-1.0))
    prev_end = np.full(n, -1)            # last row of the latest window ending before the row
    prev_width = np.ones(n)
    for w, (a, b) in enumerate(wins):
        win_id[a:b + 1] = w
        prev_end[b + 1:] = b
        prev_width[b + 1:] = b - a + 1
    inside = win_id >= 0
    if inside.any():
        a_of = np.array([a for a, _ in wins])[win_id[inside]]
        b_of = np.array([b for _, b in wins])[win_id[inside]]
        weight[inside] = (
            scaled_sigmoid(-(b_of - idx[inside] + 1) / (b_of - a_of + 1))
            * cost["tpWeight"]
            / max_tp
        )
    out = ~inside
    after = out & (prev_end >= 0) & (prev_width > 1)
    pos = np.full(n, 3.0)                # no window before (or a one-row one): a full −fpWeight
    pos[after] = np.abs(prev_end[after] - idx[after]) / (prev_width[after] - 1)
    weight[out] = scaled_sigmoid(pos[out]) * cost["fpWeight"]
    scored = idx >= probation_length(n, probation_percent)
    return weight, win_id, scored


def score_file(timestamps: np.ndarray, scores: np.ndarray, windows: list[tuple[Any, Any]],
               cost: dict[str, float], threshold: float = 0.5,
               probation_percent: float = PROBATION_PERCENT) -> FileScore:
    """NAB score of one file: ``scores`` per row (a detection where ``score >= threshold``)."""
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    wins = window_rows(timestamps, windows)
    weight, win_id, scored = row_weights(n, wins, cost, probation_percent)
    det = (scores >= threshold) & scored
    inside = win_id >= 0
    live = np.unique(win_id[inside & scored])            # windows with scored rows
    best = np.full(len(wins), -cost["fnWeight"])
    hit = det & inside
    if hit.any():
        np.maximum.at(best, win_id[hit], weight[hit])
    total = float(best[live].sum() + weight[det & ~inside].sum())
    detected = int(np.unique(win_id[hit]).size)
    return FileScore(
        score=total,
        null_score=-cost["fnWeight"] * len(live),
        # windows with a scored row, as in the null score: one wholly inside the probationary
        # period can be neither found nor missed (it made a perfect detector score 66.7)
        windows=len(live),
        tp=int(hit.sum()),
        fp=int((det & ~inside).sum()),
        fn=int((inside & scored & ~det).sum()),
        tn=int((~inside & scored & ~det).sum()),
        rows=n,
        detected_windows=detected,
    )


def normalised(files: list[FileScore], cost: dict[str, float]) -> float | None:
    """NAB's normalised score of a set of files (None when there is no window to score)."""
    s = sum(f.score for f in files)
    null = sum(f.null_score for f in files)
    perfect = sum(f.windows for f in files) * cost["tpWeight"]
    return None if perfect == null else 100.0 * (s - null) / (perfect - null)


def detections_from_starts(timestamps: np.ndarray, starts: list[Any]) -> np.ndarray:
    """0/1 anomaly scores per row with a 1 at the first row at or after each start time (the
    time a detection was made; an incident on a coarser grid than the file's rows is placed by
    ``ts_metrics.nab_detections``)."""
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    out = np.zeros(len(ts))
    if starts:
        pos = np.searchsorted(ts, np.array([np.datetime64(s, "ns") for s in starts]), side="left")
        out[pos[pos < len(ts)]] = 1.0
    return out


def score_profiles(
    timestamps: np.ndarray,
    scores: np.ndarray,
    windows: list[tuple[Any, Any]],
    profiles: dict[str, dict[str, float]] | None = None,
    threshold: float = 0.5,
) -> dict[str, FileScore]:
    profiles = profiles or STANDARD_PROFILES
    return {
        name: score_file(timestamps, scores, windows, cost, threshold)
        for name, cost in profiles.items()
    }
